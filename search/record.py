"""What a study stores about itself and its trials: every user-attribute key, in one place.

The sweep writes these keys and the report, the resume policy and the progress lines read them.
Existing studies hold them, so a key is never renamed, only added.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import optuna
from optuna.trial import FrozenTrial

# The study's own attributes (written once, when the sweep creates it).
METRIC = "metric"
DIRECTION = "direction"
DATA = "data"  # the DataConfig fields, a file spec as its absolute path
DATA_FINGERPRINT = "data_fingerprint"  # sha256 of the prepared split: the data by its content
MAX_EPOCHS = "max_epochs"
FIXED = "fixed"  # parameters the study file fixes instead of searching
STUDY_FILE = "study_file"
SEED = "seed"  # the study's training seed; a trial's own `seed` wins
PATIENCE = "patience"  # the stopping rule: evaluations without improvement (None: no early stop)
MIN_DELTA = "min_delta"  # the stopping rule: the improvement that counts
REL_DELTA = "rel_delta"  # the stopping rule: the improvement that counts, as a share of the best
PATIENCE_GROWTH = "patience_growth"  # the stopping rule: patience as a share of the best epoch
WARMUP = "warmup"  # the stopping rule: evaluations before it may end a training
SAMPLER = "sampler"  # {"name": ..., "args": {...}} as the sweep built it
PRUNER = "pruner"  # {"name": ..., "options": {...}} as the sweep built it
DEFAULT_SEEDS = "default_seeds"  # extra training seeds of the default: the study's noise floor

# A trial's attributes.
IS_DEFAULT = "is_default"  # the enqueued original defaults (a retry of them inherits it)
DEFAULT_REPLICA = "default_replica"  # k: the defaults again with the study's seed + k (noise floor)
WORKER = "worker"  # who ran the trial, across processes and machines
REASON = "reason"  # why it did not complete: infeasible, pruned, diverged, interrupted, a write error
INFEASIBLE = "infeasible"  # pruned before any training: it spends no budget
RESUMED_FROM_EPOCH = "resumed_from_epoch"  # a retry: the epochs its checkpoint held (0: none)
EPOCHS_TRAINED = "epochs_trained"  # a resumed retry: the epochs it trained itself
EPOCHS_RUN = "epochs_run"  # the epochs of its curve, inherited ones included
WALL_TIME_S = "wall_time_s"
TRAIN_TIME_S = "train_time_s"  # training seconds (before eval_time_s existed: training + evaluation)
EVAL_TIME_S = "eval_time_s"  # evaluation seconds; wall_time_s - train - eval is overhead
STOP_REASON = "stop_reason"  # why a trial ended: patience, budget, pruned, ... (below)
NUM_PARAMS = "num_params"
BEST_EPOCH = "best_epoch"  # 1-based; the validation metrics at it are stored under their names

INTERRUPTED = "interrupted (Ctrl-C)"  # the reason of a trial stopped by the user's Ctrl-C


def interrupted(signal_name: str) -> str:
    """The reason of a trial stopped by a signal: `interrupted (Ctrl-C)`, `interrupted (SIGTERM)`."""
    return f"interrupted ({signal_name})"


def was_interrupted(reason: object) -> bool:
    """True for a reason written by `interrupted`, whatever the signal."""
    return isinstance(reason, str) and reason.startswith("interrupted (")


# A trial's STOP_REASON: caser.stopping's PATIENCE ("patience") and BUDGET ("budget") for a
# training that ended on its own, or one of these.
PRUNED = "pruned"  # the study's pruner stopped it before its budget
DIVERGED = "diverged"  # its loss became nan or infinite
STOPPED_BY_USER = "interrupted"  # Ctrl-C or SIGTERM
WRITE_ERROR = "write error"  # its runs folder could not be written (a full disk): the sweep stops
# (INFEASIBLE, "infeasible": never trained)


@dataclass(frozen=True)
class TrialRecord:
    """What a trial that trained stores for the report, written once it has ended."""

    seed: int  # the training seed: a resumed sweep may have been given another
    epochs_run: int
    wall_time_s: float
    train_time_s: float
    num_params: int
    eval_time_s: float = 0.0
    stop_reason: str | None = None  # STOP_REASON
    best_epoch: int | None = None
    best_metrics: Mapping[str, float] = field(default_factory=dict)  # `val/...` at best_epoch

    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            SEED: self.seed,
            EPOCHS_RUN: self.epochs_run,
            WALL_TIME_S: round(self.wall_time_s, 3),
            TRAIN_TIME_S: round(self.train_time_s, 3),
            EVAL_TIME_S: round(self.eval_time_s, 3),
            NUM_PARAMS: self.num_params,
        }
        if self.stop_reason is not None:
            attrs[STOP_REASON] = self.stop_reason
        if self.best_epoch is not None:
            attrs[BEST_EPOCH] = self.best_epoch
            attrs.update(self.best_metrics)
        return attrs

    def write(self, trial: optuna.Trial) -> None:
        for key, value in self.attrs().items():
            trial.set_user_attr(key, value)


def is_default(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(IS_DEFAULT))


def is_replica(trial: FrozenTrial) -> bool:
    """One of the default's extra seeds: the noise floor, not a configuration of its own."""
    return trial.user_attrs.get(DEFAULT_REPLICA) is not None


def is_infeasible(trial: FrozenTrial) -> bool:
    """Pruned before training (older studies recorded only the reason)."""
    return bool(trial.user_attrs.get(INFEASIBLE)) or str(trial.user_attrs.get(REASON, "")).startswith("infeasible")


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs a trial actually ran: `epochs_run`, else the length of its validation curve."""
    ran = trial.user_attrs.get(EPOCHS_RUN)
    return int(ran) if ran is not None else len(trial.intermediate_values)


def trial_time(trial: FrozenTrial) -> float | None:
    """Seconds a trial ran: its `wall_time_s`, else its start-to-finish timestamps."""
    wall = trial.user_attrs.get(WALL_TIME_S)
    if wall is not None:
        return float(wall)
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None
