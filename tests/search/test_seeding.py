"""Per-trial sampler seeds (search/seeding.py): processes sharing a study never draw the same
trials, and one process with a fixed seed draws the same trials every time.

    python -m pytest tests/search/test_seeding.py
"""
from __future__ import annotations

import optuna
import pytest

from search.seeding import PerTrialSeed

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 1e-2, log=True) + trial.suggest_int("d", 8, 64)


@pytest.mark.parametrize("make", [
    lambda seed: optuna.samplers.RandomSampler(seed=seed),
    lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=3),
], ids=["random", "tpe"])
def test_two_processes_with_one_seed_on_one_study_draw_different_trials(make) -> None:
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(study_name="s", storage=storage, sampler=PerTrialSeed(make, 0))
    second = optuna.load_study(study_name="s", storage=storage, sampler=PerTrialSeed(make, 0))
    for _ in range(6):  # the two take turns, as two sweeps started together do
        first.optimize(objective, n_trials=1)
        second.optimize(objective, n_trials=1)
    params = [tuple(sorted(t.params.items())) for t in first.trials]
    assert len(set(params)) == len(params) == 12


def test_one_process_with_a_fixed_seed_draws_the_same_trials_every_run() -> None:
    def run() -> list[dict]:
        make = lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)  # noqa: E731
        study = optuna.create_study(sampler=PerTrialSeed(make, 7))
        study.optimize(objective, n_trials=6)
        return [t.params for t in study.trials]

    assert run() == run()
