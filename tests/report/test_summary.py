"""The summary's settings rows: stopping rule, budget, sampler, pruner and seeds as the sweep
recorded them ("not recorded" for older studies, never a guess), why trials ended, and where
the seconds went (training beside evaluation)."""
from __future__ import annotations

import re

from optuna.trial import TrialState, create_trial

from search.report.summary import summary_section
from search.report.view import StudyView

from tests.helpers.report_studies import DEFAULTS, SPACE, attrs, curve, make_study, record_settings


def summary(study) -> str:
    return re.sub(r" +", " ", summary_section(StudyView.of(study)))


def test_an_old_study_says_not_recorded_for_every_setting_it_lacks(tmp_path):
    text = summary(make_study(tmp_path, n=4))
    for row in ("stopping rule", "sampler", "pruner", "seeds", "training time",
                "evaluation time", "why trials ended"):
        assert re.search(rf"\| {row} \| (study )?not recorded \|", text), row
    assert "| budget | 10 epochs per trial |" in text


def test_recorded_settings_are_shown_as_the_sweep_built_them(tmp_path):
    study = make_study(tmp_path, n=4, extra_states=False)
    record_settings(study, patience=3, seed=5)
    text = summary(study)
    assert "| stopping rule | patience 3 evaluations on val/map (min improvement 0.001) |" in text
    assert "| sampler | tpe (multivariate=True, seed=5) |" in text
    assert "| pruner | hyperband (max_resource=10, min_resource=1, reduction_factor=3) |" in text
    assert "| seeds | study 5 |" in text
    study.set_user_attr("patience", None)
    assert "| stopping rule | none: every trial trains its whole budget unless pruned |" in summary(study)


def test_trial_seeds_that_differ_from_the_study_are_listed(tmp_path):
    study = make_study(tmp_path, n=2, extra_states=False, pruned_every=10**6)
    record_settings(study, seed=0)
    study.add_trial(create_trial(value=0.1, params=DEFAULTS, distributions=SPACE,
                                 user_attrs={**attrs(0.1, 10, 9), "seed": 7}))
    study.add_trial(create_trial(value=0.1, params=DEFAULTS, distributions=SPACE,
                                 user_attrs={**attrs(0.1, 10, 9), "seed": 0}))
    assert "| seeds | study 0; trials trained with 0 (1 trial), 7 (1 trial) |" in summary(study)


def test_training_and_evaluation_seconds_and_stop_reasons(tmp_path):
    study = make_study(tmp_path, n=0, extra_states=False)  # the default only, 10 of 10 epochs
    record_settings(study, patience=2)
    for number, (reason, epochs, state) in enumerate(
        [("patience", 4, TrialState.COMPLETE), ("pruned", 2, TrialState.PRUNED),
         ("budget", 10, TrialState.COMPLETE)], start=1):
        study.add_trial(create_trial(
            state=state, value=0.1 if state == TrialState.COMPLETE else None, params=DEFAULTS,
            distributions=SPACE, intermediate_values=curve(0.1, epochs),
            user_attrs={**attrs(0.1, epochs, number), "stop_reason": reason,
                        "train_time_s": 3.0, "eval_time_s": 1.0}))
    # Ctrl-C: failed, with the sweep's stop reason only; its seconds count, its budget does not.
    study.add_trial(create_trial(state=TrialState.FAIL, params=DEFAULTS, distributions=SPACE,
                                 intermediate_values=curve(0.1, 1),
                                 user_attrs={"stop_reason": "interrupted", "train_time_s": 1.0,
                                             "eval_time_s": 1.0}))
    text = summary(study)
    assert "| failed trials | 1 (1 interrupted; 1 epoch trained, not counted above) |" in text
    assert "| training time | 10.0 s, 4 of 5 trials recorded it |" in text
    assert "| evaluation time | 4.0 s; 28.6% of the two, 4 of 5 trials recorded it |" in text
    assert "| why trials ended | budget 1, patience 1, pruned 1, not recorded 1 |" in text
    # 10 + 4 + 2 + 10 of 40: the pruned trial saved 8, the patient one 6.
    assert "| epochs trained | 26 of 40 (10 x 4 finished trials) |" in text
    assert "| compute saved by pruning | 20.0% |" in text
    assert "| compute saved by early stopping | 15.0% |" in text
