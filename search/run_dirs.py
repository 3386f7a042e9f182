"""Where a sweep writes beside its storage: `<runs_dir>/<study>/trial_0007/` for Optuna's trial 7.

That folder is the trial's TensorBoard run and, while it trains, holds `checkpoints/`; the
report names the trial `trial_0007` too (its final-evaluation cache key).
"""
from __future__ import annotations

from pathlib import Path

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
