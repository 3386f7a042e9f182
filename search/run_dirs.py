"""Where a sweep writes beside its storage: `<runs_dir>/<study>/trial_0007/` for Optuna's trial 7.

That folder is the trial's TensorBoard run and, while it trains, holds `checkpoints/`; the
report names the trial `trial_0007` too (its final-evaluation cache key).
"""
from __future__ import annotations

from pathlib import Path

TRIAL_DIR_GLOB = "trial_*"


def trial_dir_name(number: int) -> str:
    """`trial_0007` for Optuna's trial 7: the same name in TensorBoard and in the report."""
    return f"trial_{number:04d}"


def study_dir(runs_dir: Path, study_name: str) -> Path:
    """`<runs_dir>/<study>`: every trial run of one study."""
    return Path(runs_dir) / study_name


def trial_dir(runs_dir: Path, study_name: str, number: int) -> Path:
    return study_dir(runs_dir, study_name) / trial_dir_name(number)


def checkpoint_dir(runs_dir: Path, study_name: str, number: int) -> Path:
    """`<runs_dir>/<study>/trial_0007/checkpoints`: beside the trial's TensorBoard run."""
    return trial_dir(runs_dir, study_name, number) / "checkpoints"
