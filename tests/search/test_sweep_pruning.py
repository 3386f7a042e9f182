"""Trials that end early: the median pruner stops bad trials after an epoch (curves kept), and a
trial whose loss diverges fails with its reason while the sweep goes on."""
from __future__ import annotations

from optuna.trial import TrialState

from search.data import prepare_data
from search.options import SweepOptions
from search.runner import run_sweep
from search.study import open_study
from search.studyfile import load_study_spec
from tests.helpers.tensorboard import hparams_of, read_run


def sweep(path, tmp_path, n_trials, enqueue=()):
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=n_trials, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    for params in enqueue:
        study.enqueue_trial(params)
    lines: list[str] = []
    run_sweep(spec, study, prepare_data(spec), options, lines.append)
    return study, lines


def test_the_median_pruner_stops_trials_in_a_bad_region(study_file, tmp_path):
    # Batches of 16 give ~40 steps an epoch: lr 3e-3 learns within the first epoch (val MAP
    # ~0.07 on this data), lr 1e-5 stays at the untrained ~0.05, clear of the noise.
    space = {"ac_fc": '{ choices = ["iden", "sigm"] }', "lr": "{ choices = [1e-5, 3e-3] }", "batch_size": 16}
    path = study_file(space=space, max_epochs=3, pruner="median",
                      pruners={"median": {"n_startup_trials": 2, "n_warmup_steps": 0}})
    study, lines = sweep(path, tmp_path, 6)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, [(t.params, t.values) for t in study.trials]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 6
    assert all(t.state == TrialState.COMPLETE for t in study.trials[:2])  # the startup trials
    for trial in pruned:
        epochs = trial.user_attrs["epochs_run"]
        assert trial.user_attrs["reason"] == f"pruned after epoch {epochs}"
        assert sorted(trial.intermediate_values) == list(range(epochs))
        run = read_run(tmp_path / "tiny" / f"trial_{trial.number:04d}")
        assert [e.step for e in run.Scalars("val/map")] == list(range(1, epochs + 1))
        assert hparams_of(run)[1]["state"] == "PRUNED"
    assert any(t.user_attrs["epochs_run"] < 3 for t in pruned)  # stopped before the budget
    assert sum(" PRUNED " in line for line in lines) == len(pruned)  # one progress line each


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(study_file, tmp_path):
    path = study_file(space={"lr": "{ choices = [1e-3, 1e20] }"}, max_epochs=2)
    study, lines = sweep(path, tmp_path, 2, enqueue=[{"lr": 1e20}, {"lr": 1e-3}])
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    failed = study.trials[1]
    assert failed.user_attrs["reason"].startswith("diverged: training loss became nan"), failed.user_attrs
    assert hparams_of(read_run(tmp_path / "tiny" / "trial_0001"))[1]["state"] == "FAIL"
    assert any("FAIL" in line and "diverged" in line for line in lines)
    assert study.best_trial.number in (0, 2)
