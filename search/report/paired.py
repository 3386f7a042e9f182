"""Paired statistics over users: a configuration against the default on the same test users.

Users, not seeds, are the unit of a recommender's test metric: MAP is a mean of per-user AP, so
two configurations evaluated on the same users pair up user by user (WarpRec's significance
module does the same). Per user, AP is first averaged over the seeds, which were the same for
every configuration. Then:

- Wilcoxon signed-rank test on the per-user differences (users with no difference drop out,
  scipy's default `zero_method="wilcox"`), two-sided;
- Holm's step-down correction across the K configurations compared with the default;
- effect sizes: the mean per-user AP difference with its 95% t-interval, and the matched-pairs
  rank-biserial correlation (W+ - W-) / (W+ + W-), between -1 (the default wins every pair) and
  1, with a seeded percentile-bootstrap interval over users.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP = 1000  # resamples of users for the rank-biserial interval
BOOTSTRAP_SEED = 0


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order; nan stays nan and is not counted.

    Sorted ascending, the i-th smallest of m is multiplied by (m - i), i from 0, capped at 1,
    and made non-decreasing: reject where the adjusted value is below alpha, and the family-wise
    error rate is at most alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    running = 0.0
    for i, idx in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out.tolist()


def mean_per_user(runs: Sequence[tuple[Sequence[int], Sequence[float]]]) -> dict[int, float]:
    """Per-user AP averaged over seeds: each run is (user ids, AP per user); a user evaluated in
    only some runs is averaged over those."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for users, ap in runs:
        for u, a in zip(users, ap):
            sums[int(u)] = sums.get(int(u), 0.0) + float(a)
            counts[int(u)] = counts.get(int(u), 0) + 1
    return {u: sums[u] / counts[u] for u in sums}


def matched(a: dict[int, float], b: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The users both evaluated, in id order: (a's values, b's values)."""
    users = sorted(set(a) & set(b))
    return np.array([a[u] for u in users]), np.array([b[u] for u in users])


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of differences d (zeros dropped); nan if none."""
    d = d[d != 0]
    if len(d) == 0:
        return math.nan
    ranks = stats.rankdata(np.abs(d))
    total = ranks.sum()
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)


@dataclass(frozen=True)
class UserComparison:
    users: int  # users both configurations were evaluated on
    ties: int  # users with no difference (they drop out of the signed-rank test)
    diff: float  # mean per-user AP difference (a - b)
    diff_lo: float  # its 95% t-interval
    diff_hi: float
    wilcoxon_p: float
    rank_biserial: float
    rb_lo: float  # its 95% percentile-bootstrap interval over users
    rb_hi: float


def compare_users(a: np.ndarray, b: np.ndarray, *, bootstrap: int = BOOTSTRAP,
                  seed: int = BOOTSTRAP_SEED) -> UserComparison:
    """a[i] and b[i]: one user's AP under two configurations (see `matched`)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    nan = math.nan
    if n == 0:
        return UserComparison(0, 0, nan, nan, nan, nan, nan, nan, nan)
    ties = int(np.sum(d == 0))
    mean = float(d.mean())
    lo = hi = nan
    if n >= 2:
        sd = float(d.std(ddof=1))
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    p = 1.0 if ties == n else wilcoxon_p(d)
    rb = rank_biserial(d)
    rb_lo = rb_hi = nan
    if bootstrap > 0 and ties < n:
        rng = np.random.default_rng(seed)
        draws = [rank_biserial(d[rng.integers(0, n, n)]) for _ in range(bootstrap)]
        draws = [x for x in draws if not math.isnan(x)]
        if draws:
            tail = (1 - CONFIDENCE) / 2 * 100
            rb_lo, rb_hi = (float(x) for x in np.percentile(draws, [tail, 100 - tail]))
    return UserComparison(n, ties, mean, lo, hi, p, rb, rb_lo, rb_hi)


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of differences d, as scipy computes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on ties and small samples; we report both
        return float(stats.wilcoxon(d).pvalue)
