"""The report on studies that are not the tidy case: a default trial whose worker died and was
retried, a study seeded otherwise than caser's default, PED-ANOVA's top count on small
studies, a conditional parameter fANOVA cannot score, another program's parameters, and a bad
--top given with --final-seeds."""
from __future__ import annotations

import random
import re

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState, create_trial

import report
from search import record
from search.report.best import shown_trials
from search.report.final import candidates
from search.report.importance import compute_importances, top_quantile_count
from search.report.importance_section import importance_section
from search.report.render import render
from search.report.summary import summary_section
from search.report.view import StudyView

from tests.helpers.report_studies import DEFAULTS, SPACE, FakeTrain, attrs, curve, make_study, rdb, sample
from tests.helpers.report_studies import add_trials_without, storage

# The retry callback is experimental in Optuna; the sweep uses it all the same.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def retried_default_study(tmp_path) -> optuna.Study:
    """The default trial's worker died after 2 of 6 epochs; Optuna's own retry callback queued
    the copy, which resumed and finished the 6; one more ordinary trial beside it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="retry", storage=rdb(tmp_path, "retry"), direction="maximize")
    for key, value in {"metric": "val/map", "max_epochs": 6, "fixed": {}, "data": {"spec": "synthetic"}}.items():
        study.set_user_attr(key, value)
    study.add_trial(create_trial(state=TrialState.FAIL, params=DEFAULTS, distributions=SPACE,
                                 intermediate_values={e: v for e, v in curve(0.06, 6).items() if e < 2},
                                 user_attrs={"is_default": True}))
    dead = study.get_trials()[0]
    RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)(study, dead)
    retry = study.ask()  # the WAITING copy, as the next worker would take it
    assert retry.number == 1 and retry.params == DEFAULTS and retry.user_attrs["is_default"]
    for key, value in {**attrs(0.06, 6, 1, is_default=True), "epochs_trained": 4}.items():
        retry.set_user_attr(key, value)
    study.tell(retry, 0.06)
    study.add_trial(create_trial(value=0.05, params=sample(random.Random(1)), distributions=SPACE,
                                 user_attrs=attrs(0.05, 3, 2), intermediate_values=curve(0.05, 3)))
    return study


def test_a_retried_default_is_shown_once_as_its_retry(tmp_path):
    view = StudyView.of(retried_default_study(tmp_path))
    assert view.retried() == {0} and view.default_trial().number == 1
    assert [t.number for t in shown_trials(view, 5)] == [1, 2]
    assert [c.label for c in candidates(view, 5) if c.is_default] == ["trial 1 (default)"]
    markdown = re.sub(r" +", " ", render(view))
    assert "| 1 (default) |" in markdown and "0 (default)" not in markdown


def test_compute_counts_a_retried_configuration_once(tmp_path):
    summary = re.sub(r" +", " ", summary_section(StudyView.of(retried_default_study(tmp_path))))
    # 6 epochs (2 before the worker died, 4 after) and 3, against 2 x 6: nothing double-counted.
    assert "| epochs trained | 9 of 12 (6 x 2 finished trials; the 1 whose worker died" in summary
    # The 3-epoch trial is complete: only the stopping rule ends a complete trial early.
    assert "| compute saved by pruning | 0.0% |" in summary
    assert "| compute saved by early stopping | 25.0% |" in summary


def test_reproduce_command_trains_with_the_study_seed(tmp_path):
    def command() -> str:
        return re.search(r"```bash\n(.*)\n```", render(study)).group(1)

    study = make_study(tmp_path, n=5)
    assert "--seed 0 " in command()  # recorded by no sweep before it was: the study files' default
    study.set_user_attr("seed", 7)
    assert "--seed 7 " in command()
    # A trial's own record wins: a resumed sweep may have been given another --seed.
    study.add_trial(create_trial(value=1.0, params=DEFAULTS, distributions=SPACE,
                                 user_attrs={**attrs(1.0, 10, 99), "seed": 11}))
    assert "--seed 11 " in command()


def test_ped_anova_top_count_is_its_own_ceil_with_ties():
    assert [top_quantile_count(list(range(n)), maximize=True) for n in (1, 9, 10, 11, 25, 45)] == [1, 1, 1, 2, 3, 5]
    assert top_quantile_count([0.5, 0.9, 0.9, 0.1], maximize=True) == 2  # both tie at the cutoff
    assert top_quantile_count([0.5, 0.9, 0.1], maximize=False) == 1


def test_ped_anova_top_count_is_what_the_note_says(tmp_path):
    study = make_study(tmp_path, n=10, pruned_every=10**6, extra_states=False)  # 11 complete
    text = importance_section(compute_importances(StudyView.of(study)))
    assert "top 10% of trials (2 here)" in text


def test_a_parameter_fanova_cannot_score_is_not_shown_as_zero(tmp_path):
    study = make_study(tmp_path, n=12, pruned_every=10**6, extra_states=False)
    add_trials_without(study, "nv", 6)
    imp = compute_importances(StudyView.of(study))
    assert "nv" in imp.values["PED-ANOVA"] and "nv" not in imp.values["fANOVA"]
    row = next(line for line in importance_section(imp).splitlines() if line.startswith("| nv "))
    assert "n/a" in row and "0.000" not in row.split("|")[4]


def test_another_programs_parameters_get_no_command_and_no_traceback(tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    study.add_trial(create_trial(value=1.0, params={"momentum": 0.9},
                                 distributions={"momentum": FloatDistribution(0.0, 1.0)}))
    assert report.main(["--study", "demo", "--storage", storage(tmp_path), "--importance-bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "No command: trial 5 is not a Caser configuration: unknown parameter(s): momentum" in out


def test_a_bad_top_is_refused_before_any_final_training(tmp_path, capsys):
    make_study(tmp_path, n=4)
    fake = FakeTrain()
    argv = ["--study", "demo", "--storage", storage(tmp_path), "--top", "0", "--final-seeds", "2"]
    assert report.main(argv, train_fn=fake) == 2
    assert fake.calls == [] and "--top must be at least 1" in capsys.readouterr().err


def test_infeasible_trials_spend_no_budget_and_save_none(tmp_path):
    study = retried_default_study(tmp_path)
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"L": 10}, distributions={"L": SPACE["L"]},
                                 user_attrs={"reason": "infeasible: L + T = 13 exceeds the data's limit 9",
                                             "infeasible": True}))
    summary = re.sub(r" +", " ", summary_section(StudyView.of(study)))
    assert "| epochs trained | 9 of 12 (6 x 2 finished trials;" in summary  # as without it
    assert "| infeasible trials | 1 (pruned before training, not counted above) |" in summary


def test_a_study_stored_before_the_rename_keeps_its_holdout(tmp_path):
    study = make_study(tmp_path, n=4)
    study.set_user_attr("data", {"spec": "synthetic", "split": "loo", "seed": 0})  # `split`: the old name
    view = StudyView.of(study)
    assert view.data_config().holdout == "loo"
    markdown = render(view)
    assert "| data | synthetic (split=loo, seed=0) |" in re.sub(r" +", " ", markdown)  # as stored
    assert "--holdout loo" in re.search(r"```bash\n(.*)\n```", markdown).group(1)


def interrupted_study(tmp_path) -> optuna.Study:
    """Issue 16, defect 4: three trials ran their whole 2-epoch budget; Ctrl-C stopped a fourth
    after one epoch, which Optuna stores as FAIL with the sweep's `interrupted` reason."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="ctrlc", storage=rdb(tmp_path, "ctrlc"), direction="maximize")
    for key, value in {"metric": "val/map", "max_epochs": 2, "fixed": {}, "data": {"spec": "synthetic"}}.items():
        study.set_user_attr(key, value)
    rng = random.Random(0)
    for i in range(3):
        v = 0.05 + 0.01 * i
        study.add_trial(create_trial(value=v, params=sample(rng), distributions=SPACE,
                                     user_attrs=attrs(v, 2, i), intermediate_values=curve(v, 2)))
    study.add_trial(create_trial(state=TrialState.FAIL, params=sample(rng), distributions=SPACE,
                                 user_attrs={"reason": record.INTERRUPTED},
                                 intermediate_values={0: 0.01}))
    return study


