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
from pathlib import Path

import pytest
import torch

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
