"""Which trials retry which: when a worker dies, the heartbeat marks its trial FAIL and
`RetryHeartbeatStaleTrialCallback` queues a copy (same params and user attributes) that carries
the configuration on. Read from the system attributes the callback writes, without Optuna's
experimental helpers (which warn) and without torch, so the report can use it too.
"""
from __future__ import annotations

from typing import Iterable

from optuna.trial import FrozenTrial


def retry_history(trial: FrozenTrial) -> list[int]:
    """The numbers of the trials this one retries, oldest first (empty for a fresh trial)."""
    attrs = trial.system_attrs
    history = list(attrs.get("retry_history", []))
    if not history and attrs.get("failed_trial") is not None:
        history = [int(attrs["failed_trial"])]
    return history


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """The trials that a later trial retried: each stands for its configuration no more."""
    return {number for trial in trials for number in retry_history(trial)}
