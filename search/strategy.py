"""The study's search strategy: its Optuna sampler and pruner, built from the study file.

Both are built from explicit argument dicts (`sampler_args`, `pruner_options`) so that the
study can record exactly what was built (record.SAMPLER, record.PRUNER) and the report can show
it: a hidden default changes results as much as a visible setting.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import optuna

from search.errors import StudyError
from search.space import is_number
from search.studyfile import StudySpec, is_whole

DEFAULT_PERCENTILE = 25.0  # percentile pruner: a trial goes on while in the top quarter
# Multi-fidelity pruners start from the smallest fidelity, one epoch (see _CountingEpochs).
# Optuna's "auto" would read it off the first finished trial: the enqueued default, which early
# stopping may end anywhere.
MIN_RESOURCE = 1


def epochs_trained(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """The trial with its curve keyed by epochs trained (1, 2, ...) instead of 0-based steps."""
    counted = copy.copy(trial)  # the same trial id: a pruner's rung records land on the trial
    counted.intermediate_values = {step + 1: v for step, v in trial.intermediate_values.items()}
    return counted


class _CountingEpochs:
    """Successive halving and Hyperband over epochs trained, from 1 epoch to the budget.

    A trial reports its 0-based epoch as Optuna's step, and the stored curves, the plots and
    resuming all count so. These pruners put rung k at step min_resource * reduction_factor**k:
    on 0-based steps min_resource 1 put the first rung after the second epoch, no setting could
    cut after the first, and Hyperband's max_resource (the budget) lay one step past the last
    epoch. Shown epochs trained, min_resource r is a rung after r epochs (issue 14). Subclasses,
    not wrappers: Optuna's samplers see only a Hyperband bracket's trials by an isinstance test.
    """

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return super().prune(study, epochs_trained(trial))  # type: ignore[misc]


class SuccessiveHalvingOverEpochs(_CountingEpochs, optuna.pruners.SuccessiveHalvingPruner):
    pass


class HyperbandOverEpochs(_CountingEpochs, optuna.pruners.HyperbandPruner):
    pass


_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
}
_PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": SuccessiveHalvingOverEpochs,
    "hyperband": HyperbandOverEpochs,
    "none": optuna.pruners.NopPruner,
}


def sampler_args(spec: StudySpec, seed: int) -> dict[str, Any]:
    """The keyword arguments the study's sampler is built with, Optuna's defaults spelled out."""
    if spec.sampler == "tpe":
        # Optuna 5's defaults for one objective: multivariate TPE (its `multivariate=None`
        # means True here) with constant_liar, by which workers sharing the study see each
        # other's running trials as bad guesses and do not all sample one region.
        return {"seed": seed, "n_startup_trials": 10, "multivariate": True, "constant_liar": True}
    if spec.sampler == "gp":
        return {"seed": seed, "n_startup_trials": 10}
    if spec.sampler == "qmc":
        return {"seed": seed, "qmc_type": "sobol", "scramble": False}
    return {"seed": seed}


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    return _SAMPLERS[spec.sampler](**sampler_args(spec, seed))


def pruner_options(spec: StudySpec) -> dict[str, Any]:
    """The keyword arguments of the study's pruner: its `[pruners.<name>]` table over Optuna's
    defaults spelled out, with the percentile the default study uses, and successive halving
    and Hyperband spanning one step to the study's budget (max_epochs)."""
    table = dict(spec.pruner_options.get(spec.pruner, {}))
    defaults: dict[str, dict[str, Any]] = {
        "median": {"n_startup_trials": 5, "n_warmup_steps": 0},
        # Optuna's PercentilePruner has no default percentile; a study without the table gets
        # the default study's quarter, so that `--pruner percentile` works on any study.
        "percentile": {"percentile": DEFAULT_PERCENTILE, "n_startup_trials": 5, "n_warmup_steps": 0},
        "successive_halving": {"min_resource": MIN_RESOURCE, "reduction_factor": 4},
        "hyperband": {"min_resource": MIN_RESOURCE, "max_resource": spec.max_epochs, "reduction_factor": 3},
        "none": {},
    }
    return {**defaults[spec.pruner], **table}


# What each option of each pruner may be: Optuna checks some of these only by comparing (a
# string gave "'<' not supported between instances of 'str' and 'int'") and some not at all
# (Hyperband with min_resource above max_resource never pruned).
_AT_LEAST_0 = ("a whole number >= 0", lambda v: is_whole(v) and v >= 0)
_AT_LEAST_1 = ("a whole number >= 1", lambda v: is_whole(v) and v >= 1)
_AT_LEAST_1_OR_AUTO = ('a whole number >= 1 or "auto"', lambda v: v == "auto" or is_whole(v) and v >= 1)
_AT_LEAST_2 = ("a whole number >= 2", lambda v: is_whole(v) and v >= 2)
_PERCENT = ("a number from 0 to 100", lambda v: is_number(v) and 0 <= v <= 100)
_MEDIAN_RULES = {"n_startup_trials": _AT_LEAST_0, "n_warmup_steps": _AT_LEAST_0,
                 "interval_steps": _AT_LEAST_1, "n_min_trials": _AT_LEAST_1}
PRUNER_RULES: dict[str, dict[str, tuple[str, Callable[[Any], bool]]]] = {
    "median": _MEDIAN_RULES,
    "percentile": {"percentile": _PERCENT, **_MEDIAN_RULES},
    "successive_halving": {"min_resource": _AT_LEAST_1_OR_AUTO, "reduction_factor": _AT_LEAST_2,
                           "min_early_stopping_rate": _AT_LEAST_0, "bootstrap_count": _AT_LEAST_0},
    "hyperband": {"min_resource": _AT_LEAST_1, "max_resource": _AT_LEAST_1_OR_AUTO,
                  "reduction_factor": _AT_LEAST_2, "bootstrap_count": _AT_LEAST_0},
    "none": {},
}


def check_pruner_options(spec: StudySpec) -> None:
    """Refuse, naming the key, a `[pruners.*]` option of the wrong type or range (every table
    of the file, the pruners it does not use included: a mistake there waits for `--pruner`),
    and Hyperband rungs that cannot fit the budget."""
    for name, table in spec.pruner_options.items():
        rules = PRUNER_RULES[name]
        for key, value in table.items():
            if key not in rules:
                raise StudyError(f"{spec.path}: pruners.{name}: unknown option {key!r}; known: "
                                 f"{', '.join(rules) or 'none'}")
            words, ok = rules[key]
            if not ok(value):
                raise StudyError(f"{spec.path}: pruners.{name}.{key} must be {words}, got {value!r}")
    if spec.pruner == "hyperband":
        options = pruner_options(spec)
        low, high = options["min_resource"], options["max_resource"]
        if high != "auto" and low > high:
            whose = "" if "max_resource" in spec.pruner_options.get("hyperband", {}) else " (the study's max_epochs)"
            raise StudyError(f"{spec.path}: pruners.hyperband.min_resource {low} is above max_resource "
                             f"{high}{whose}: no rung fits")


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner with its options (pruner_options); StudyError on a bad option."""
    check_pruner_options(spec)
    try:
        return _PRUNERS[spec.pruner](**pruner_options(spec))
    except (TypeError, ValueError) as exc:  # an unknown option; a value out of range
        raise StudyError(f"{spec.path}: pruners.{spec.pruner}: {exc}") from None
