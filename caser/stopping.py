"""Early stopping on the evaluated metric: the rule that decides how long one training runs.

A sweep under a short fixed budget ranks configurations by how fast they learn, not how good
they get (Rendle et al. 2022 on iALS; Berling, Svahn & Said, RecSys 2025): a stopping rule
changes results as much as the search strategy, so it is an explicit, recorded object. The
budget (TrainConfig.epochs) caps it. Within it, a training stops once it has gone

    max(patience, ceil(patience_growth * the epoch of its best)) evaluations

without an improvement, and never before `warmup` evaluations. An improvement counts when the
metric beats the best so far by more than max(min_delta, rel_delta * |best|): `min_delta` is on
the metric's scale, `rel_delta` a share of it, the same on any data. With rel_delta,
patience_growth and warmup at 0 this is Lightning's EarlyStopping (patience, min_delta), the rule
of studies made before them.

`StopTracker` is the rule applied to one curve, value by value: the callback (`ConvergenceStop`)
uses it during training, and benchmarks replay recorded curves through it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import lightning.pytorch as pl

# Why a training ended (FitResult.stop_reason).
PATIENCE = "patience"  # the stopping rule: no improvement for its patience
BUDGET = "budget"  # every epoch of the budget trained
# Another callback stopped it (the sweep's pruner, which the sweep records as "pruned"), or
# the stopping rule did on a non-finite validation metric (the sweep records it as "diverged").
STOPPED = "stopped"


@dataclass(frozen=True)
class StoppingRule:
    """When a training ends before its budget (the module docstring). patience None never stops
    early; the other fields refine when a patience has run out."""

    monitor: str = "val/map"
    patience: int | None = None
    min_delta: float = 0.0
    mode: str = "max"
    rel_delta: float = 0.0
    patience_growth: float = 0.0
    warmup: int = 0

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or unset to train the whole budget), got {self.patience}")
        # inf (or nan) would make every training stop after `patience` epochs, or never count one
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {self.min_delta}")
        if not (math.isfinite(self.rel_delta) and 0 <= self.rel_delta < 1):
            raise ValueError(f"rel_delta must be a share from 0 up to (not including) 1, got {self.rel_delta}")
        if not (math.isfinite(self.patience_growth) and 0 <= self.patience_growth <= 1):
            raise ValueError(f"patience_growth must be from 0 to 1, got {self.patience_growth}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {self.mode!r}")

    @property
    def stops_early(self) -> bool:
        return self.patience is not None

    def describe(self) -> str:
        """One line for reports: 'patience 10 evaluations on val/map (min improvement 0.5% of the best)'."""
        if not self.stops_early:
            return "none (every trial trains its whole budget unless pruned)"
        improvement = [f"{self.min_delta:g}"] if self.min_delta or not self.rel_delta else []
        improvement += [f"{self.rel_delta:.2%} of the best"] if self.rel_delta else []
        parts = [f"patience {self.patience} evaluations on {self.monitor}"]
        if self.patience_growth:
            parts.append(f"growing to {self.patience_growth:.0%} of the best epoch")
        if self.warmup:
            parts.append(f"not before evaluation {self.warmup}")
        return ", ".join(parts) + f" (min improvement {' and '.join(improvement)})"

    def callback(self) -> ConvergenceStop | None:
        """The Lightning callback for this rule (its state travels in checkpoints), or None."""
        return ConvergenceStop(self) if self.stops_early else None

    def tracker(self) -> StopTracker:
        return StopTracker(self)


class StopTracker:
    """The rule applied to one curve: `update(value)` after each evaluation says whether to stop."""

    def __init__(self, rule: StoppingRule) -> None:
        self.rule = rule
        self.sign = 1.0 if rule.mode == "max" else -1.0
        self.best = -math.inf  # the last counted improvement, sign-adjusted
        self.best_at = 0  # its evaluation, 1-based
        self.seen = 0  # evaluations so far

    def patience_now(self) -> int:
        """The evaluations without improvement that end the training now."""
        return max(self.rule.patience or 0, math.ceil(self.rule.patience_growth * self.best_at))

    def update(self, value: float) -> bool:
        """Take the next evaluation; True when the rule ends the training here."""
        self.seen += 1
        value = self.sign * value
        margin = max(self.rule.min_delta, self.rule.rel_delta * abs(self.best)) if self.best > -math.inf else 0.0
        if value - margin > self.best:
            self.best, self.best_at = value, self.seen
            return False
        return (self.rule.patience is not None and self.seen >= self.rule.warmup
                and self.seen - self.best_at >= self.patience_now())

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "best_at": self.best_at, "seen": self.seen}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best, self.best_at, self.seen = float(state["best"]), int(state["best_at"]), int(state["seen"])


def stop_epoch(rule: StoppingRule, curve: list[float]) -> int:
    """After how many evaluations of `curve` the rule ends a training (its length if never)."""
    tracker = rule.tracker()
    for n, value in enumerate(curve, start=1):
        if tracker.update(value):
            return n
    return len(curve)


class ConvergenceStop(pl.Callback):
    """Stops the trainer when its rule says so, after each validation; a non-finite metric
    stops it at once (reason STOPPED: the loss usually diverged)."""

    def __init__(self, rule: StoppingRule) -> None:
        self.rule = rule
        self.tracker = rule.tracker()
        self.exhausted = False  # the rule ran out of patience (not: a non-finite value)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.rule.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise KeyError(f"metric {self.rule.monitor!r} was not logged; logged: {logged}")
        value = float(trainer.callback_metrics[self.rule.monitor])
        if not math.isfinite(value):
            trainer.should_stop = True
        elif self.tracker.update(value):
            self.exhausted = trainer.should_stop = True

    def state_dict(self) -> dict[str, float | int | bool]:
        return {**self.tracker.state_dict(), "exhausted": self.exhausted}

    def load_state_dict(self, state_dict: dict[str, float | int | bool]) -> None:
        self.tracker.load_state_dict(state_dict)
        self.exhausted = bool(state_dict.get("exhausted", False))


def stop_reason(early_stop: ConvergenceStop | None, epochs_done: int, budget: int) -> str:
    """Why a training that completed `epochs_done` of `budget` epochs ended."""
    if early_stop is not None and early_stop.exhausted:
        return PATIENCE
    return BUDGET if epochs_done >= budget else STOPPED
