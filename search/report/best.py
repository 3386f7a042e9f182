"""Section 2, the best configurations: the top K complete trials (and the default, always) with
every sampled hyperparameter and every validation metric, plus the tuning playbook's check for
a best value sitting at the edge of its search range (a sign the range should grow)."""
from __future__ import annotations

import math

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial

from caser.stopping import BUDGET
from search import record
from search.record import epochs_run, trial_time
from search.report import fmt
from search.report.noise import WITHIN, NoiseFloor
from search.report.view import VAL_METRICS, StudyView, short_metric

# A value within this fraction of the range's width (log width for log ranges) is "at the edge".
EDGE_FRACTION = 0.05
# A best epoch in this last share of a trial that ran its whole budget: it was still improving.
STILL_RISING_SHARE = 0.1


def shown_trials(view: StudyView, top_k: int) -> list[FrozenTrial]:
    """The top K complete trials, then the default trial when it is not among them."""
    top = view.ranked()[:top_k]
    default = view.default_trial()
    if default is not None and default.number not in {t.number for t in top}:
        top.append(default)
    return top


def _name(view: StudyView, trial: FrozenTrial) -> str:
    return f"{trial.number} (default)" if view.is_default(trial) else str(trial.number)


def _rank(view: StudyView, trial: FrozenTrial) -> str:
    numbers = [t.number for t in view.ranked()]
    if trial.number in numbers:
        return str(numbers.index(trial.number) + 1)
    return trial.state.name.lower()


def best_section(view: StudyView, top_k: int, noise: NoiseFloor | None = None) -> str:
    """noise: the default's seed spread; each trial is marked against it when there is one."""
    trials = shown_trials(view, top_k)
    params = view.param_names()
    metrics = [view.metric] + [m for m in VAL_METRICS if m != view.metric]
    metrics = [m for m in metrics if m == view.metric or any(m in t.user_attrs for t in trials)]
    hp_rows, metric_rows = [], []
    for trial in trials:
        head = {"rank": _rank(view, trial), "trial": _name(view, trial)}
        hp_rows.append({**head, **{fmt.text(p): fmt.param(p, trial.params.get(p, ""))
                                   for p in params}})
        values = {m: trial.user_attrs.get(m) for m in metrics}
        if values[view.metric] is None:
            values[view.metric] = trial.value
        metric_rows.append(
            {
                **head,
                **{short_metric(m): fmt.number(v) for m, v in values.items()},
                "best epoch": fmt.number(trial.user_attrs.get(record.BEST_EPOCH)),
                "epochs run": str(epochs_run(trial)),
                "time": fmt.seconds(trial_time(trial)),
                "parameters": _count(trial.user_attrs.get(record.NUM_PARAMS)),
                **_against_noise(view, trial, noise),
            }
        )
    parts = [
        f"## Best configurations ({_how_many(top_k, len(view.ranked()))}, by "
        f"{view.metric}, {'higher' if view.maximize else 'lower'} is better)",
        "### Hyperparameters",
        fmt.table(hp_rows),
    ]
    if view.fixed:
        parts.append(
            "Fixed for the whole study: "
            + ", ".join(f"{fmt.text(k)} = {fmt.param(k, v)}"
                        for k, v in sorted(view.fixed.items()))
            + "."
        )
    if view.default_trial() is None:
        parts.append("No trial is marked `is_default`, so the original defaults were not run.")
    parts += ["### Validation metrics at the best epoch", fmt.table(metric_rows)]
    if noise is not None and noise.band() is not None:
        lo, hi = noise.band()
        parts.append(f"vs the default's seeds: whether the trial's {view.metric} lies beyond what another "
                     f"training seed of the default would reach ([{lo:.4f}, {hi:.4f}], from its "
                     f"{noise.n} seeds); a trial within it is not distinguishable from the default.")
    rising = still_rising(view, trials)
    if rising:
        parts.append(_still_rising_sentence(rising))
    parts.append(edge_section(view))
    return "\n\n".join(parts)


