"""Convergence as a study setting: every trial trains under the study's stopping rule (patience,
min_delta, the max_epochs budget) and records why it ended; a trial that trained its whole
budget is complete, never pruned; the enqueued default, the study's baseline, is never pruned;
the study records its stopping rule, sampler and pruner as built."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search import record
from search.data import prepare_data
from search.errors import StudyError
from search.options import SweepOptions
from search.runner import run_sweep
from search.strategy import make_pruner, make_sampler
from search.study import open_study
from search.studyfile import load_study_spec
from tests.helpers.studies import load_study

SPACE = {"lr": "{ float = [1e-4, 1e-2], log = true }"}
UNBEATABLE = 1.0  # val/map of a hand-made trial: every real trial is worse at every epoch


def sweep_behind_an_unbeatable_trial(path, tmp_path, max_epochs):
    """The default (trial 0) and one sampled trial (2) run behind a stored trial (1) with MAP
    1.0 at every epoch: the median pruner (one startup trial) would prune both at their first
    evaluation."""
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=3, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    study.add_trial(create_trial(
        params={"lr": 1e-3}, distributions={"lr": FloatDistribution(1e-4, 1e-2, log=True)},
        value=UNBEATABLE, intermediate_values={step: UNBEATABLE for step in range(max_epochs)}))
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    return load_study(tmp_path / "tiny.db")


MEDIAN_AFTER_ONE = {"median": {"n_startup_trials": 1, "n_warmup_steps": 0}}


def test_a_trial_that_trains_its_whole_budget_is_complete_not_pruned(study_file, tmp_path):
    # Issue 16, defect 6: with a one-epoch budget the pruner's verdict after that epoch came
    # when nothing was left to save, and trials ended PRUNED "pruned after epoch 1".
    path = study_file(space=SPACE, max_epochs=1, pruner="median", pruners=MEDIAN_AFTER_ONE)
    study = sweep_behind_an_unbeatable_trial(path, tmp_path, max_epochs=1)
    trained = [study.trials[0], study.trials[2]]
    assert [t.state for t in trained] == [TrialState.COMPLETE, TrialState.COMPLETE], [
        t.user_attrs.get(record.REASON) for t in trained]
    for trial in trained:
        assert trial.user_attrs[record.STOP_REASON] == "budget"
        assert record.REASON not in trial.user_attrs
        assert trial.user_attrs[record.EPOCHS_RUN] == 1


def test_the_default_is_never_pruned_but_others_like_it_are(study_file, tmp_path):
    path = study_file(space=SPACE, max_epochs=2, pruner="median", pruners=MEDIAN_AFTER_ONE)
    study = sweep_behind_an_unbeatable_trial(path, tmp_path, max_epochs=2)
    default, other = study.trials[0], study.trials[2]
    assert record.is_default(default) and not record.is_default(other)
    assert default.state == TrialState.COMPLETE
    assert default.user_attrs[record.STOP_REASON] == "budget"
    assert default.user_attrs[record.EPOCHS_RUN] == 2
    assert other.state == TrialState.PRUNED  # the same pruner, the same standing: pruned
    assert other.user_attrs[record.STOP_REASON] == "pruned"
    assert other.user_attrs[record.REASON] == "pruned after epoch 1"


def test_a_trial_that_stops_improving_ends_by_patience(study_file, tmp_path):
    # No improvement of val/map can exceed 0.99 (it starts above 0.01): the first evaluation
    # sets the best, the second is one without improvement, and patience 1 ends the training.
    path = study_file(space=SPACE, max_epochs=4, patience=1, min_delta=0.99)
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=1, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    (trial,) = load_study(tmp_path / "tiny.db").trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs[record.STOP_REASON] == "patience"
    assert trial.user_attrs[record.EPOCHS_RUN] == 2
    # Training and evaluation seconds are apart, and together within the trial's wall time.
    train, evaluation = trial.user_attrs[record.TRAIN_TIME_S], trial.user_attrs[record.EVAL_TIME_S]
    assert train > 0 and evaluation > 0
    assert train + evaluation <= trial.user_attrs[record.WALL_TIME_S]


def test_without_patience_a_trial_trains_its_whole_budget(study_file, tmp_path):
    path = study_file(space=SPACE, max_epochs=2, patience=0, min_delta=0.99)
    spec = load_study_spec(str(path))
    assert not spec.stopping().stops_early
    options = SweepOptions(n_trials=1, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    (trial,) = load_study(tmp_path / "tiny.db").trials
    assert (trial.state, trial.user_attrs[record.STOP_REASON], trial.user_attrs[record.EPOCHS_RUN]) == (
        TrialState.COMPLETE, "budget", 2)


def test_an_infeasible_trial_records_why_it_ended(study_file, tmp_path):
    # No convolution at all (nv = nh = 0) leaves the model nothing to train.
    path = study_file(space={"nv": "{ int = [0, 1] }", "nh": "{ int = [0, 1] }"}, max_epochs=1)
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=2, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    study.enqueue_trial({"nv": 0, "nh": 0})
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    trials = load_study(tmp_path / "tiny.db").trials
    infeasible = [t for t in trials if record.is_infeasible(t)]
    assert infeasible, [(t.params, t.state, t.user_attrs) for t in trials]
    assert infeasible and all(t.user_attrs[record.STOP_REASON] == "infeasible" for t in infeasible)


# ---- the study file and the sweep's flags ----

def test_the_stopping_rule_is_read_from_the_study_file(study_file):
    spec = load_study_spec(str(study_file(max_epochs=30, patience=5, min_delta=0.001)))
    rule = spec.stopping()
    assert (spec.max_epochs, rule.patience, rule.min_delta, rule.monitor, rule.mode) == (
        30, 5, 0.001, "val/map", "max")
    assert spec.with_overrides(patience=0).stopping().patience is None  # 0: no early stopping
    assert spec.with_overrides(min_delta=0.01).min_delta == 0.01


@pytest.mark.parametrize("key,value,message", [
    ("patience", -1, "study.patience must be a whole number >= 0"),
    ("patience", 2.5, "study.patience must be a whole number >= 0"),
    ("min_delta", -0.1, "study.min_delta must be a finite number from 0 to below 1"),
    ("min_delta", '"x"', "study.min_delta must be a finite number from 0 to below 1"),
    ("min_delta", "inf", "study.min_delta must be a finite number from 0 to below 1"),
    ("min_delta", "nan", "study.min_delta must be a finite number from 0 to below 1"),
    ("min_delta", 1e300, "study.min_delta must be a finite number from 0 to below 1"),
])
def test_a_bad_stopping_rule_names_its_key(study_file, key, value, message):
    with pytest.raises(StudyError, match=rf"tiny\.toml: {message}"):
        load_study_spec(str(study_file(**{key: value})))


def test_the_sweep_flags_set_the_rule_and_the_study_records_what_was_built(study_file, sweep_main, tmp_path):
    path = study_file(space=SPACE, max_epochs=3, patience=2, min_delta=0.5, sampler="tpe", seed=4)
    code, err = sweep_main("--study", path, "--trials", "1", "--runs-dir", tmp_path, "--pruner", "hyperband",
                           "--max-epochs", "2", "--patience", "1", "--min-delta", "0.25")
    assert code == 0, err
    attrs = load_study(tmp_path / "tiny.db").user_attrs
    assert attrs[record.MAX_EPOCHS] == 2 and attrs[record.SEED] == 4
    assert (attrs[record.PATIENCE], attrs[record.MIN_DELTA]) == (1, 0.25)
    assert attrs[record.SAMPLER] == {"name": "tpe", "args": {
        "seed": 4, "n_startup_trials": 10, "multivariate": True, "constant_liar": True}}
    assert attrs[record.PRUNER] == {"name": "hyperband", "options": {
        "min_resource": 1, "max_resource": 2, "reduction_factor": 3}}
    code, err = sweep_main("--study", path, "--trials", "1", "--runs-dir", tmp_path / "x", "--patience", "-2")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: ") and "patience" in err


@pytest.mark.parametrize("flag,value,message", [
    ("--patience", "-1", "error: --patience must be a whole number >= 0 (0: no early stopping), got -1"),
    ("--min-delta", "-0.5", "error: --min-delta must be a finite number from 0 to below 1"),
    ("--min-delta", "nan", "error: --min-delta must be a finite number from 0 to below 1"),
    ("--min-delta", "inf", "error: --min-delta must be a finite number from 0 to below 1"),
])
def test_a_bad_stopping_flag_is_blamed_on_the_flag_not_the_study_file(sweep_main, tmp_path, flag, value, message):
    code, err = sweep_main("--trials", "1", "--runs-dir", tmp_path / "runs", flag, value)
    assert code == 2 and err.strip().startswith(message) and len(err.strip().splitlines()) == 1, err
    assert "default.toml" not in err and not (tmp_path / "runs").exists()


def test_a_study_without_patience_records_none(study_file, tmp_path):
    spec = load_study_spec(str(study_file(max_epochs=2)))
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", SweepOptions(n_trials=1, runs_dir=tmp_path))
    assert study.user_attrs[record.PATIENCE] is None and study.user_attrs[record.MIN_DELTA] == 0.0
    assert study.user_attrs[record.PRUNER] == {"name": "none", "options": {}}


def test_the_tpe_sampler_is_built_as_optunas_default_for_one_objective(study_file):
    # The recorded arguments claim Optuna's defaults spelled out: multivariate with constant liar.
    study = optuna.create_study(direction="maximize")
    built = make_sampler(load_study_spec(str(study_file(sampler="tpe"))), 0)
    default = optuna.samplers.TPESampler(seed=0)
    assert built._is_multivariate(study) is default._is_multivariate(study) is True
    assert built._constant_liar is default._constant_liar is True


# ---- multi-fidelity pruners span the budget ----

def test_successive_halving_and_hyperband_span_one_epoch_to_the_budget(study_file):
    hyperband = make_pruner(load_study_spec(str(study_file(max_epochs=40, pruner="hyperband"))))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert (hyperband._min_resource, hyperband._max_resource, hyperband._reduction_factor) == (1, 40, 3)
    halving = make_pruner(load_study_spec(str(study_file(max_epochs=40, pruner="successive_halving"))))
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner) and halving._min_resource == 1
    # The study file's table still wins.
    table = {"hyperband": {"min_resource": 2, "reduction_factor": 2}}
    hyperband = make_pruner(load_study_spec(str(study_file(max_epochs=40, pruner="hyperband", pruners=table))))
    assert (hyperband._min_resource, hyperband._max_resource, hyperband._reduction_factor) == (2, 40, 2)


def _first_epoch_pruned(pruner: optuna.pruners.BasePruner) -> bool:
    """Whether `pruner` stops a trial worse than the one before it after its first epoch (step 0)."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    first = study.ask()
    first.report(1.0, step=0)
    assert not first.should_prune()  # the first trial at a rung is promoted
    study.tell(first, 1.0)
    second = study.ask()
    second.report(0.5, step=0)
    return second.should_prune()


