"""The resume policy: a study goes on only on its own data (studies stored before `split`
became `holdout` included) and with a space Optuna can still sample, the defaults run again
only after Ctrl-C (and only when the sweep will train), and a resumed sampler draws anew."""
from __future__ import annotations

import re
from dataclasses import asdict, replace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState, create_trial

from search import record
from search.errors import StudyError
from search.options import SweepOptions
from search.resume import check_resumable, data_identity, default_runs_to_queue, resumed_seed
from search.study import open_study, study_attrs
from search.studyfile import load_study_spec

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning",
                                        "ignore:Heartbeat of storage")
SPACE = {"d": "{ choices = [8, 16] }", "lr": "{ float = [1e-4, 1e-2], log = true }"}


@pytest.fixture
def spec(study_file):
    return load_study_spec(str(study_file(space=SPACE)))


def old_data(spec) -> dict:
    """The data attribute as the code before the rename stored it: `split`, not `holdout`."""
    data = asdict(spec.data)
    data["split"] = data.pop("holdout")
    return data


def trial(state=TrialState.COMPLETE, number=0, params=None, dists=None, **attrs) -> optuna.trial.FrozenTrial:
    made = create_trial(state=state, value=0.1 if state == TrialState.COMPLETE else None,
                        params=params or {}, distributions=dists or {}, user_attrs=attrs)
    made.number = number
    return made


def test_a_study_resumes_on_its_own_data_and_not_on_other_data(spec):
    check_resumable(spec, study_attrs(spec), [], "here")
    other = {**study_attrs(spec), "data": {**asdict(spec.data), "train_frac": 0.5}}
    with pytest.raises(StudyError, match=r"was run on other data \(train_frac 0.5 -> 0.7\)"):
        check_resumable(spec, other, [], "here")


def test_a_study_stored_before_the_rename_resumes_on_the_same_holdout_only(spec):
    check_resumable(spec, {"data": old_data(spec)}, [], "here")
    with pytest.raises(StudyError, match=r"other data \(holdout 'loo' -> 'ratio'\)"):
        check_resumable(spec, {"data": {**old_data(spec), "split": "loo"}}, [], "here")


