"""The study's search strategy: its Optuna sampler and pruner, built from the study file."""
from __future__ import annotations

from typing import Callable

import optuna

from search.errors import StudyError
from search.studyfile import StudySpec

DEFAULT_PERCENTILE = 25.0  # percentile pruner: a trial goes on while in the top quarter


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    return samplers[spec.sampler]()


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner with its `[pruners.<name>]` options (Hyperband's budget defaults to
    the study's max_epochs)."""
    options = dict(spec.pruner_options.get(spec.pruner, {}))
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(**options),
        # Optuna's PercentilePruner has no default percentile; a study without the table gets
        # the default study's quarter, so that `--pruner percentile` works on any study.
        "percentile": lambda: optuna.pruners.PercentilePruner(**{"percentile": DEFAULT_PERCENTILE, **options}),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(**options),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(**{"max_resource": spec.max_epochs, **options}),
        "none": optuna.pruners.NopPruner,
    }
    try:
        return pruners[spec.pruner]()
    except (TypeError, ValueError) as exc:  # an unknown option; a value out of range
        raise StudyError(f"{spec.path}: pruners.{spec.pruner}: {exc}") from None
