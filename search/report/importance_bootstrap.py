"""How far to trust the importances: bootstrap intervals over trials for each evaluator.

On issue 14's default study the two evaluators disagreed completely (PED-ANOVA put nh first,
fANOVA ac_fc) and the report gave no way to tell which to believe. Resampling the complete
trials with replacement and re-running both evaluators shows how much each estimate moves with
the sample (whether they tell the same story at all: `search.report.importance.agreement`).

Seeded (`BOOTSTRAP_SEED`) and so deterministic: the same study gives the same intervals. Each
resample costs one fANOVA fit (about a second), hence a modest default count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from search.report import DEFAULT_IMPORTANCE_BOOTSTRAP
from search.report.importance import EVALUATORS, MIN_TRIALS, evaluate
from search.report.view import StudyView

DEFAULT_RESAMPLES = DEFAULT_IMPORTANCE_BOOTSTRAP
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass
class ImportanceBootstrap:
    """Percentile intervals per evaluator and parameter, from `done` resamples of the trials."""

    requested: int
    seed: int = BOOTSTRAP_SEED
    done: dict[str, int] = field(default_factory=dict)  # evaluator -> resamples it evaluated
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


def bootstrap_importances(view: StudyView, resamples: int = DEFAULT_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> ImportanceBootstrap:
    """Resample the complete trials with replacement `resamples` times; evaluate both each time."""
    out = ImportanceBootstrap(requested=resamples, seed=seed)
    complete = view.ranked()
    if resamples < 1 or len(complete) < MIN_TRIALS:
        return out
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list[float]]] = {name: {} for name in EVALUATORS}
    for _ in range(resamples):
        picks = rng.integers(0, len(complete), len(complete))
        values, _errors = evaluate([complete[i] for i in picks], view.direction)
        for name, importances in values.items():
            out.done[name] = out.done.get(name, 0) + 1
            for param, value in importances.items():
                draws[name].setdefault(param, []).append(value)
    tail = (1 - CONFIDENCE) / 2 * 100
    for name, per_param in draws.items():
        n = out.done.get(name, 0)
        out.intervals[name] = {
            # A parameter missing from a resample (fANOVA drops one not every trial has) is
            # left out of that resample, not counted as 0.
            p: tuple(float(x) for x in np.percentile(v, [tail, 100 - tail]))
            for p, v in per_param.items() if len(v) == n
        }
    return out
