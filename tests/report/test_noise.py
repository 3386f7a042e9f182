"""The noise floor (search/report/noise.py): the default's seeds give the band within which a
trial is not distinguishable from the default."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats

from search import record
from search.report.noise import ABOVE, BELOW, WITHIN, describe, noise_floor
from search.report.view import StudyView
from tests.helpers.report_studies import DEFAULTS, SPACE, rdb


def study_with_default_seeds(tmp_path, values: list[float], others: list[float] = (), failed_replica: bool = False):
    study = optuna.create_study(study_name="noise", storage=rdb(tmp_path, "noise"), direction="maximize")
    study.set_user_attr(record.METRIC, "val/map")
    study.set_user_attr(record.SEED, 0)
    for k, value in enumerate(values):
        attrs = {record.IS_DEFAULT: True, record.SEED: k}
        if k:
            attrs[record.DEFAULT_REPLICA] = k
        study.add_trial(create_trial(value=value, params=DEFAULTS, distributions=SPACE, user_attrs=attrs))
    if failed_replica:
        study.add_trial(create_trial(state=TrialState.FAIL, params=DEFAULTS, distributions=SPACE,
                                     user_attrs={record.IS_DEFAULT: True, record.SEED: 9, record.DEFAULT_REPLICA: 9}))
    for value in others:
        study.add_trial(create_trial(value=value, params={**DEFAULTS, "lr": 5e-3}, distributions=SPACE))
    return StudyView.of(study)


def test_the_band_is_the_prediction_interval_of_another_seed(tmp_path) -> None:
    noise = noise_floor(study_with_default_seeds(tmp_path, [0.22, 0.23, 0.24], failed_replica=True))
    assert noise.values == (0.22, 0.23, 0.24) and noise.seeds == (0, 1, 2)  # the failed one left out
    half = stats.t.ppf(0.975, 2) * 0.01 * math.sqrt(1 + 1 / 3)
    assert noise.band() == pytest.approx((0.23 - half, 0.23 + half))
    assert noise.place(0.23 + half + 1e-6) == ABOVE
    assert noise.place(0.23 + half - 1e-6) == WITHIN
    assert noise.place(0.23 - half - 1e-6) == BELOW


def test_one_seed_of_the_default_gives_no_band(tmp_path) -> None:
    noise = noise_floor(study_with_default_seeds(tmp_path, [0.22], others=[0.3]))
    assert noise.band() is None and noise.place(0.3) is None
    assert "one seed" in describe(noise, "val/map")


def test_a_study_without_a_complete_default_has_no_noise_floor(tmp_path) -> None:
    assert noise_floor(study_with_default_seeds(tmp_path, [], others=[0.3])) is None
