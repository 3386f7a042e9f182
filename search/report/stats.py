"""The statistics of the final evaluation: mean, std and a t-interval per metric, and tests of a
config's per-seed MAP against the default's (Welch's t-test; Wilcoxon signed-rank, since every
config is trained with the same seeds and so the runs pair up)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample std (ddof=1); nan for a single seed
    lo: float  # 95% t-interval of the mean; nan for a single seed
    hi: float


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample std and the two-sided 95% t-interval of the mean."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    diff: float  # mean(a) - mean(b)
    welch_p: float
    wilcoxon_p: float
    note: str


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact signed-rank test on n pairs can give: 2 / 2^n."""
    return 2.0 / 2**n if n > 0 else 1.0


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Test a against b, where a[i] and b[i] were trained with the same seed."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = min(len(x), len(y))
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    notes: list[str] = []
    welch = math.nan
    if len(x) >= 2 and len(y) >= 2:
        if x.std() == 0 and y.std() == 0:
            welch = 1.0 if diff == 0 else 0.0
            notes.append("no spread across seeds")
        else:
            welch = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    else:
        notes.append("Welch needs at least 2 seeds")
    wilcoxon = math.nan
    d = x[:n] - y[:n]
    if n == 0:
        pass
    elif np.all(d == 0):
        wilcoxon = 1.0
        notes.append("identical per seed")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on small n; the note below says it
            wilcoxon = float(stats.wilcoxon(d).pvalue)
    if 0 < n and min_wilcoxon_p(n) > ALPHA:
        notes.append(
            f"{n} seeds: Wilcoxon p cannot go below {min_wilcoxon_p(n):.3g}; use 6 or more"
        )
    return Comparison(diff, welch, wilcoxon, "; ".join(notes))