def test_a_ctrl_c_trial_is_not_finished_and_saves_nothing_by_pruning(tmp_path):
    summary = re.sub(r" +", " ", summary_section(StudyView.of(interrupted_study(tmp_path))))
    assert "| trials | 4 (3 complete, 0 pruned, 1 failed" in summary
    # Nothing was pruned: the interrupted trial's unused epoch is not pruning's saving.
    assert "| epochs trained | 6 of 6 (2 x 3 finished trials) |" in summary
    assert "| compute saved by pruning | 0.0% |" in summary
    assert "| failed trials | 1 (1 interrupted (Ctrl-C); 1 epoch trained, not counted above) |" in summary


def test_counts_of_one_are_singular_and_top_k_never_exceeds_the_trials(tmp_path, capsys):
    study = make_study(tmp_path, n=0, extra_states=False)  # the default trial alone
    study.set_user_attr("max_epochs", 1)
    study.set_user_attr("fixed", {"epochs": 1})
    argv = ["--study", "demo", "--storage", storage(tmp_path), "--top", "1000", "--final-seeds",
            "1", "--final-max-epochs", "1", "--final-patience", "1", "--importance-bootstrap", "0"]
    assert report.main(argv, train_fn=FakeTrain()) == 0
    out = capsys.readouterr()
    text = re.sub(r"\s+", " ", out.out + out.err)
    assert re.findall(r"\b1 (?:epochs|trials|runs|seeds|configurations)\b", text) == []
    assert "top 1000" not in text and "(the one complete trial, by val/map" in text
    (tmp_path / "eight").mkdir()
    make_study(tmp_path / "eight", n=7, pruned_every=10**6, extra_states=False)
    markdown = render(StudyView.of(optuna.load_study(study_name="demo",
                                                     storage=storage(tmp_path / "eight"))), top_k=1000)
    assert "## Best configurations (all 8 complete trials, by val/map" in markdown


