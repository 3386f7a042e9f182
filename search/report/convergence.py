"""The final evaluation's convergence table: each configuration's value at the study's budget
beside its value at convergence, the Spearman correlation between the two rankings, and a plain
warning when the ranking at the budget does not survive convergence.

Under a short budget a study ranks configurations by how fast they learn (issue 14: the default
looked 9x worse at 6 epochs and was 1.45x worse at convergence), so this is the table that says
whether the study's ranking, importances and effects can be read as "which settings are best".
"""
from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter
from dataclasses import dataclass

from scipy import stats

from caser.stopping import BUDGET
from search.report import fmt
from search.report.final import Candidate, FinalResults
from search.report.view import short_metric

# Below this Spearman correlation the two rankings are called different in the warning.
AGREEMENT = 0.8
# A min_delta above this share of a configuration's converged value asks each epoch for a gain
# its learning may not reach while it still improves: patience can then end it too soon.
MIN_DELTA_SHARE = 0.02


@dataclass(frozen=True)
class RankAgreement:
    rho: float  # Spearman's correlation of value at budget and converged value; nan when undefined
    n: int  # configurations with both values (trials; the bare defaults have no budget value)
    best_at_budget: Candidate | None
    best_converged: Candidate | None


def converged_mean(res: FinalResults, cand: Candidate) -> float:
    runs = res.converged.get(cand.key, [])
    return statistics.fmean(c.value for c in runs) if runs else math.nan


def capped_runs(res: FinalResults) -> tuple[int, int]:
    """How many runs to convergence the cap ended while still improving, of how many."""
    runs = [run for c in res.candidates for run in res.converged.get(c.key, [])]
    return sum(run.stop_reason == BUDGET for run in runs), len(runs)


def capped_labels(res: FinalResults) -> list[str]:
    """The configurations, in the candidates' order, with a run the cap ended."""
    return [c.label for c in res.candidates
            if any(run.stop_reason == BUDGET for run in res.converged.get(c.key, []))]


def cap_caveat(res: FinalResults) -> str:
    """A plain sentence when runs to convergence ended at the cap while still improving: their
    "converged" values, epoch counts and the rankings built on them are then taken at the cap,
    and a slower learner may still gain beyond it. Empty when every run stopped by its rule."""
    n, total = capped_runs(res)
    if res.rule is None or not n:
        return ""
    which = "every run" if n == total else f"{n} of {total} runs"
    beyond = overtaking(res)
    return (f"Not converged: {which} to convergence ended at the "
            f"{res.rule.max_epochs}-epoch cap still improving ({', '.join(capped_labels(res))}), "
            "so \"at convergence\" here means at that cap: their values are lower bounds, and a "
            "configuration that learns more slowly may gain more beyond it "
            "(`--final-max-epochs` raises the cap)." + (f" {beyond}" if beyond else ""))


def recent_rate(res: FinalResults, cand: Candidate) -> float | None:
    """What the metric still gained an epoch (in the better direction, the mean over seeds) at
    the end of the runs to convergence: over the last epochs of a run the cap ended, 0 for one
    its stopping rule ended. None when a capped run did not record it (an older report)."""
    runs = res.converged.get(cand.key, [])
    if not runs:
        return None
    sign, rates = (1.0 if res.maximize else -1.0), []
    for run in runs:
        if run.stop_reason != BUDGET:
            rates.append(0.0)
        elif run.window is None:
            return None
        else:
            rates.append(sign * (run.value - run.value_before) / run.window)
    return statistics.fmean(rates)


def overtaking(res: FinalResults) -> str:
    """Whether, at the rates their runs still gained at the cap, another configuration would
    draw level with the best converged one, and how many epochs beyond the cap at the earliest;
    empty when no run was capped or a capped run did not record its gain. Gains shrink as
    training goes on, so a straight line gives the earliest epoch, not a forecast."""
    windows = {run.window for c in res.candidates for run in res.converged.get(c.key, [])
               if run.stop_reason == BUDGET}
    known = [c for c in res.candidates if not math.isnan(converged_mean(res, c))]
    if len(windows) != 1 or None in windows or not known:
        return ""
    window, sign = windows.pop(), (1.0 if res.maximize else -1.0)
    leader = max(known, key=lambda c: sign * converged_mean(res, c))
    rates = {c.key: recent_rate(res, c) for c in known}
    if rates[leader.key] is None:
        return ""
    lead_rate, metric = rates[leader.key], short_metric(res.metric)
    level = []  # (epochs beyond the cap, candidate): those gaining faster than the leader
    for cand in known:
        rate = rates[cand.key]
        if cand is not leader and rate is not None and rate > lead_rate:
            gap = sign * (converged_mean(res, leader) - converged_mean(res, cand))
            level.append((gap / (rate - lead_rate), cand))
    if any(run.stop_reason == BUDGET for run in res.converged[leader.key]):
        said = (f"Beyond the cap: {leader.label} gained {lead_rate * window:+.4f} {metric} in "
                f"the last {fmt.count(window, 'epoch')} of its runs")
    else:
        said = f"Beyond the cap: {leader.label} had stopped improving (its stopping rule ended it)"
    if not level:
        return f"{said}, and no configuration was gaining faster: at those rates none would overtake it."
    epochs, cand = min(level, key=lambda x: x[0])
    others = f" ({fmt.count(len(level) - 1, 'other')} later)" if len(level) > 1 else ""
    return (f"{said}, {cand.label} {rates[cand.key] * window:+.4f}: at those rates {cand.label} "
            f"would draw level with it about {math.ceil(epochs)} epochs beyond the cap{others}. "
            "Gains shrink as training goes on, so that is the earliest, not a forecast.")


