"""Section 3, hyperparameter importances: PED-ANOVA (Optuna 5's default) beside fANOVA, with
what a reader needs to trust them: the trials each used, bootstrap intervals
(`search.report.importance_bootstrap`), their rank agreement, and a sentence when they disagree
or an interval is wide.

Both read complete trials only: a pruned trial has no final value. fANOVA's random forest is
seeded so that the same study always gives the same table.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.importance import (
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)

from scipy import stats

from search import record
from search.report import fmt
from search.report.view import StudyView

if TYPE_CHECKING:
    from search.report.importance_bootstrap import ImportanceBootstrap

FANOVA_SEED = 0
PED_ANOVA_QUANTILE = 0.1  # the evaluator's default, passed explicitly so that the prose agrees
MIN_TRIALS = 3  # fewer complete trials than this and no importance estimate means anything
EVALUATORS = ("PED-ANOVA", "fANOVA")
AGREE = 0.5  # Kendall's tau below this: the evaluators are said to disagree
WIDE = 0.25  # a 95% interval wider than this (importances sum to 1) is called wide
# Samplers that spread trials over the space, as fANOVA's forest assumes, by the name a study
# records ("random", as sweep.py's --sampler spells it) or Optuna's class name; the others
# (TPE, GP, CMA-ES, ...) concentrate them where the metric is good.
SPREADING_SAMPLERS = ("random", "qmc", "grid", "bruteforce")


@dataclass
class Importances:
    """Normalised importances per evaluator ({} when it could not run) and why not."""

    n_complete: int
    n_finished: int
    n_top: int = 0  # the complete trials in PED-ANOVA's top quantile
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)  # evaluator -> complete trials it read
    sampler: str | None = None  # the study's sampler, as recorded

    def order(self) -> list[str]:
        """Parameters, most important first by PED-ANOVA, then fANOVA, then name."""
        names = {p for v in self.values.values() for p in v}
        ped, fan = self.values.get("PED-ANOVA", {}), self.values.get("fANOVA", {})
        return sorted(names, key=lambda p: (-ped.get(p, -1.0), -fan.get(p, -1.0), p))


def compute_importances(view: StudyView) -> Importances:
    """Run both evaluators on the view's study; an evaluator that fails is recorded, not raised."""
    complete = view.ranked()
    # Finished as `--trials N` counts: a failed or interrupted trial is not.
    finished = [t for t in view.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    sampler = view.user_attrs.get(record.SAMPLER)
    result = Importances(n_complete=len(complete), n_finished=len(finished),
                         n_top=top_quantile_count([t.value for t in complete], view.maximize),
                         sampler=str(sampler.get("name")) if isinstance(sampler, dict) else None)
    if len(complete) < MIN_TRIALS:
        return result
    result.values, result.errors = evaluate(complete, view.direction)
    if "PED-ANOVA" in result.values:
        result.used["PED-ANOVA"] = len(complete)
    if "fANOVA" in result.values:
        # Optuna's fANOVA keeps only the trials holding every parameter it scores.
        scored = set(result.values["fANOVA"])
        result.used["fANOVA"] = sum(scored <= set(t.params) for t in complete)
    return result


def evaluate(trials: list[FrozenTrial], direction: optuna.study.StudyDirection
             ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Both evaluators' importances over exactly these complete trials, and why one failed.

    They run on an in-memory study holding only `trials`, so a sweep that finishes a trial
    meanwhile cannot make the two evaluators see different data (and a bootstrap resample,
    repeats included, is evaluated as given)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" on stderr
    try:
        snapshot = optuna.create_study(direction=direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    snapshot.add_trials(trials)
    evaluators = {
        "PED-ANOVA": PedAnovaImportanceEvaluator(target_quantile=PED_ANOVA_QUANTILE),
        "fANOVA": FanovaImportanceEvaluator(seed=FANOVA_SEED),
    }
    values: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    for name, evaluator in evaluators.items():
        try:
            with warnings.catch_warnings():
                # Few trials in PED-ANOVA's top quantile warns; the section says so in prose.
                warnings.simplefilter("ignore")
                values[name] = dict(get_param_importances(snapshot, evaluator=evaluator))
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            errors[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return values, errors


def top_quantile_count(values: list[float], maximize: bool, quantile: float = PED_ANOVA_QUANTILE) -> int:
    """How many values PED-ANOVA counts as its top quantile: as good as the ceil(q * n)-th best,
    ties included (optuna's `_QuantileFilter`)."""
    if not values:
        return 0
    ordered = sorted(values, reverse=maximize)
    cutoff = ordered[math.ceil(quantile * len(values)) - 1]
    return sum((v >= cutoff) if maximize else (v <= cutoff) for v in values)


@dataclass(frozen=True)
class Agreement:
    tau: float  # Kendall's tau-b between the two evaluators' importances; nan when undefined
    n: int  # the parameters both scored
    first: dict[str, str]  # evaluator -> its most important parameter


def agreement(imp: Importances) -> Agreement:
    """How far PED-ANOVA and fANOVA order the parameters alike (Kendall's tau-b)."""
    ped, fan = imp.values.get("PED-ANOVA", {}), imp.values.get("fANOVA", {})
    common = sorted(set(ped) & set(fan))
    first = {name: min(v, key=lambda p: (-v[p], p)) for name, v in imp.values.items() if v}
    tau = math.nan
    if len(common) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input gives nan, said so in prose
            tau = float(stats.kendalltau([ped[p] for p in common],
                                         [fan[p] for p in common]).statistic)
    return Agreement(tau, len(common), first)


def importance_section(imp: Importances, boot: ImportanceBootstrap | None = None) -> str:
    head = "## Hyperparameter importances"
    basis = (
        f"Estimated from {imp.n_complete} complete trials of {imp.n_finished} finished; "
        "pruned and failed trials have no final value and are not used."
    )
    if imp.n_finished and imp.n_complete < imp.n_finished / 2:
        basis += (
            f" Most trials were pruned ({imp.n_finished - imp.n_complete} of {imp.n_finished}),"
            " so the estimate rests on the survivors, which are already the better region."
        )
    if imp.n_complete < MIN_TRIALS:
        return "\n\n".join(
            [head, f"Too few complete trials ({imp.n_complete}; need {MIN_TRIALS}) to estimate "
             "importances."]
        )
    used = []
    if "PED-ANOVA" in imp.used:
        used.append(f"PED-ANOVA {imp.used['PED-ANOVA']} (its top 10%: {imp.n_top})")
    if "fANOVA" in imp.used:
        used.append(f"fANOVA {imp.used['fANOVA']} (those holding every parameter it scores)")
    if used:
        basis += " Trials each evaluator used: " + "; ".join(used) + "."
    intervals = boot.intervals if boot is not None else {}
    rows = []
    ranks = {
        name: {p: i + 1 for i, p in enumerate(sorted(v, key=lambda p: (-v[p], p)))}
        for name, v in imp.values.items()
    }
    for param in imp.order():
        row = {"parameter": param}
        for name in EVALUATORS:
            if name in imp.values:
                # fANOVA scores only the parameters every trial has (none of a conditional one).
                value = imp.values[name].get(param)
                row[name] = f"{value:.3f}" if value is not None else "n/a"
                if intervals.get(name):
                    ci = intervals[name].get(param)
                    row[f"{name} 95% interval"] = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a"
                row[f"{name} rank"] = str(ranks[name].get(param, ""))
        rows.append(row)
    top = imp.n_top
    notes = [
        "PED-ANOVA: how much each parameter's distribution in the top 10% of trials "
        f"({top} here) differs from all of them; fANOVA: share of the metric's variance a "
        f"seeded random forest (seed {FANOVA_SEED}) attributes to each parameter alone. "
        "Both are normalised to sum to 1."
    ]
    if boot is not None and boot.done:
        done = max(boot.done.values())
        notes.append(
            f"95% interval: the 2.5th to 97.5th percentile over {done} bootstrap resamples of the "
            f"complete trials (drawn with replacement, seed {boot.seed}; `--importance-bootstrap` "
            "sets the count). It shows how much the estimate moves with the sample of trials; it "
            "need not contain the estimate, since a resample holds only about 63% distinct trials."
        )
    if top < 5:
        notes.append(
            f"Only {top} trial(s) in PED-ANOVA's top 10%: rough until about 50 complete trials."
        )
    if any("n/a" in (row.get(name) for name in EVALUATORS) for row in rows):
        notes.append("n/a: fANOVA scores only the parameters that every complete trial has, "
                     "so not those of a conditional part of the space.")
    notes += _trust_sentences(imp, intervals)
    for name, err in imp.errors.items():
        notes.append(f"{name} could not run: {err}")
    return "\n\n".join([head, basis, fmt.table(rows) if rows else "(no parameters)", *notes])


def _trust_sentences(imp: Importances,
                     intervals: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    """Plain sentences when the evaluators disagree or an interval is wide."""
    out = []
    agree = agreement(imp)
    if agree.n >= 2:
        tau = "undefined" if math.isnan(agree.tau) else f"{agree.tau:.2f}"
        out.append(f"Rank agreement between PED-ANOVA and fANOVA: Kendall's tau {tau} over "
                   f"{agree.n} parameters (1: the same order, 0: unrelated, -1: reversed).")
        firsts = [agree.first.get(name) for name in EVALUATORS]
        if (math.isnan(agree.tau) or agree.tau < AGREE) or firsts[0] != firsts[1]:
            which = (f"PED-ANOVA ranks {firsts[0]} first, fANOVA {firsts[1]}"
                     if firsts[0] != firsts[1]
                     else f"both rank {firsts[0]} first, but order the others differently")
            out.append(
                f"**The two evaluators disagree** ({which}). They answer different questions: PED-ANOVA, which settings the "
                "best 10% of trials share; fANOVA, how much of the metric's variance over all "
                "complete trials each parameter explains, through a random forest that assumes "
                "the trials are spread over the whole space. " + _sampler_sentence(imp.sampler)
            )
    wide = [
        f"{name} {p} [{lo:.2f}, {hi:.2f}]"
        for name in EVALUATORS
        for p, (lo, hi) in sorted(intervals.get(name, {}).items())
        if hi - lo > WIDE
    ]
    if wide:
        out.append(
            f"**Wide intervals** (wider than {WIDE}): {'; '.join(wide)}. Resampling the trials "
            "moves these importances a lot: with this many complete trials their ranks are rough, "
            "and a difference between the evaluators may be noise."
        )
    for name in EVALUATORS:
        order = sorted(imp.values.get(name, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        ci = intervals.get(name, {})
        if len(order) >= 2 and order[0][0] in ci and order[1][0] in ci:
            (first, _), (second, _) = order[0], order[1]
            if ci[first][0] <= ci[second][1]:
                out.append(f"{name}'s first place is not settled: the intervals of {first} and "
                           f"{second} overlap.")
    return out


def _sampler_sentence(sampler: str | None) -> str:
    if sampler is None:
        return ("The study did not record its sampler; if it was TPE (Optuna's default), its "
                "trials crowd into the region it found good, which breaks fANOVA's assumption.")
    if sampler.lower().removesuffix("sampler") in SPREADING_SAMPLERS:
        return (f"This study's sampler, {sampler}, spreads trials over the space as fANOVA "
                "assumes, so its answer describes the whole space; PED-ANOVA's, the best trials.")
    return (f"This study's sampler, {sampler}, concentrates trials where the metric is good, "
            "which breaks fANOVA's assumption of spread-out samples: read fANOVA as a "
            "description of the region sampled, and PED-ANOVA for which settings the best "
            "trials share.")
