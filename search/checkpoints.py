"""Per-trial checkpoints, so a trial whose worker died resumes instead of starting over.

Every trial writes `runs/<study>/trial_0007/checkpoints/last.ckpt` after each epoch; the retry
Optuna queues for a dead worker's trial (search/retries.py) resumes from the newest one along
its retry history. A trial that ends removes them (search/trial_run.py) unless kept.
"""
from __future__ import annotations

import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


def find_resume(trial: FrozenTrial, runs_dir: Path, study_name: str,
                say: Callable[[str], None]) -> Resume | None:
    """The newest usable checkpoint among the trials this one retries, or None (the trial
    starts over). Each is loaded weights-only: a runs folder may be shared and written by
    others, and unpickling anything but tensors and plain values could run their code. A file
    refused so, or unreadable, is named in one line through `say`."""
    found = [(n, checkpoint_dir(runs_dir, study_name, n) / "last.ckpt") for n in reversed(retry_history(trial))]
    found = [(n, path) for n, path in found if path.is_file()]
    for i, (number, path) in enumerate(found):
        then = "tries an older checkpoint" if i + 1 < len(found) else "starts over"
        try:
            with warnings.catch_warnings():  # torch's note on an unusual pickle protocol: ours is the line
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
            # Lightning's "epoch" is the 0-based epoch that had just ended when it was saved.
            return Resume(str(path), int(state["epoch"]) + 1, number)
        except pickle.UnpicklingError:
            say(f"warning: refused the checkpoint {path}: it does not load as weights only (tensors "
                f"and plain values; nothing in it is run); trial {trial.number} {then}")
        except Exception:  # noqa: BLE001 - truncated, not a zip, no "epoch": all unusable
            say(f"warning: the checkpoint {path} is unreadable; trial {trial.number} {then}")
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