@pytest.mark.parametrize("key, value, says", [
    ("max_epochs", "ten", "max_epochs 'ten', not a whole number of at least 1"),
    ("max_epochs", 0, "max_epochs 0, not a whole number of at least 1"),
    ("patience", "<b>3</b>", "patience '<b>3</b>', not a whole number of at least 1"),
    ("min_delta", "0.1", "min_delta '0.1', not a finite number of at least 0"),
])
def test_a_stored_setting_the_sweep_never_writes_is_one_line(tmp_path, capsys, key, value, says):
    study = make_study(tmp_path, n=4, extra_states=False)
    study.set_user_attr(key, value)
    fake = FakeTrain()
    assert report.main(["--study", "demo", "--storage", storage(tmp_path), "--final-seeds", "1",
                        "--importance-bootstrap", "0"], train_fn=fake) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"report.py: error: study 'demo' records {says}"] and fake.calls == []


@pytest.mark.parametrize("key, value, says", [
    ("fixed", ["lr"], "records fixed ['lr'], not a table"),
    ("data", "synthetic", "records data 'synthetic', not a table"),
    ("best_epoch", "seven", "trial 5 records best_epoch 'seven', not a whole number of at least 1"),
    ("epochs_run", "ten", "trial 5 records epochs_run 'ten', not a whole number of at least 0"),
    ("wall_time_s", "long", "trial 5 records wall_time_s 'long', not a number of seconds"),
    ("eval_time_s", -1.0, "trial 5 records eval_time_s -1.0, not a number of seconds"),
    ("seed", [1], "trial 5 records seed [1], not a whole number of at least 0"),
    ("stop_reason", ["x"], "trial 5 records stop_reason ['x'], not text"),
])
def test_a_stored_record_the_sweep_never_writes_is_one_line(tmp_path, capsys, key, value, says):
    study = make_study(tmp_path, n=4, extra_states=False)
    if key in ("fixed", "data"):
        study.set_user_attr(key, value)
    else:
        study.add_trial(create_trial(value=0.9, params=DEFAULTS, distributions=SPACE,
                                     user_attrs={**attrs(0.9, 10, 5), key: value},
                                     intermediate_values=curve(0.9, 10)))
    assert report.main(["--study", "demo", "--storage", storage(tmp_path),
                        "--importance-bootstrap", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"report.py: error: study 'demo' {says}"]


def test_a_fixed_value_of_the_wrong_type_is_named_in_one_line(tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    study.set_user_attr("fixed", {"epochs": "many"})
    assert report.main(["--study", "demo", "--storage", storage(tmp_path), "--final-seeds", "1",
                        "--importance-bootstrap", "0"], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err.splitlines() == [
        "report.py: error: trial 0 is not a Caser configuration: epochs 'many' is not a whole number"]
