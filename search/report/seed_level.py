"""Seed-level verdicts: a configuration against the default with every source of variance counted.

A per-user test (`search.report.paired`) asks whether two trained models differ on these users;
a researcher asks whether a configuration is better, and then the training seed is a source of
variance too (Bouthillier et al., MLSys 2021): retrained with other seeds, either configuration
lands elsewhere. Test MAP is a mean of per-user AP over a (seeds x users) table per configuration,
the users the same in every run (crossed with the seeds, not nested in them). A mixed model with
a seed effect per configuration and a user effect gives the variance of the difference in MAP as
the sum of three parts, each estimated from the tables (moment estimates):

    var(MAP_a - MAP_b) = var_s(seed means of a) / S_a + var_s(seed means of b) / S_b
                         + var_u(per-user difference of the seed-averaged AP) / U

and the interval is the difference +- t * sqrt(var), with Satterthwaite's degrees of freedom, so
that 3 seeds give the wide interval 3 seeds deserve. The user term carries each user's noise a
second time (it is in the seed means already): the interval errs wide, never narrow.

Why not the hierarchical bootstrap (resample seeds, then users): on simulated tables where the
seed effect dominates (`bench/seed_interval_coverage.py --noise-sd 0.02`, seed sd 0.01), its 95%
interval covered the true difference in 70% of cases at 2 seeds, 81% at 3, 90% at 5 and 92% at 10
(a bootstrap of 3 values cannot see their spread); this interval covered 95% to 97% from 2 seeds
up, and 94% to 100% where per-user noise dominates (docs/measurements.md). "Better" or "worse
than the default" needs the interval to exclude 0; with fewer than `MIN_SEEDS` seeds no
seed-level verdict is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer seeds per configuration: no seed-level verdict

BETTER, WORSE, UNDECIDED = "better than the default", "worse than the default", "not distinguishable"
TOO_FEW_SEEDS = "no seed-level verdict"


@dataclass(frozen=True)
class SeedLevel:
    """The difference in MAP (a configuration minus the default) and its interval."""

    diff: float
    lo: float
    hi: float
    seeds: int  # the fewer seeds of the two configurations
    users: int
    dof: float

    @property
    def verdict(self) -> str:
        if self.seeds < MIN_SEEDS or math.isnan(self.lo):
            return TOO_FEW_SEEDS
        if self.lo > 0:
            return BETTER
        if self.hi < 0:
            return WORSE
        return UNDECIDED


def ap_table(runs: Sequence[tuple[Sequence[int], Sequence[float]]], users: Sequence[int]) -> np.ndarray:
    """(seeds, users) AP of one configuration: each run is (user ids, AP per user), read at
    `users` (every run must have evaluated each of them: `common_users`)."""
    table = np.empty((len(runs), len(users)))
    for row, (ids, ap) in enumerate(runs):
        by_user = dict(zip((int(u) for u in ids), (float(a) for a in ap)))
        table[row] = [by_user[int(u)] for u in users]
    return table


def common_users(*configs: Sequence[tuple[Sequence[int], Sequence[float]]]) -> list[int]:
    """The users every run of every configuration evaluated, in id order."""
    sets = [set(int(u) for u in ids) for runs in configs for ids, _ in runs]
    return sorted(set.intersection(*sets)) if sets else []


def seed_level(config: np.ndarray, default: np.ndarray) -> SeedLevel:
    """MAP(config) - MAP(default) with its interval, from (seeds, users) AP tables whose columns
    are the same users in the same order (see the module docstring)."""
    a, b = np.asarray(config, dtype=float), np.asarray(default, dtype=float)
    if a.shape[1] != b.shape[1]:
        raise ValueError("the two tables must hold the same users")
    users = a.shape[1]
    if users == 0 or len(a) == 0 or len(b) == 0:
        return SeedLevel(math.nan, math.nan, math.nan, min(len(a), len(b)), users, math.nan)
    user_part = (a.mean(0) - b.mean(0)).var(ddof=1) / users if users > 1 else None
    return _interval(a.mean(1), b.mean(1), users, user_part)


def seed_means_level(config: Sequence[float], default: Sequence[float]) -> SeedLevel:
    """The same interval from one value per seed (a converged validation value, say), where no
    per-user values were kept: the seed parts only (Welch's interval)."""
    return _interval(np.asarray(config, dtype=float), np.asarray(default, dtype=float), 0, None)


def _interval(a: np.ndarray, b: np.ndarray, users: int, user_part: float | None) -> SeedLevel:
    """mean(a) - mean(b) over per-seed means, +- t * sqrt(the variance parts)."""
    seeds, nan = min(len(a), len(b)), math.nan
    if seeds == 0:
        return SeedLevel(nan, nan, nan, seeds, users, nan)
    diff = float(a.mean() - b.mean())
    if seeds < 2:
        return SeedLevel(diff, nan, nan, seeds, users, nan)
    parts = [a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)]
    dofs = [len(a) - 1, len(b) - 1]
    if user_part is not None:
        parts.append(user_part)
        dofs.append(users - 1)
    var = sum(parts)
    if var == 0:
        return SeedLevel(diff, diff, diff, seeds, users, math.inf)
    dof = var**2 / sum(p**2 / d for p, d in zip(parts, dofs))  # Satterthwaite
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * math.sqrt(var)
    return SeedLevel(diff, diff - half, diff + half, seeds, users, float(dof))
