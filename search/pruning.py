"""Pruning inside Lightning: report the monitored metric to Optuna after every validation.

Unlike optuna-integration's callback, a metric that was never logged is an error (a typo in
the study's metric would otherwise switch pruning off silently), and a pruned trial stops the
trainer cleanly (`trainer.should_stop`) instead of raising inside it, so loggers finalise and
the trial keeps its curves. The objective raises TrialPruned afterwards.

The pruner is not asked when its answer could save nothing: after the budget's last epoch, or
when early stopping has just ended the training; such a trial trained as long as it was going
to, so it is complete, not pruned (issue 16, defect 6). Nor is it asked for the study's
baseline (the enqueued default), which trains until its own early stop: a comparison with a
curtailed baseline would flatter every other configuration.
"""
from __future__ import annotations

import lightning.pytorch as pl
import optuna

from search import interrupts


class OptunaPruning(pl.Callback):
    def __init__(self, trial: optuna.Trial, monitor: str, prunable: bool = True) -> None:
        self.trial = trial
        self.monitor = monitor
        self.prunable = prunable  # False for the baseline: reported, never pruned
        self.pruned_at: int | None = None  # 1-based epoch at which the pruner stopped the trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        interrupts.check()  # a Ctrl-C that a finalizer swallowed stops the training here
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise KeyError(f"metric {self.monitor!r} was not logged; logged: {logged}")
        epoch = trainer.current_epoch
        report(self.trial, float(value), epoch)
        # Early stopping (called before this callback: fit lists it first) may have ended it.
        ending_anyway = trainer.should_stop or epoch + 1 >= (trainer.max_epochs or 0)
        if self.prunable and not ending_anyway and self.trial.should_prune():
            self.pruned_at = epoch + 1
            trainer.should_stop = True


def report(trial: optuna.Trial, value: float, step: int) -> None:
    """`trial.report`, except that a value the trial already holds for `step` is replaced
    instead of ignored with Optuna's warning: a retry queued before issue 24 inherited its dead
    original's curve, and the epochs it trains (again) are its own."""
    if step in trial._cached_frozen_trial.intermediate_values:  # Trial.report's own test
        trial.storage.set_trial_intermediate_value(trial._trial_id, step, value)
        trial._cached_frozen_trial.intermediate_values[step] = value
    else:
        trial.report(value, step=step)
