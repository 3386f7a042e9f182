"""How long the final evaluation may take, said before its first training.

A configuration that keeps improving trains to the final budget's cap: in the 100-trial default
sweep of 2026-12-07 the best trial picked epochs 421 and 488 of 500, each run 27 minutes, and
the whole `--final-seeds 3 --top 3` evaluation would have taken hours on 2 cores. A researcher
should learn that before it starts, with the flag that bounds it, not after.

The pace is each trial's own in the sweep (its seconds per epoch, validation included), which
ran one training per core as the final evaluation does; a test run trains on train+validation,
that much more data per epoch. Runs 100 epochs each of the 100-trial study's top 3 and default
took 200 to 436 s against 219 to 408 s estimated this way (each within 7%).
"""
from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial

from caser.config import DataConfig
from search import record
from search.report import fmt
from search.report.final_runs import Job


def pace(trial: FrozenTrial) -> float | None:
    """The trial's seconds per epoch in the sweep, or None where it recorded no time."""
    seconds, epochs = record.trial_time(trial), record.epochs_run(trial)
    return seconds / epochs if seconds and epochs > 0 else None


def growth(data: DataConfig) -> float:
    """How much more data a test run's epoch trains on than a validation run's."""
    if data.holdout != "ratio" or data.val_frac <= 0:
        return 1.0
    return (data.train_frac + data.val_frac) / data.train_frac


def bound_s(jobs: Iterable[Job], paces: dict[str, float], slots: int, data: DataConfig) -> float | None:
    """Seconds on `slots` processes if every job trains its whole epoch budget at its
    configuration's pace, a convergence run followed by a test run of as many epochs; None when
    a configuration has no pace (the defaults when the study never ran them)."""
    total = 0.0
    for job in jobs:
        if job.key not in paces:
            return None
        epochs = job.train_config.epochs
        runs = 1 + growth(data) if job.kind == "converge" else growth(data)
        total += epochs * paces[job.key] * runs
    return total / max(1, slots)


def estimate_line(jobs: list[Job], paces: dict[str, float], slots: int, data: DataConfig) -> str | None:
    """`[final] 24 trainings on 2 processes: at most about 4.40 h ...`, or None without a pace."""
    seconds = bound_s(jobs, paces, slots, data)
    if seconds is None or not jobs:
        return None
    converging = [j for j in jobs if j.kind == "converge"]
    n = len(jobs) + len(converging)
    head = f"[final] {fmt.count(n, 'training')} on {slots} process{'' if slots == 1 else 'es'}"
    if not converging:
        return f"{head}: about {fmt.seconds(seconds)} at the sweep's pace"
    cap = max(j.train_config.epochs for j in converging)
    return (f"{head}: at most about {fmt.seconds(seconds)} at the sweep's pace, if every run "
            f"trains to its {cap}-epoch cap (most stop sooner; --final-max-epochs lowers the cap)")
