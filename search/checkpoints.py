"""Per-trial checkpoints, so a trial whose worker died resumes instead of starting over.

Every trial writes `runs/<study>/trial_0007/checkpoints/last.ckpt` after each epoch; the retry
Optuna queues for a dead worker's trial (search/retries.py) resumes from the newest one along
its retry history. A trial that ends removes them (search/trial_run.py) unless kept.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial

from search.retries import retry_history
from search.run_dirs import checkpoint_dir


@dataclass(frozen=True)
class Resume:
    """Where a retried trial picks up: the checkpoint and how many epochs it already holds."""

    ckpt_path: str
    epochs_done: int
    from_trial: int


def stored(trial: optuna.Trial) -> FrozenTrial:
    """The trial as stored: a running Trial shows neither system attrs nor inherited values."""
    return trial.storage.get_trial(trial._trial_id)


def find_resume(trial: FrozenTrial, runs_dir: Path, study_name: str) -> Resume | None:
    """The newest readable checkpoint among the trials this one retries, or None."""
    for number in reversed(retry_history(trial)):
        path = checkpoint_dir(runs_dir, study_name, number) / "last.ckpt"
        if not path.is_file():
            continue
        try:
            # Lightning's "epoch" is the 0-based epoch that had just ended when it was saved.
            state = torch.load(path, map_location="cpu", weights_only=False)
            return Resume(str(path), int(state["epoch"]) + 1, number)
        except Exception:  # noqa: BLE001 - truncated, not a zip, not a pickle, no "epoch": all unusable
            continue  # an unreadable file: try an older one, else start over
    return None


def merge_history(
    history: list[dict[str, float]], earlier: dict[int, float], monitor: str, epochs_done: int
) -> list[dict[str, float]]:
    """The full curve of a resumed trial: the original's reported values, then the new epochs.

    `earlier` is the trial's inherited intermediate values (step = 0-based epoch); they carry
    only the monitored metric, so a best epoch before the crash shows only that metric, and no
    training time (the time is this run's).
    """
    trained = {int(row["epoch"]) for row in history}
    before = [
        {"epoch": step + 1, monitor: value, "time_s": 0.0}  # trained before, not by this run
        for step, value in sorted(earlier.items())
        if step < epochs_done and step + 1 not in trained
    ]
    return before + list(history)


def remove_checkpoints(runs_dir: Path, study_name: str, numbers: list[int]) -> None:
    """Delete the checkpoints of trials that have ended (they are never resumed again)."""
    for number in numbers:
        shutil.rmtree(checkpoint_dir(runs_dir, study_name, number), ignore_errors=True)