def test_successive_halving_counts_epochs_trained_so_min_resource_1_cuts_after_one_epoch(study_file):
    # Trials report 0-based epochs; Optuna's own pruner, seeing step 0, cannot cut before step 1.
    table = {"successive_halving": {"min_resource": 1, "reduction_factor": 2}}
    spec = load_study_spec(str(study_file(max_epochs=8, pruner="successive_halving", pruners=table)))
    assert _first_epoch_pruned(make_pruner(spec))
    assert not _first_epoch_pruned(optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2))
    # Hyperband stays a HyperbandPruner: Optuna's samplers see only a bracket's trials by that test.
    assert isinstance(make_pruner(load_study_spec(str(study_file(pruner="hyperband")))),
                      optuna.pruners.HyperbandPruner)


def test_the_default_trains_again_with_its_extra_seeds_never_pruned_and_the_report_reads_its_spread(
        study_file, tmp_path):
    """default_seeds 2: trials 0, 1 and 2 are the defaults with seeds 0, 1 and 2 (the noise floor),
    each never pruned even by a pruner that prunes everything, and left out of the best table."""
    from search.report.noise import noise_floor
    from search.report.view import StudyView

    path = study_file(space=SPACE, max_epochs=2, default_seeds=2, pruner="median", pruners=MEDIAN_AFTER_ONE)
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=4, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    study.add_trial(create_trial(
        params={"lr": 1e-3}, distributions={"lr": FloatDistribution(1e-4, 1e-2, log=True)},
        value=UNBEATABLE, intermediate_values={step: UNBEATABLE for step in range(2)}))
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    trials = load_study(tmp_path / "tiny.db").trials
    defaults = [t for t in trials if t.user_attrs.get(record.IS_DEFAULT)]
    assert [t.user_attrs.get(record.DEFAULT_REPLICA) for t in defaults] == [None, 1, 2]
    assert [t.user_attrs[record.SEED] for t in defaults] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE and t.params == defaults[0].params for t in defaults)
    assert len({t.value for t in defaults}) == 3  # three seeds, three values
    view = StudyView.of(load_study(tmp_path / "tiny.db"))
    assert noise_floor(view).values == tuple(t.value for t in defaults)
    assert all(not record.is_replica(t) for t in view.ranked())
    assert view.user_attrs[record.DEFAULT_SEEDS] == 2


def test_a_study_asked_for_fewer_trials_than_default_runs_queues_only_what_fits(study_file, tmp_path):
    path = study_file(space=SPACE, default_seeds=3)
    spec = load_study_spec(str(path))
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = open_study(spec, url, SweepOptions(n_trials=2, runs_dir=tmp_path))
    assert [t.user_attrs.get(record.DEFAULT_REPLICA) for t in study.trials] == [None, 1]
    study = open_study(spec, url, SweepOptions(n_trials=10, runs_dir=tmp_path))  # asked for more
    assert [t.user_attrs.get(record.DEFAULT_REPLICA) for t in study.trials] == [None, 1, 2, 3]
