"""Per-trial checkpoints, so a trial whose worker died resumes instead of starting over.

Every trial writes `runs/<study>/trial_0007/checkpoints/last.ckpt` every few seconds of training
(caser/callbacks.py, SaveLast); the retry Optuna queues for a dead worker's trial
(search/retries.py) resumes from the newest one along its retry history, loaded weights-only.
A trial that ends removes them (search/trial_run.py) unless kept.
"""
from __future__ import annotations

import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import optuna
import torch
from optuna.trial import FrozenTrial

from caser.callbacks import history_in
from search.retries import retry_history
from search.run_dirs import checkpoint_dir


@dataclass(frozen=True)
class Resume:
    """Where a retried trial picks up: the checkpoint, how many epochs it already holds, and
    their rows (every metric; none in a checkpoint from before they were kept)."""

    ckpt_path: str
    epochs_done: int
    from_trial: int
    history: tuple[dict[str, float], ...] = ()


def stored(trial: optuna.Trial) -> FrozenTrial:
    """The trial as stored: a running Trial does not show its system attrs (its retry history)."""
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
            epochs = int(state["epoch"]) + 1
            rows = tuple(row for row in history_in(state) if int(row["epoch"]) <= epochs)
            return Resume(str(path), epochs, number, rows)
        except pickle.UnpicklingError:
            say(f"warning: refused the checkpoint {path}: it does not load as weights only (tensors "
                f"and plain values; nothing in it is run); trial {trial.number} {then}")
        except Exception:  # noqa: BLE001 - truncated, not a zip, no "epoch": all unusable
            say(f"warning: the checkpoint {path} is unreadable; trial {trial.number} {then}")
    return None


def earlier_rows(resume: Resume | None, inherited: Mapping[int, float], monitor: str) -> list[dict[str, float]]:
    """The rows of the epochs a resumed trial does not train again: its checkpoint's, or, for
    a checkpoint from before they were kept, the monitored metric of the trial's inherited
    curve (step = 0-based epoch). Their times are this run's to count, so none is shown."""
    if resume is None:
        return []
    rows = [dict(row) for row in resume.history] or [
        {"epoch": step + 1, monitor: value}
        for step, value in sorted(inherited.items()) if step < resume.epochs_done
    ]
    for row in rows:
        row.update({"time_s": 0.0, "train_time_s": 0.0, "eval_time_s": 0.0})  # trained before, not now
    return rows


def merge_history(history: list[dict[str, float]], earlier: list[dict[str, float]]) -> list[dict[str, float]]:
    """The full curve of a resumed trial: the epochs its checkpoint held, then the new ones."""
    trained = {int(row["epoch"]) for row in history}
    return [row for row in earlier if int(row["epoch"]) not in trained] + list(history)


def remove_checkpoints(runs_dir: Path, study_name: str, numbers: list[int]) -> None:
    """Delete the checkpoints of trials that have ended (they are never resumed again)."""
    for number in numbers:
        shutil.rmtree(checkpoint_dir(runs_dir, study_name, number), ignore_errors=True)
