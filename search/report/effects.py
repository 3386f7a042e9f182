"""Section 4, effects: the metric per value of each categorical hyperparameter (and of numeric
ones with few distinct values, like L), per quantile bin of the other numeric ones.

This is the table where "relu vs tanh" or "L=1 vs L=5" is read: best and median, because the
best alone rewards the value that was simply sampled most often.
"""
from __future__ import annotations

import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution

from search.report import fmt
from search.report.view import StudyView

N_BINS = 4
# A numeric parameter with at most this many distinct sampled values is shown per value.
MAX_LEVELS = 10


def effect_rows(view: StudyView) -> list[dict[str, str]]:
    """One row per (parameter, value or bin): count, best and median metric."""
    trials = view.ranked()
    if not trials:
        return []
    dists = view.distributions()
    rows: list[dict[str, str]] = []
    for name in view.param_names():
        frame = pd.DataFrame(
            [(t.params[name], t.value) for t in trials if name in t.params], columns=["x", "y"]
        )
        if frame.empty:
            continue
        categorical = isinstance(dists.get(name), CategoricalDistribution)
        if categorical or frame["x"].nunique() <= MAX_LEVELS:
            groups = _by_value(frame, name, categorical, dists.get(name))
        else:
            groups = _by_bin(frame, name)
        for label, ys in groups:
            best = ys.max() if view.maximize else ys.min()
            rows.append(
                {
                    "parameter": fmt.text(name),
                    "value": label,
                    "trials": str(len(ys)),
                    "best": fmt.number(float(best)),
                    "median": fmt.number(float(ys.median())),
                }
            )
    return rows


def _by_value(
    frame: pd.DataFrame, name: str, categorical: bool, dist: BaseDistribution | None
) -> list[tuple[str, pd.Series]]:
    if categorical:
        # The study's own order of choices, so "relu" comes where the study file put it.
        values = [c for c in dist.choices if (frame["x"] == c).any()]
    else:
        values = sorted(frame["x"].unique())
    return [(fmt.param(name, v), frame.loc[frame["x"] == v, "y"]) for v in values]


def _by_bin(frame: pd.DataFrame, name: str) -> list[tuple[str, pd.Series]]:
    bins = pd.qcut(frame["x"], N_BINS, duplicates="drop")
    out = []
    for interval in bins.cat.categories:
        ys = frame.loc[bins == interval, "y"]
        if ys.empty:
            continue
        xs = frame.loc[bins == interval, "x"]
        # Label by the sampled values in the bin, not qcut's padded edges.
        lo, hi = fmt.param(name, xs.min()), fmt.param(name, xs.max())
        out.append((lo if lo == hi else f"{lo} .. {hi}", ys))
    return out


def effects_section(view: StudyView) -> str:
    rows = effect_rows(view)
    head = f"## Effects (best and median {view.metric} per value, complete trials only)"
    if not rows:
        return f"{head}\n\nNo complete trial to group."
    note = (
        f"Categorical parameters and numeric ones with at most {MAX_LEVELS} distinct values are "
        f"shown per value; the other numeric ones per quantile bin ({N_BINS} bins, labelled "
        "by the smallest and largest sampled value inside)."
    )
    return "\n\n".join([head, note, fmt.table(rows)])
