"""Seed-level verdicts (search/report/seed_level.py): the interval of a configuration's test MAP
against the default's counts the seeds as well as the users, on simulated tables whose truth is
known."""
from __future__ import annotations

import numpy as np
import pytest

from search.report.seed_level import (BETTER, TOO_FEW_SEEDS, UNDECIDED, WORSE, ap_table, common_users,
                                      seed_level, seed_means_level)


def simulated(rng: np.random.Generator, delta: float, seeds: int = 3, users: int = 500,
              seed_sd: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, users) AP of a configuration whose true MAP is the default's plus delta: a user
    effect both share, a per-configuration user effect, a seed effect per run, and noise."""
    user = rng.gamma(2.0, 0.08, users)
    a = (user + delta + rng.normal(0, 0.02, users) + rng.normal(0, seed_sd, (seeds, 1))
         + rng.normal(0, 0.05, (seeds, users)))
    b = user + rng.normal(0, 0.02, users) + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, 0.05, (seeds, users))
    return a, b


def per_user_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """A paired t-interval over users of the seed-averaged difference: what a per-user test sees."""
    d = a.mean(0) - b.mean(0)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean() - half, d.mean() + half


def test_the_interval_covers_a_known_difference_when_seeds_move_the_metric() -> None:
    rng = np.random.default_rng(7)
    delta, runs = 0.005, 300
    covered = per_user_covered = 0
    for _ in range(runs):
        a, b = simulated(rng, delta)
        result = seed_level(a, b)
        covered += result.lo <= delta <= result.hi
        lo, hi = per_user_interval(a, b)
        per_user_covered += lo <= delta <= hi
    assert covered / runs >= 0.92  # nominal 95%
    # Users alone miss the seed effect: the per-user interval is far too narrow.
    assert per_user_covered / runs < 0.6


def test_without_a_seed_effect_the_interval_is_close_to_the_per_user_one() -> None:
    rng = np.random.default_rng(3)
    a, b = simulated(rng, 0.0, seeds=5, users=2000, seed_sd=0.0)
    result = seed_level(a, b)
    lo, hi = per_user_interval(a, b)
    assert result.hi - result.lo < 3 * (hi - lo)


def test_a_clear_lead_is_better_and_its_mirror_is_worse() -> None:
    rng = np.random.default_rng(1)
    a, b = simulated(rng, 0.05, seeds=4, seed_sd=0.002)
    assert seed_level(a, b).verdict == BETTER
    assert seed_level(b, a).verdict == WORSE
    assert seed_level(b, a).diff == pytest.approx(-seed_level(a, b).diff)


def test_a_lead_smaller_than_the_seed_spread_is_not_distinguishable() -> None:
    rng = np.random.default_rng(2)
    a, b = simulated(rng, 0.002, seeds=3, seed_sd=0.02)
    result = seed_level(a, b)
    assert result.lo < 0 < result.hi and result.verdict == UNDECIDED


def test_fewer_than_three_seeds_give_no_seed_level_verdict() -> None:
    rng = np.random.default_rng(4)
    a, b = simulated(rng, 0.2, seeds=2, seed_sd=0.0)
    result = seed_level(a, b)
    assert result.lo > 0  # an interval exists, and it is far from 0 ...
    assert result.verdict == TOO_FEW_SEEDS  # ... but two seeds cannot show how far a retraining moves
    assert seed_level(a[:1], b[:1]).verdict == TOO_FEW_SEEDS


def test_the_order_of_the_users_does_not_change_the_interval() -> None:
    rng = np.random.default_rng(5)
    a, b = simulated(rng, 0.01)
    order = rng.permutation(a.shape[1])
    first, second = seed_level(a, b), seed_level(a[:, order], b[:, order])
    assert (first.lo, first.hi) == pytest.approx((second.lo, second.hi))


def test_tables_read_each_run_at_the_users_every_run_evaluated() -> None:
    runs_a = [((3, 1, 2), (0.3, 0.1, 0.2)), ((2, 3), (0.25, 0.35))]
    runs_b = [((1, 2, 3), (0.0, 0.5, 1.0))]
    users = common_users(runs_a, runs_b)
    assert users == [2, 3]
    assert ap_table(runs_a, users).tolist() == [[0.2, 0.3], [0.25, 0.35]]
    assert ap_table(runs_b, users).tolist() == [[0.5, 1.0]]


def test_one_value_per_seed_gives_welchs_interval() -> None:
    from scipy import stats

    a, b = [0.25, 0.26, 0.24], [0.20, 0.22, 0.21]
    result = seed_means_level(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (result.lo, result.hi) == pytest.approx((ci.low, ci.high))
    assert result.verdict == BETTER
