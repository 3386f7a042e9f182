"""A sampler seeded per trial: the seed of trial n is drawn from (the sweep's seed, n).

Why: processes that share a study and were given the same seed (two identical `sweep.py`
commands started together, machines without their own --worker-index) would otherwise draw the
same configurations in the same order, and every trial would be run twice. Trial numbers are
unique in a study, so seeding each trial's draws from its number gives every process its own
draws, while one process with a fixed --seed still samples the same trials on every run.

    sampler = PerTrialSeed(lambda seed: make_sampler(spec, seed), seed)
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` in a sweep seeded with `seed`."""
    return int(np.random.SeedSequence([seed % 2**32, number]).generate_state(1)[0])


class PerTrialSeed(BaseSampler):
    """Builds a fresh sampler for every trial, seeded with trial_seed(seed, trial.number), and
    hands it every call. A sampler's state between trials is its random stream and caches; the
    history it learns from is the study's, so rebuilding it loses nothing but the stream."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._sampler = make(seed)

    def __str__(self) -> str:
        return str(self._sampler)

    @property
    def sampler(self) -> BaseSampler:
        """The sampler of the current trial."""
        return self._sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = self._make(trial_seed(self._seed, trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()
