"""Seed-level verdicts on the final evaluation's results: each configuration against the default,
on validation at convergence (one value per seed) and on test (per-user AP of every seed), by
`search.report.seed_level`. The final section shows them; the recommendation rests on them."""
from __future__ import annotations

import math
import statistics

from scipy import stats

from search.report.convergence import converged_mean
from search.report.final import Candidate, FinalResults
from search.report.seed_level import SeedLevel, ap_table, common_users, seed_level, seed_means_level


def validation_levels(res: FinalResults) -> dict[str, SeedLevel]:
    """Per non-default configuration: its converged validation value against the default's,
    seeds as the unit, signed so that positive is better."""
    sign = 1.0 if res.maximize else -1.0
    base = [sign * c.value for c in res.converged.get(res.default().key, [])]
    return {c.key: seed_means_level([sign * r.value for r in res.converged.get(c.key, [])], base)
            for c in res.candidates if not c.is_default}


def test_level(res: FinalResults, cand: Candidate) -> SeedLevel | None:
    """Its test MAP against the default's, seeds and users counted; None without per-user AP."""
    runs = [(t.users, t.user_ap) for t in res.tested.get(cand.key, [])]
    base = [(t.users, t.user_ap) for t in res.tested.get(res.default().key, [])]
    if not runs or not base or any(not users for users, _ in runs + base):
        return None
    users = common_users(runs, base)
    return seed_level(ap_table(runs, users), ap_table(base, users))


def test_map(res: FinalResults, cand: Candidate) -> float:
    """Its mean test MAP over seeds (nan without test runs)."""
    runs = [t.metrics["test/map"] for t in res.tested.get(cand.key, []) if "test/map" in t.metrics]
    return statistics.fmean(runs) if runs else math.nan


def validation_test_tau(res: FinalResults) -> tuple[float, int]:
    """Kendall's tau between the configurations' ranking by converged validation value and by
    test MAP, and how many configurations it covers (nan below 3, or without convergence)."""
    both = [c for c in res.candidates
            if not math.isnan(converged_mean(res, c)) and not math.isnan(test_map(res, c))]
    if res.rule is None or len(both) < 3:
        return math.nan, len(both)
    sign = 1.0 if res.maximize else -1.0
    tau = stats.kendalltau([sign * converged_mean(res, c) for c in both], [test_map(res, c) for c in both])
    return float(tau.statistic), len(both)
