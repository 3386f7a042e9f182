"""Where a sweep writes beside its storage: `<runs_dir>/<study>/trial_0007/` for Optuna's trial 7.

That folder is the trial's TensorBoard run and, while it trains, holds `checkpoints/`; the
report names the trial `trial_0007` too (its final-evaluation cache key).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from search.errors import StudyError

TRIAL_DIR_GLOB = "trial_*"
NOT_A_NAME = ("", ".", "..")  # names of no folder, this folder or its parent
SEPARATORS = ("/", "\\", "\0")  # a path separator here or on Windows; NUL ends a path in C


def check_study_name(name: str) -> None:
    """Refuse a study name that would put its runs or its database anywhere but
    `<runs_dir>/<name>` and `<runs_dir>/<name>.db`: `..` wrote the trial folders into the runs
    folder's parent, `.` into the runs folder itself (a study file `...toml` is named `..`)."""
    if name in NOT_A_NAME or any(sep in name for sep in SEPARATORS):
        raise StudyError(f"the study name {name!r} cannot name its folder in the runs folder (it is empty, "
                         "'.', '..' or holds a path separator); rename the study file")


def trial_dir_name(number: int) -> str:
    """`trial_0007` for Optuna's trial 7: the same name in TensorBoard and in the report."""
    return f"trial_{number:04d}"


def study_dir(runs_dir: Path, study_name: str) -> Path:
    """`<runs_dir>/<study>`: every trial run of one study (its name checked by check_study_name)."""
    check_study_name(study_name)
    return Path(runs_dir) / study_name


def trial_dir(runs_dir: Path, study_name: str, number: int) -> Path:
    return study_dir(runs_dir, study_name) / trial_dir_name(number)


def checkpoint_dir(runs_dir: Path, study_name: str, number: int) -> Path:
    """`<runs_dir>/<study>/trial_0007/checkpoints`: beside the trial's TensorBoard run."""
    return trial_dir(runs_dir, study_name, number) / "checkpoints"


def check_runs_dir(runs_dir: Path) -> None:
    """Refuse a runs folder that cannot be created or written, without creating it: a sweep
    refused later (its data, its storage) leaves nothing behind."""
    existing = Path(runs_dir).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StudyError(f"cannot create {runs_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StudyError(f"{runs_dir} is not writable" if existing == Path(runs_dir).absolute()
                         else f"cannot create {runs_dir}: {existing} is not writable")


@contextmanager
def runs_dir_made(runs_dir: Path) -> Iterator[None]:
    """Create the runs folder (and its missing parents) for the study's opening; if the opening
    fails, remove again the folders made here that are still empty."""
    missing = []
    folder = Path(runs_dir).absolute()
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create {runs_dir}: {exc.strerror}") from None
    try:
        yield
    except BaseException:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except OSError:  # not empty: the study wrote there after all
                break
        raise


def write_failure(exc: OSError) -> str:
    """What an OSError from writing a run's files says, with the file: `cannot write
    runs/x/trial_0001/checkpoints/last.123.tmp: No space left on device`."""
    target = exc.filename2 or exc.filename  # a copy or move that failed names its source first
    where = f" {target}" if target else ""
    return f"cannot write{where}: {exc.strerror or exc}"
