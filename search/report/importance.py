"""Hyperparameter importances: PED-ANOVA (Optuna 5's default) beside fANOVA over the same
complete trials, and how far the two agree. The section that shows them, with bootstrap
intervals (`search.report.importance_bootstrap`), is `search.report.importance_section`.

Both read complete trials only: a pruned trial has no final value. fANOVA's random forest is
seeded so that the same study always gives the same table.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.importance import (
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)

from scipy import stats

from search import record
from search.report.view import StudyView

FANOVA_SEED = 0
PED_ANOVA_QUANTILE = 0.1  # the evaluator's default, passed explicitly so that the prose agrees
MIN_TRIALS = 3  # fewer complete trials than this and no importance estimate means anything
EVALUATORS = ("PED-ANOVA", "fANOVA")


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
