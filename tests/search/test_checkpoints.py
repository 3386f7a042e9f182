"""Resume checkpoints: data, never code. A retry loads its checkpoint weights-only and refuses
one that would unpickle anything else (a planted file in a shared runs folder), starting over;
a retry's curve is its own; checkpoints are written by time, and a resume from one trains the
same trial as an uninterrupted run.

    python -m pytest tests/search/test_checkpoints.py
"""
from __future__ import annotations

import os
import pickle
import shlex
import warnings
from pathlib import Path

import pytest
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback

from lightning.pytorch import Callback

from caser.callbacks import SaveLast, history_in
from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.datasets import load_split
from caser.train import fit
from search.options import SweepOptions
from search.run_dirs import checkpoint_dir
from search.study import open_study
from search.studyfile import load_study_spec
from tests.helpers.studies import TINY_DATA, dead_worker_trial, load_study

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning",
                                        "ignore:Heartbeat of storage")
SPACE = {"lr": "{ float = [1e-4, 1e-2], log = true }"}
SMALL = ModelConfig(d=8, nv=1, nh=2)


class Planted:
    """What a hostile writer puts in a checkpoint: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def study_with_a_dead_trial(study_file, runs: Path, max_epochs: int = 2):
    """A study whose first trial (the defaults) died after one epoch, its retry queued, as a
    sweep killed with SIGKILL leaves it; returns (study file, the dead trial's checkpoint)."""
    path = study_file(space=SPACE, max_epochs=max_epochs)
    spec = load_study_spec(str(path))
    runs.mkdir(exist_ok=True)
    study = open_study(spec, f"sqlite:///{runs / 'tiny.db'}", SweepOptions(n_trials=1, runs_dir=runs, heartbeat=1))
    dead = dead_worker_trial(study, {0: 0.01})
    ckpt = checkpoint_dir(runs, "tiny", dead) / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    return path, ckpt


@pytest.mark.parametrize("form", ["torch.save", "raw pickle"])
def test_a_planted_checkpoint_runs_no_code_and_the_retry_starts_over(study_file, sweep_main, tmp_path, form):
    runs, marker = tmp_path / "runs", tmp_path / "pwned"
    path, ckpt = study_with_a_dead_trial(study_file, runs)
    planted = {"epoch": 0, "state_dict": {}, "payload": Planted(marker)}
    if form == "torch.save":
        torch.save(planted, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps(planted))

    code, err = sweep_main("--study", path, "--runs-dir", runs, "--trials", 1, "--heartbeat", 1)
    assert not marker.exists(), "the checkpoint's code ran"
    assert code == 0, err
    refused = [line for line in err.splitlines() if str(ckpt) in line]
    assert len(refused) == 1 and "weights" in refused[0] and "starts over" in refused[0], err
    assert "Traceback" not in err
    retry = load_study(runs / "tiny.db").trials[1]
    assert retry.state.name == "COMPLETE" and retry.user_attrs["resumed_from_epoch"] == 0


def test_lightning_loads_a_resume_checkpoint_weights_only_even_when_torch_is_told_otherwise(tmp_path, monkeypatch):
    # A user may set this for another program; the resume load is ours and stays weights-only.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker, ckpt = tmp_path / "pwned", tmp_path / "last.ckpt"
    torch.save({"epoch": 0, "state_dict": {}, "payload": Planted(marker)}, ckpt)
    with pytest.raises(pickle.UnpicklingError):
        fit(SMALL, TrainConfig(epochs=2), load_split(DataConfig(spec=TINY_DATA)), ckpt_path=str(ckpt))
    assert not marker.exists(), "the checkpoint's code ran"


@pytest.mark.parametrize("inherited", [False, True], ids=["sweep's retry", "retry that inherited the curve"])
def test_a_retry_that_starts_over_reports_its_own_curve_without_a_warning(study_file, sweep_main, tmp_path,
                                                                          inherited):
    # No checkpoint: the retry trains from epoch 1. A retry queued by an earlier version
    # inherited the dead trial's values, which its own epochs replace.
    runs = tmp_path / "runs"
    path = study_file(space=SPACE, max_epochs=3)
    spec = load_study_spec(str(path))
    runs.mkdir()
    study = open_study(spec, f"sqlite:///{runs / 'tiny.db'}", SweepOptions(n_trials=1, runs_dir=runs, heartbeat=1))
    callback = RetryHeartbeatStaleTrialCallback(max_retry=1, inherit_intermediate_values=True) if inherited else None
    dead_worker_trial(study, {0: 0.5, 1: 0.5}, callback)  # far above what the tiny data reaches
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = sweep_main("--study", path, "--runs-dir", runs, "--trials", 1, "--heartbeat", 1)
    assert code == 0, err
    assert not [w for w in caught if "already reported" in str(w.message)], [str(w.message) for w in caught]
    retry = load_study(runs / "tiny.db").trials[1]
    assert retry.user_attrs["resumed_from_epoch"] == 0
    assert sorted(retry.intermediate_values) == [0, 1, 2]
    # Its own curve, whole (Optuna's values are the logged float32 metric, the trial's value its float64).
    assert max(retry.intermediate_values.values()) == pytest.approx(retry.value, rel=1e-6) and retry.value < 0.5
    assert retry.intermediate_values[retry.user_attrs["best_epoch"] - 1] == pytest.approx(retry.value, rel=1e-6)


class Killed(Exception):
    """The end of a training that a kill would have ended there."""


class KillAfter(Callback):
    """Ends a training after the given epoch (1-based), once the checkpoint callbacks before it ran."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            raise Killed


@pytest.fixture
def one_thread():
    """Float sums in one order: a resumed run can then match an uninterrupted one bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_training_resumed_from_its_checkpoint_is_the_uninterrupted_training(tmp_path, one_thread):
    split, config = load_split(DataConfig(spec=TINY_DATA)), TrainConfig(epochs=5, seed=3)
    assert SMALL.dropout > 0  # the masks are drawn from torch's generator, which the checkpoint keeps
    whole = fit(SMALL, config, split).history
    with pytest.raises(Killed):  # a checkpoint after epochs 1 and 2, then the kill
        fit(SMALL, config, split, callbacks=[SaveLast(tmp_path, interval_s=0), KillAfter(2)])
    resumed = fit(SMALL, config, split, ckpt_path=str(tmp_path / "last.ckpt")).history
    assert [row["epoch"] for row in resumed] == [3, 4, 5]
    for metric in ("val/map", "train/loss"):
        assert [row[metric] for row in resumed] == [row[metric] for row in whole[2:]], metric
    held = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert [row["epoch"] for row in history_in(held)] == [1, 2]
    assert [row["val/map"] for row in history_in(held)] == [row["val/map"] for row in whole[:2]]


def test_checkpoints_are_written_by_time_and_never_after_the_last_epoch(tmp_path):
    split, config = load_split(DataConfig(spec=TINY_DATA)), TrainConfig(epochs=3)
    fit(SMALL, config, split, callbacks=[SaveLast(tmp_path / "hour", interval_s=3600)])
    assert not (tmp_path / "hour").exists()  # three fast epochs: no hour of training to lose
    fit(SMALL, config, split, callbacks=[SaveLast(tmp_path / "every", interval_s=0)])
    assert torch.load(tmp_path / "every" / "last.ckpt", weights_only=True)["epoch"] == 1  # after epoch 2 of 3
    assert sorted(p.name for p in (tmp_path / "every").iterdir()) == ["last.ckpt"]