def still_rising(view: StudyView, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials the epoch budget ended while they were still improving: they ran every epoch
    of it and their best epoch lies in its last tenth. Their values understate them, and the
    ranking among them is the ranking at one epoch count, not at convergence (in the 100-trial
    default sweep of 2026-12-07 every top trial's best epoch was 96 to 100 of 100)."""
    out = []
    for trial in trials:
        ran, best = epochs_run(trial), trial.user_attrs.get(record.BEST_EPOCH)
        reason = trial.user_attrs.get(record.STOP_REASON)
        whole = reason == BUDGET if reason is not None else (
            view.max_epochs is not None and ran >= view.max_epochs)
        if whole and ran > 0 and isinstance(best, (int, float)) and best > (1 - STILL_RISING_SHARE) * ran:
            out.append(trial)
    return out


def _still_rising_sentence(trials: list[FrozenTrial]) -> str:
    names = ", ".join(str(t.number) for t in trials)
    bests = ", ".join(f"{int(t.user_attrs[record.BEST_EPOCH])} of {epochs_run(t)}" for t in trials)
    which = "trial" if len(trials) == 1 else "trials"
    return (f"**Still improving when the budget ended them:** {which} {names} (best epoch "
            f"{bests}). Their values are what they reached at the budget, not at convergence, so "
            "the ranking above may change with more epochs; `report.py --final-seeds` trains them "
            "to convergence.")


def _how_many(top_k: int, complete: int) -> str:
    """`top 5 of 8 complete trials`; `all 8 complete trials` when K reaches them all."""
    if top_k < complete:
        return f"top {top_k} of {complete} complete trials"
    return "the one complete trial" if complete == 1 else f"all {complete} complete trials"


def _against_noise(view: StudyView, trial: FrozenTrial, noise: NoiseFloor | None) -> dict[str, str]:
    """The cell that says whether another seed of the default could reach this trial's value."""
    if noise is None or noise.band() is None:
        return {}
    if view.is_default(trial):
        return {"vs the default's seeds": f"the default ({noise.n} seeds)"}
    place = noise.place(trial.value)
    return {"vs the default's seeds": "not distinguishable" if place == WITHIN else (place or "")}


def _count(n: object) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) and not isinstance(n, bool) else ""


def edge_position(dist: BaseDistribution, value: float) -> float | None:
    """Where `value` sits in a numeric range, 0 at low and 1 at high (in log space for log)."""
    if not isinstance(dist, (FloatDistribution, IntDistribution)) or dist.high == dist.low:
        return None
    if dist.log:
        return (math.log(value) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low))
    return (value - dist.low) / (dist.high - dist.low)


def edge_flags(view: StudyView) -> list[dict[str, str]]:
    """For each numeric parameter: the best trial's value, its range and an edge flag."""
    ranked = view.ranked()
    if not ranked:
        return []
    best, dists = ranked[0], view.distributions()
    rows = []
    for name in view.param_names():
        dist = dists.get(name)
        if name not in best.params or dist is None or isinstance(dist, CategoricalDistribution):
            continue
        pos = edge_position(dist, best.params[name])
        if pos is None:
            continue
        flag = ""
        if pos <= EDGE_FRACTION:
            flag = "at the LOW edge: consider extending the range down"
        elif pos >= 1 - EDGE_FRACTION:
            flag = "at the HIGH edge: consider extending the range up"
        scale = ", log" if dist.log else ""
        rows.append(
            {
                "parameter": fmt.text(name),
                "range": f"[{fmt.param(name, dist.low)}, {fmt.param(name, dist.high)}{scale}]",
                "best value": fmt.param(name, best.params[name]),
                "position": f"{pos:.2f}",
                "flag": flag,
            }
        )
    return rows


def edge_section(view: StudyView) -> str:
    rows = edge_flags(view)
    if not rows:
        return "### Search-space edges\n\nNo numeric hyperparameter was sampled."
    flagged = sum(1 for r in rows if r["flag"])
    lead = (
        f"{flagged} of the best trial's numeric values sit within {fmt.percent(EDGE_FRACTION)} of "
        "an edge of the sampled range: the optimum may lie outside it."
        if flagged
        else "No best value sits at the edge of its sampled range."
    )
    return "\n\n".join(["### Search-space edges (best trial)", lead, fmt.table(rows)])
