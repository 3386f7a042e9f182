"""Early stopping on the evaluated metric: the rule that decides how long one training runs.

A sweep under a short fixed budget ranks configurations by how fast they learn, not how good
they get (Rendle et al. 2022 on iALS; Berling, Svahn & Said, RecSys 2025): a stopping rule
changes results as much as the search strategy, so it is an explicit, recorded object. The
budget (TrainConfig.epochs) caps it; `patience` evaluations without an improvement of more
than `min_delta` end it sooner.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

# Why a training ended (FitResult.stop_reason).
PATIENCE = "patience"  # the stopping rule: no improvement for `patience` evaluations
BUDGET = "budget"  # every epoch of the budget trained
# Another callback stopped it (the sweep's pruner, which the sweep records as "pruned"), or
# early stopping did on a non-finite validation metric (the sweep records it as "diverged").
STOPPED = "stopped"


@dataclass(frozen=True)
class StoppingRule:
    """Stop when `monitor` has not risen (mode max) or fallen (min) by more than `min_delta`
    in `patience` consecutive evaluations. patience None never stops early."""

    monitor: str = "val/map"
    patience: int | None = None
    min_delta: float = 0.0
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or unset to train the whole budget), got {self.patience}")
        # inf (or nan) would make every training stop after `patience` epochs, or never count one
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {self.min_delta}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {self.mode!r}")

    @property
    def stops_early(self) -> bool:
        return self.patience is not None

    def describe(self) -> str:
        """One line for reports: 'patience 5 on val/map (min improvement 0.001)'."""
        if not self.stops_early:
            return "none (every trial trains its whole budget unless pruned)"
        return f"patience {self.patience} evaluations on {self.monitor} (min improvement {self.min_delta:g})"

    def callback(self) -> EarlyStopping | None:
        """Lightning's EarlyStopping for this rule (its state travels in checkpoints), or None."""
        if not self.stops_early:
            return None
        return EarlyStopping(monitor=self.monitor, patience=self.patience, min_delta=self.min_delta,
                             mode=self.mode, check_on_train_epoch_end=False, strict=True)


def stop_reason(early_stop: EarlyStopping | None, epochs_done: int, budget: int) -> str:
    """Why a training that completed `epochs_done` of `budget` epochs ended. Lightning's own
    reason, not its `stopped_epoch`, which is 0 both for "never stopped" and for a stop after
    the first epoch."""
    if early_stop is not None and early_stop.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
        return PATIENCE
    return BUDGET if epochs_done >= budget else STOPPED