def test_an_old_study_opens_again_with_its_stored_attributes(spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    options = SweepOptions(n_trials=2, runs_dir=tmp_path)
    study = open_study(spec, url, options)
    study.set_user_attr("data", old_data(spec))  # as the code before the rename left it
    study.tell(study.ask(), 0.1)
    assert open_study(spec, url, options).user_attrs["data"] == old_data(spec)  # untouched


def test_a_range_may_change_but_not_a_kind_or_the_choices(spec):
    before = [trial(params={"d": 8, "lr": 1e-3},
                    dists={"d": CategoricalDistribution([8, 16]), "lr": FloatDistribution(1e-5, 1e-1, log=True)})]
    check_resumable(spec, {}, before, "here")  # lr's range was wider: fine
    as_int = [trial(params={"d": 8}, dists={"d": IntDistribution(8, 64)})]
    with pytest.raises(StudyError, match=r"space\.d cannot change this way in the existing study 'tiny' in here"):
        check_resumable(spec, {}, as_int, "here")
    other_choices = [trial(params={"d": 32}, dists={"d": CategoricalDistribution([32, 64])})]
    with pytest.raises(StudyError, match=r"space\.d cannot change"):
        check_resumable(spec, {}, other_choices, "here")


def test_a_data_file_is_known_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_identity({"spec": "data.txt", "holdout": "ratio"}) == {
        "spec": str(tmp_path / "data.txt"), "holdout": "ratio"}
    for named in ("synthetic", "synthetic:users=6,items=9,interactions=40", "ml-100k"):
        assert data_identity({"spec": named}) == {"spec": named}


def test_the_defaults_run_again_only_when_ctrl_c_stopped_them():
    interrupted = trial(TrialState.FAIL, 0, is_default=True, reason=record.INTERRUPTED)
    diverged = trial(TrialState.FAIL, 0, is_default=True, reason="diverged: training loss became nan")
    ran_again = trial(TrialState.COMPLETE, 1, is_default=True)
    assert 0 in default_runs_to_queue([interrupted], 0)
    assert 0 not in default_runs_to_queue([diverged], 0)
    assert 0 not in default_runs_to_queue([interrupted, ran_again], 0)
    other = trial(TrialState.FAIL, 1, reason=record.INTERRUPTED)  # not the defaults
    assert default_runs_to_queue([ran_again, other], 0) == []


def test_each_run_of_the_defaults_stopped_by_ctrl_c_runs_again_and_only_it():
    done = trial(TrialState.COMPLETE, 0, is_default=True)
    first = trial(TrialState.FAIL, 1, is_default=True, default_replica=1, reason=record.INTERRUPTED)
    second = trial(TrialState.COMPLETE, 2, is_default=True, default_replica=2)
    assert default_runs_to_queue([done, first, second], 2) == [1]
    again = trial(TrialState.WAITING, 3, is_default=True, default_replica=1)
    assert default_runs_to_queue([done, first, second, again], 2) == []
    assert default_runs_to_queue([done, first, second, again], 4) == [3, 4]  # never queued yet


def test_a_dead_workers_default_counts_through_its_retry():
    dead = trial(TrialState.FAIL, 0, is_default=True)  # its worker died: no reason recorded
    retry = trial(TrialState.FAIL, 1, is_default=True, reason=record.INTERRUPTED)
    retry.system_attrs = {"failed_trial": 0, "retry_history": [0]}
    assert 0 in default_runs_to_queue([dead, retry], 0)  # the dead one stands for its retry
    assert 0 not in default_runs_to_queue([dead], 0)


def test_a_resumed_sampler_is_seeded_anew_and_reproducibly():
    assert resumed_seed(0, 3) == resumed_seed(0, 3)
    assert len({0, resumed_seed(0, 3), resumed_seed(0, 4), resumed_seed(1, 3)}) == 4


def test_defaults_stopped_by_ctrl_c_run_again_and_diverged_ones_do_not(spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    options = SweepOptions(n_trials=2, runs_dir=tmp_path)

    def stop_the_default(reason: str) -> list:
        study = open_study(spec, url, options)
        trial = study.ask()  # the enqueued defaults, as the sweep would take them
        assert trial.user_attrs["is_default"]
        trial.set_user_attr("reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return open_study(spec, url, options).trials  # the re-run

    trials = stop_the_default(record.INTERRUPTED)
    assert [(t.state, t.user_attrs.get("is_default")) for t in trials] == [
        (TrialState.FAIL, True), (TrialState.WAITING, True)]
    assert trials[1].params == trials[0].params
    trials = stop_the_default("diverged: training loss became nan")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]  # not a third time


def test_defaults_are_queued_again_only_when_the_sweep_will_train(spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = open_study(spec, url, SweepOptions(n_trials=2, runs_dir=tmp_path))
    dead = study.ask()  # the defaults, whose worker died: FAIL, and a retry queued ...
    study.tell(dead, state=TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    retry = study.ask()  # ... which Ctrl-C then stopped
    retry.set_user_attr("reason", record.INTERRUPTED)
    study.tell(retry, state=TrialState.FAIL)
    study.add_trial(create_trial(value=0.1, params={"lr": 1e-3}, distributions={"lr": spec.space["lr"].distribution()}))

    assert len(open_study(spec, url, SweepOptions(n_trials=1, runs_dir=tmp_path)).trials) == 3  # nothing to run: nothing queued
    trials = open_study(spec, url, SweepOptions(n_trials=2, runs_dir=tmp_path)).trials
    assert trials[-1].state == TrialState.WAITING and trials[-1].user_attrs["is_default"]


@pytest.mark.parametrize("override,stored,given", [
    ({"max_epochs": 3}, "max_epochs 1", "3"),
    ({"patience": 2}, "patience 0", "2"),
    ({"min_delta": 0.01}, "min_delta 0.0", "0.01"),
    ({"pruner": "median"}, "pruner 'none'", "'median'"),
    ({"sampler": "tpe"}, "sampler 'random'", "'tpe'"),
    ({"seed": 5}, "seed 0", "5"),
])
def test_a_study_resumes_only_under_its_own_settings(spec, override, stored, given):
    flag = "--" + next(iter(override)).replace("_", "-")
    with pytest.raises(StudyError, match=rf"^study 'tiny' in here was run with {re.escape(stored)}, not "
                                         rf"{re.escape(given)}; give {flag} "):
        check_resumable(spec.with_overrides(**override), study_attrs(spec), [], "here")


def test_a_study_resumes_only_with_its_own_pruner_options(spec):
    median = spec.with_overrides(pruner="median")
    changed = replace(median, pruner_options={"median": {"n_startup_trials": 1}})
    with pytest.raises(StudyError, match=r"was run with pruners.median \{'n_startup_trials': 5, "
                                         r"'n_warmup_steps': 0\}, not \{'n_startup_trials': 1, 'n_warmup_steps': 0\}"):
        check_resumable(changed, study_attrs(median), [], "here")


def test_a_worker_resumes_though_its_sampler_seed_is_its_own(spec):
    check_resumable(spec, study_attrs(spec, sampler_seed=spec.seed + 3), [], "here")  # worker 3 made it


def test_a_study_from_before_a_setting_was_recorded_resumes_under_any(spec):
    old = {k: v for k, v in study_attrs(spec).items()
           if k not in (record.MAX_EPOCHS, record.PATIENCE, record.MIN_DELTA, record.PRUNER, record.SAMPLER)}
    check_resumable(spec.with_overrides(max_epochs=5, patience=3, min_delta=0.1, pruner="median",
                                        sampler="tpe"), old, [], "here")
