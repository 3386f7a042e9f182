"""TensorBoard, read with its own reader: one run per trial (`runs/<study>/trial_0007/`), one point
per epoch on steps 1..E for the loss and every validation metric, and an HParams entry with the
same keys for every trial, `state` included."""
from __future__ import annotations

import pytest

from caser.metric_names import metric_names
from search.data import prepare_data
from search.options import SweepOptions
from search.run_dirs import trial_dir_name
from search.runner import run_sweep
from search.study import open_study
from search.studyfile import load_study_spec
from tests.helpers.studies import study_toml
from tests.helpers.tensorboard import hparams_of, read_run

EPOCHS = 3
HPARAM_KEYS = {"L", "T", "d", "nv", "nh", "ac_conv", "ac_fc", "dropout", "lr", "l2", "neg_samples",
               "batch_size", "epochs", "seed", "state"}


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    path = tmp / "tiny.toml"
    path.write_text(study_toml(space={"d": "{ choices = [8, 16] }", "lr": "{ float = [1e-4, 1e-2], log = true }"},
                               max_epochs=EPOCHS))
    spec = load_study_spec(str(path))
    options = SweepOptions(n_trials=2, runs_dir=tmp)
    study = open_study(spec, f"sqlite:///{tmp / 'tiny.db'}", options)
    run_sweep(spec, study, prepare_data(spec), options, lambda line: None)
    return tmp, study


def test_trial_dirs_are_named_after_optuna_trial_numbers(two_trials):
    tmp, study = two_trials
    assert trial_dir_name(7) == "trial_0007"
    assert sorted(p.name for p in (tmp / "tiny").iterdir()) == ["trial_0000", "trial_0001"]
    assert [t.number for t in study.trials] == [0, 1]


@pytest.mark.parametrize("number", [0, 1])
def test_every_curve_has_one_point_per_epoch(two_trials, number):
    tmp, study = two_trials
    run = read_run(tmp / "tiny" / f"trial_{number:04d}")
    for tag in ["train/loss", *metric_names("val")]:
        events = run.Scalars(tag)
        assert [e.step for e in events] == list(range(1, EPOCHS + 1)), tag
    trial = study.trials[number]
    assert [e.value for e in run.Scalars("val/map")] == pytest.approx(
        [trial.intermediate_values[k] for k in range(EPOCHS)], rel=1e-5)
    assert max(e.value for e in run.Scalars("val/map")) == pytest.approx(trial.value, rel=1e-5)
    best = run.Scalars("best/val/map")
    assert len(best) == 1 and best[0].step == trial.user_attrs["best_epoch"]


def test_hparams_list_the_same_keys_for_every_trial_with_its_state(two_trials):
    tmp, study = two_trials
    for trial in study.trials:
        keys, values = hparams_of(read_run(tmp / "tiny" / f"trial_{trial.number:04d}"))
        assert set(keys) == HPARAM_KEYS and set(values) == HPARAM_KEYS
        assert values["state"] == trial.state.name == "COMPLETE"
        assert values["lr"] == pytest.approx(trial.params["lr"]) and values["d"] == trial.params["d"]
        assert values["epochs"] == EPOCHS



@pytest.mark.parametrize("state, status", [("COMPLETE", "STATUS_SUCCESS"), ("PRUNED", "STATUS_SUCCESS"),
                                           ("FAIL", "STATUS_FAILURE")])
def test_the_dashboard_status_follows_the_trial_state(tmp_path, state, status):
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    from search.tensorboard import trial_logger, write_hparams

    write_hparams(trial_logger(tmp_path, "s", 3), {"lr": 0.01}, state, {}, 0)
    contents = read_run(tmp_path / "s" / "trial_0003").PluginTagToContent("hparams").values()
    ends = [d.session_end_info for d in map(plugin_data_pb2.HParamsPluginData.FromString, contents)
            if d.HasField("session_end_info")]
    assert [api_pb2.Status.Name(e.status) for e in ends] == [status]
