"""The recommendation (search/report/recommendation.py) on hand-made results: a tuned configuration
whose lead holds, one within the noise, one that fails on test; and the provisional answer of a
study without a final evaluation, judged against the default's seeds."""
from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import create_trial

from caser.config import ModelConfig, TrainConfig
from search import record
from search.report.final import Candidate, Convergence, Converged, FinalResults
from search.report.final import Tested as Run
from search.report.noise import noise_floor
from search.report.recommendation import recommend
from search.report.view import StudyView
from tests.helpers.report_studies import DEFAULTS, SPACE

USERS = np.arange(300)


def runs_at(rng: np.random.Generator, level: float) -> list[Run]:
    """Three seeds of per-user AP around `level`, the seeds 0.01 apart (the same easy and hard
    users in each)."""
    user = np.random.default_rng(99).gamma(2.0, 0.05, len(USERS))
    runs = []
    for seed, offset in enumerate((-0.01, 0.0, 0.01)):
        ap = np.clip(user + level + offset + rng.normal(0, 0.02, len(USERS)), 0, 1)
        runs.append(Run(20, {"test/map": float(ap.mean())}, tuple(USERS.tolist()), tuple(ap.tolist())))
    return runs


def results(val_tuned: list[float], val_default: list[float], test_tuned: float, test_default: float,
            seeds: int = 3) -> FinalResults:
    rng = np.random.default_rng(0)
    tuned = Candidate("trial_0005", "trial 5", ModelConfig(), TrainConfig(lr=5e-3), False, 0.3, 30)
    default = Candidate("trial_0000", "trial 0 (default)", ModelConfig(), TrainConfig(), True, 0.25, 90)
    res = FinalResults(seeds=list(range(seeds)), candidates=[tuned, default],
                       rule=Convergence(max_epochs=500, patience=10, min_delta=0.0))
    res.converged = {"trial_0005": [Converged(30 + s, v, 40, "patience") for s, v in enumerate(val_tuned[:seeds])],
                     "trial_0000": [Converged(90 + s, v, 100, "patience") for s, v in enumerate(val_default[:seeds])]}
    res.tested = {"trial_0005": runs_at(rng, test_tuned)[:seeds], "trial_0000": runs_at(rng, test_default)[:seeds]}
    return res


def test_a_lead_that_holds_on_validation_and_test_is_recommended() -> None:
    rec = recommend(None, results([0.30, 0.31, 0.305], [0.24, 0.25, 0.245], 0.16, 0.13), None)
    assert rec.label == "trial 5" and rec.train_config.lr == 5e-3
    assert rec.sentence.startswith("Use trial 5: its lead over the default on validation at convergence holds")
    assert "test confirms it" in rec.sentence
    assert rec.epochs == 31  # the median of the epochs picked on validation


def test_a_lead_within_the_seed_spread_recommends_the_default() -> None:
    rec = recommend(None, results([0.26, 0.24, 0.255], [0.245, 0.25, 0.24], 0.13, 0.13), None)
    assert rec.label == "trial 0 (default)"
    assert rec.sentence.startswith("Use the default: no configuration's lead over it on validation at "
                                   "convergence holds at the seed level (the closest, trial 5")
    assert rec.notes == ("Test agrees: no configuration is better than the default on test MAP at the seed level.",)


def test_a_lead_that_test_contradicts_recommends_the_default_and_says_why() -> None:
    rec = recommend(None, results([0.30, 0.31, 0.305], [0.24, 0.25, 0.245], 0.10, 0.13), None)
    assert rec.label == "trial 0 (default)"
    assert "but test contradicts that" in rec.sentence and "worse than the default on test MAP" in rec.sentence


def test_a_lead_that_test_does_not_confirm_is_kept_and_said_so() -> None:
    rec = recommend(None, results([0.30, 0.31, 0.305], [0.24, 0.25, 0.245], 0.13, 0.13), None)
    assert rec.label == "trial 5" and "test does not confirm it" in rec.sentence


def test_two_seeds_give_a_provisional_answer_that_asks_for_three() -> None:
    res = results([0.30, 0.31], [0.24, 0.25], 0.16, 0.13, seeds=2)
    study = study_with()
    rec = recommend(StudyView.of(study), res, noise_floor(StudyView.of(study)))
    assert rec.sentence.startswith("Provisionally, trial 5: it leads on validation at convergence")
    assert rec.notes[-1].startswith("Provisional: the final evaluation ran 2 seeds; whether a lead holds")


