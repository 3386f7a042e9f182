"""The study's noise floor: how far the default moves when only its training seed changes.

The sweep trains the enqueued default with the study's seed and, as `default_seeds` replicas,
with seeds + 1, + 2, ... (never pruned). Every other trial is one seed of its configuration, so a
trial whose value lies within the range another seed of the default could reach is not
distinguishable from the default by this study: the 95% prediction interval of one more draw
from the default's seeds, mean +- t(n - 1) * sd * sqrt(1 + 1/n). With 3 seeds t is 4.3 and the
band is wide; that is what 3 seeds can tell.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from search import record
from search.report.view import StudyView

CONFIDENCE = 0.95
ABOVE, WITHIN, BELOW = "above the noise", "within the noise", "below the noise"


@dataclass(frozen=True)
class NoiseFloor:
    """The default's value under each training seed the study gave it."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else math.nan

    def band(self) -> tuple[float, float] | None:
        """The range another seed of the default would reach 95% of the time; None below 2 seeds."""
        if self.n < 2:
            return None
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, self.n - 1)) * self.sd * math.sqrt(1 + 1 / self.n)
        return self.mean - half, self.mean + half

    def place(self, value: float) -> str | None:
        """Where a trial's value lies against the band (ABOVE, WITHIN, BELOW); None without one."""
        band = self.band()
        if band is None or value is None or not math.isfinite(value):
            return None
        if value > band[1]:
            return ABOVE
        return BELOW if value < band[0] else WITHIN


def default_runs(view: StudyView) -> list[FrozenTrial]:
    """The default's complete runs: its trial and its replicas, by seed."""
    default, retried = view.default_trial(), view.retried()
    runs = [t for t in view.trials if record.is_replica(t) and t.state == TrialState.COMPLETE
            and t.number not in retried]
    if default is not None and default.state == TrialState.COMPLETE:
        runs.append(default)
    return sorted((t for t in runs if t.value is not None and math.isfinite(t.value)),
                  key=view.train_seed)


def noise_floor(view: StudyView) -> NoiseFloor | None:
    """The default's values across seeds, or None when the study has none of them."""
    runs = default_runs(view)
    if not runs:
        return None
    return NoiseFloor(tuple(float(t.value) for t in runs), tuple(view.train_seed(t) for t in runs))


def describe(noise: NoiseFloor | None, metric: str) -> str:
    """One sentence on the noise floor, for the summary and the sections that use it."""
    if noise is None:
        return "not measured (the study has no complete run of the default)"
    if noise.n < 2:
        return (f"not measured: the default trained with one seed ({noise.values[0]:.4f}); a study "
                "with `default_seeds` of 2 or more trains it with more")
    lo, hi = noise.band()
    return (f"the default over {noise.n} seeds: {metric} {noise.mean:.4f} ± {noise.sd:.4f}; another "
            f"seed would land in [{lo:.4f}, {hi:.4f}] 95% of the time, so a trial there is not "
            "distinguishable from the default")


def noise_note(view: StudyView, noise: NoiseFloor | None) -> str:
    """For the importances: how many complete trials lie within the default's seed spread; their
    differences are what another seed could undo, and an importance computed over them partly
    ranks that noise."""
    if noise is None or noise.band() is None:
        return ""
    trials = view.ranked()
    within = [t for t in trials if noise.place(t.value) == WITHIN]
    if not within:
        return (f"Every complete trial lies outside the default's seed spread "
                f"([{noise.band()[0]:.4f}, {noise.band()[1]:.4f}], {noise.n} seeds).")
    return (f"**{len(within)} of the {len(trials)} complete trials lie within the default's seed "
            f"spread** ([{noise.band()[0]:.4f}, {noise.band()[1]:.4f}], {noise.n} seeds): they are not "
            "distinguishable from the default, and the differences among them are what another "
            "training seed could undo. Importances computed over them partly rank that noise.")