def rank_agreement(res: FinalResults) -> RankAgreement:
    """Spearman's rho between the values at the budget and at convergence, over the trials."""
    both = [c for c in res.candidates
            if c.budget_value is not None and not math.isnan(converged_mean(res, c))]
    if not both:
        return RankAgreement(math.nan, 0, None, None)
    sign = 1.0 if res.maximize else -1.0
    at_budget = max(both, key=lambda c: sign * c.budget_value)
    converged = max(both, key=lambda c: sign * converged_mean(res, c))
    rho = math.nan
    if len(both) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: rho is nan, and said so
            rho = float(stats.spearmanr([c.budget_value for c in both],
                                        [converged_mean(res, c) for c in both]).statistic)
    return RankAgreement(rho, len(both), at_budget, converged)


def _ranks(values: dict[str, float], maximize: bool) -> dict[str, int]:
    sign = -1.0 if maximize else 1.0
    kept = [k for k, v in values.items() if not math.isnan(v)]
    order = sorted(kept, key=lambda k: sign * values[k])
    return {k: i + 1 for i, k in enumerate(order)}


def convergence_section(res: FinalResults) -> str:
    """The table and its sentences; empty when the final evaluation ran with fixed epochs."""
    if res.rule is None:
        return ("### At the budget and at convergence\n\nNot measured: `--final-epochs` trained "
                "every configuration for a fixed number of epochs instead of to convergence.")
    metric = short_metric(res.metric)
    budget = {c.key: math.nan if c.budget_value is None else c.budget_value
              for c in res.candidates}
    conv = {c.key: converged_mean(res, c) for c in res.candidates}
    budget_rank, conv_rank = _ranks(budget, res.maximize), _ranks(conv, res.maximize)
    rows = []
    for cand in res.candidates:
        runs = res.converged.get(cand.key, [])
        spread = statistics.stdev(c.value for c in runs) if len(runs) > 1 else math.nan
        ended = Counter(c.stop_reason for c in runs)
        rows.append({
            "config": cand.label,
            f"{metric} at budget": fmt.number(cand.budget_value) or "n/a",
            "epoch at budget": fmt.number(cand.budget_epoch) or "n/a",
            f"{metric} converged": fmt.number(conv[cand.key])
            + (f" ± {spread:.4f}" if not math.isnan(spread) else ""),
            "epochs picked": ", ".join(str(c.epoch) for c in runs),
            "ended by": _ended(ended),
            "rank at budget": str(budget_rank.get(cand.key, "n/a")),
            "rank converged": str(conv_rank.get(cand.key, "n/a")),
        })
    study_budget = (fmt.count(res.study_budget, "epoch") if res.study_budget is not None
                    else "not recorded")
    lead = (
        f"Each configuration is trained on train with seeds {', '.join(map(str, res.seeds))} "
        f"under the stopping rule ({res.rule.describe(res.metric)}) and validated every epoch; "
        "the best validation epoch is the epoch count picked for its test run. The value at the "
        f"budget is the trial's own ({study_budget}, one seed); the converged value is the mean "
        "over seeds at the picked epoch."
    )
    parts = ["### At the budget and at convergence", lead, fmt.table(rows)]
    parts += _sentences(res, rank_agreement(res), conv)
    return "\n\n".join(parts)


def _ended(reasons: Counter) -> str:
    """`patience` when every seed ended so, else `2 patience, 1 budget` (as cached: text)."""
    if len(reasons) == 1:
        return fmt.text(next(iter(reasons)))
    return ", ".join(f"{n} {fmt.text(r)}" for r, n in sorted(reasons.items()))


