"""Section 3, hyperparameter importances: PED-ANOVA (Optuna 5's default) beside fANOVA.

Both read complete trials only: a pruned trial has no final value. fANOVA's random forest is
seeded so that the same study always gives the same table.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.importance import (
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)

from search.report import fmt
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

    def order(self) -> list[str]:
        """Parameters, most important first by PED-ANOVA, then fANOVA, then name."""
        names = {p for v in self.values.values() for p in v}
        ped, fan = self.values.get("PED-ANOVA", {}), self.values.get("fANOVA", {})
        return sorted(names, key=lambda p: (-ped.get(p, -1.0), -fan.get(p, -1.0), p))


def compute_importances(view: StudyView) -> Importances:
    """Run both evaluators on the view's study; an evaluator that fails is recorded, not raised."""
    complete = view.ranked()
    finished = [t for t in view.trials if t.state.is_finished()]
    result = Importances(n_complete=len(complete), n_finished=len(finished),
                         n_top=top_quantile_count([t.value for t in complete], view.maximize))
    if len(complete) < MIN_TRIALS or view.study is None:
        return result
    # Evaluate on an in-memory copy holding exactly the snapshot's complete trials, so a sweep
    # that finishes a trial meanwhile cannot make the two evaluators see different data.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" on stderr
    try:
        snapshot = optuna.create_study(direction=view.direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    snapshot.add_trials(complete)
    evaluators = {
        "PED-ANOVA": PedAnovaImportanceEvaluator(target_quantile=PED_ANOVA_QUANTILE),
        "fANOVA": FanovaImportanceEvaluator(seed=FANOVA_SEED),
    }
    for name, evaluator in evaluators.items():
        try:
            with warnings.catch_warnings():
                # Few trials in PED-ANOVA's top quantile warns; the section says so in prose.
                warnings.simplefilter("ignore")
                result.values[name] = dict(get_param_importances(snapshot, evaluator=evaluator))
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            result.errors[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return result


def top_quantile_count(values: list[float], maximize: bool, quantile: float = PED_ANOVA_QUANTILE) -> int:
    """How many values PED-ANOVA counts as its top quantile: as good as the ceil(q * n)-th best,
    ties included (optuna's `_QuantileFilter`)."""
    if not values:
        return 0
    ordered = sorted(values, reverse=maximize)
    cutoff = ordered[math.ceil(quantile * len(values)) - 1]
    return sum((v >= cutoff) if maximize else (v <= cutoff) for v in values)


def importance_section(imp: Importances) -> str:
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
                row[f"{name} rank"] = str(ranks[name].get(param, ""))
        rows.append(row)
    top = imp.n_top
    notes = [
        "PED-ANOVA: how much each parameter's distribution in the top 10% of trials "
        f"({top} here) differs from all of them; fANOVA: share of the metric's variance a "
        f"seeded random forest (seed {FANOVA_SEED}) attributes to each parameter alone. "
        "Both are normalised to sum to 1."
    ]
    if top < 5:
        notes.append(
            f"Only {top} trial(s) in PED-ANOVA's top 10%: rough until about 50 complete trials."
        )
    if any("n/a" in row.values() for row in rows):
        notes.append("n/a: fANOVA scores only the parameters that every complete trial has, "
                     "so not those of a conditional part of the space.")
    for name, err in imp.errors.items():
        notes.append(f"{name} could not run: {err}")
    return "\n\n".join([head, basis, fmt.table(rows) if rows else "(no parameters)", *notes])