def study_with(defaults: tuple[float, ...] = (0.24, 0.25, 0.245), best: float = 0.30) -> optuna.Study:
    """The default with its two extra seeds, and one tuned trial of value `best`."""
    study = optuna.create_study(study_name="rec", direction="maximize")
    study.set_user_attr(record.METRIC, "val/map")
    for k, value in enumerate(defaults):
        attrs = {record.IS_DEFAULT: True, record.SEED: k, record.BEST_EPOCH: 90}
        if k:
            attrs[record.DEFAULT_REPLICA] = k
        study.add_trial(create_trial(value=value, params=DEFAULTS, distributions=SPACE, user_attrs=attrs))
    study.add_trial(create_trial(value=best, params={**DEFAULTS, "lr": 5e-3}, distributions=SPACE,
                                 user_attrs={record.BEST_EPOCH: 33}))
    return study


def test_without_a_final_evaluation_a_best_trial_beyond_the_noise_is_provisional() -> None:
    view = StudyView.of(study_with(best=0.30))
    rec = recommend(view, None, noise_floor(view))
    assert rec.sentence.startswith("Provisionally, trial 3: its val/map 0.3000 lies beyond what another seed")
    assert rec.train_config.lr == 5e-3 and rec.epochs == 33
    assert rec.notes[-1].startswith("Provisional: the study's values are one seed each at its budget")


def test_without_a_final_evaluation_a_best_trial_within_the_noise_gives_the_default() -> None:
    view = StudyView.of(study_with(best=0.26))
    rec = recommend(view, None, noise_floor(view))
    assert rec.sentence.startswith("Use the default: the study's best, trial 3 (val/map 0.2600), lies within")
    assert rec.train_config.lr == 1e-3 and rec.epochs == 90


def test_a_fixed_epoch_final_evaluation_stays_provisional_and_says_what_test_found() -> None:
    view = StudyView.of(study_with(best=0.30))
    rng = np.random.default_rng(0)
    tuned = Candidate("trial_0003", "trial 3", ModelConfig(), TrainConfig(lr=5e-3), False, 0.30, 33)
    default = Candidate("trial_0000", "trial 0 (default)", ModelConfig(), TrainConfig(), True, 0.24, 90)
    for tuned_test, word in ((0.16, "better than"), (0.10, "worse than"), (0.13, "not distinguishable from")):
        res = FinalResults(seeds=[0, 1, 2], candidates=[tuned, default], rule=None)
        res.tested = {"trial_0003": runs_at(rng, tuned_test), "trial_0000": runs_at(rng, 0.13)}
        rec = recommend(view, res, noise_floor(view))
        assert rec.sentence.startswith("Provisionally, trial 3")
        assert rec.notes[-2].startswith("Provisional: the final evaluation trained fixed epochs")
        assert rec.notes[-1].startswith(f"On test at the fixed 20 epochs, trial 3 is {word} the default "
                                        "(test MAP ")
    res.seeds, res.tested = [0, 1], {k: v[:2] for k, v in res.tested.items()}
    assert recommend(view, res, noise_floor(view)).notes[-1].startswith("Provisional: the final")


def test_runs_the_cap_ended_while_improving_are_named_beside_the_verdict() -> None:
    res = results([0.30, 0.31, 0.305], [0.24, 0.25, 0.245], 0.16, 0.13)
    assert not any(note.startswith("Not converged") for note in recommend(None, res, None).notes)
    res.converged["trial_0000"] = [Converged(499 + s % 2, v, 500, "budget")
                                   for s, v in enumerate([0.24, 0.25, 0.245])]
    rec = recommend(None, res, None)
    assert rec.label == "trial 5"  # the verdict itself does not change
    assert rec.notes[-1] == (
        "Not converged: 3 of 6 runs to convergence ended at the 500-epoch cap still improving "
        "(trial 0 (default)), so \"at convergence\" here means at that cap: their values are lower "
        "bounds, and a configuration that learns more slowly may gain more beyond it "
        "(`--final-max-epochs` raises the cap).")
    res.converged["trial_0005"] = [Converged(500, v, 500, "budget") for v in (0.30, 0.31, 0.305)]
    assert recommend(None, res, None).notes[-1].startswith(
        "Not converged: every run to convergence ended at the 500-epoch cap still improving "
        "(trial 5, trial 0 (default))")