def _sentences(res: FinalResults, agree: RankAgreement, conv: dict[str, float]) -> list[str]:
    out = []
    if agree.n >= 3 and not math.isnan(agree.rho):
        out.append(f"Spearman correlation between the ranking at the budget and at convergence: "
                   f"{agree.rho:.2f} over {agree.n} configurations.")
    elif agree.n >= 3:
        out.append("Spearman correlation: undefined (every value at the budget or at "
                   "convergence is the same).")
    else:
        out.append(f"Spearman correlation: needs 3 configurations with both values, there "
                   f"are {agree.n}.")
    moved = agree.best_at_budget is not None and agree.best_at_budget is not agree.best_converged
    if moved:
        out.append(
            "**Warning: the ranking at the budget does not survive convergence.** The study's "
            f"best at its budget, {agree.best_at_budget.label}, is not the best at convergence: "
            f"{agree.best_converged.label} is. The study ranked how fast configurations learn in "
            f"{fmt.count(res.study_budget, 'epoch') if res.study_budget else 'its epochs'}, not "
            "how good they get; read its importances and "
            "effects with that in mind, and raise the budget or add a stopping rule to the study."
            + _noise_caveat(res, agree.best_at_budget, agree.best_converged)
        )
    elif agree.n >= 3 and not math.isnan(agree.rho) and agree.rho < AGREEMENT:
        out.append(
            f"**Warning: the ranking at the budget does not survive convergence** (Spearman "
            f"{agree.rho:.2f} < {AGREEMENT}). The best configuration stays first, but the order "
            "of the others changes: the study's budget measures speed of learning as much as "
            "quality." + _swaps_caveat(res)
        )
    unfinished = sorted(capped_labels(res))
    if unfinished:
        beyond = overtaking(res)
        out.append(
            f"Still improving at {fmt.count(res.rule.max_epochs, 'epoch')} (the stopping rule "
            "never fired): "
            f"{', '.join(unfinished)}. Their converged value is a lower bound; raise "
            "`--final-max-epochs`." + (f" {beyond}" if beyond else "")
        )
    out += _min_delta_sentence(res, conv)
    out += _gain_sentence(res, agree, conv)
    return out


def _min_delta_sentence(res: FinalResults, conv: dict[str, float]) -> list[str]:
    """A warning when min_delta is large against a converged value that patience ended: its
    seeds may have stopped while still learning (the metric's scale is the data's, not ours)."""
    min_delta, metric = res.rule.min_delta, short_metric(res.metric)
    cut = []
    for cand in res.candidates:
        runs, value = res.converged.get(cand.key, []), conv.get(cand.key, math.nan)
        if (any(run.stop_reason == "patience" for run in runs) and not math.isnan(value)
                and min_delta > MIN_DELTA_SHARE * abs(value)):
            cut.append(f"{cand.label} ({metric} {value:.4f}, epochs picked "
                       f"{', '.join(str(run.epoch) for run in runs)})")
    if not cut:
        return []
    return [
        f"**The stopping rule may have cut these short:** {'; '.join(cut)}. Its min improvement, "
        f"{min_delta:g}, is more than {MIN_DELTA_SHARE:.0%} of their converged {metric}: an epoch "
        "had to gain that much to count, so patience may have ended runs that were still "
        "learning, and their converged values and epoch counts understate them. Raise "
        "`--final-patience`, or give the study a `min_delta` on this metric's scale "
        "(`[study] min_delta`, `--min-delta`)."
    ]


def _noise_caveat(res: FinalResults, a: Candidate, b: Candidate) -> str:
    """A clause when two converged means lie within their seeds' spread of each other."""
    runs_a, runs_b = res.converged.get(a.key, []), res.converged.get(b.key, [])
    if len(runs_a) < 2 or len(runs_b) < 2:
        return (" With one seed the converged values have no spread to judge the swap by: "
                "run more `--final-seeds`.")
    spread = max(statistics.stdev(c.value for c in runs) for runs in (runs_a, runs_b))
    if abs(converged_mean(res, a) - converged_mean(res, b)) < spread:
        return (f" The two converged means differ by less than their seed-to-seed standard "
                f"deviation ({spread:.4f}), so the swap may be noise: more `--final-seeds` "
                "would tell.")
    return ""


def _swaps_caveat(res: FinalResults) -> str:
    """A clause when every pair whose order changed lies within its seeds' spread."""
    sign = 1.0 if res.maximize else -1.0
    both = [c for c in res.candidates
            if c.budget_value is not None and not math.isnan(converged_mean(res, c))]
    swapped = [(a, b) for i, a in enumerate(both) for b in both[i + 1:]
               if sign * (a.budget_value - b.budget_value)
               * sign * (converged_mean(res, a) - converged_mean(res, b)) < 0]
    if not swapped or any(_noise_caveat(res, a, b) == "" for a, b in swapped):
        return ""
    return (" Every pair whose order changed differs by less than its seeds' spread (or was "
            "judged on one seed), so the change may be noise: more `--final-seeds` would tell.")


def _gain_sentence(res: FinalResults, agree: RankAgreement, conv: dict[str, float]) -> list[str]:
    """How far the best configuration is ahead of the default, at the budget and at convergence."""
    default = res.default()
    best = agree.best_converged
    if best is None or best is default or None in (default.budget_value, best.budget_value):
        return []
    before, after = best.budget_value, conv[best.key]
    base_before, base_after = default.budget_value, conv[default.key]
    if not all(math.isfinite(x) and x > 0 for x in (before, after, base_before, base_after)):
        return []
    return [f"{best.label} against the default: {before / base_before:.2f}x at the budget, "
            f"{after / base_after:.2f}x at convergence ({short_metric(res.metric)})."]
