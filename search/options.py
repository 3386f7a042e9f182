"""The runtime settings of one sweep process, built once by `sweep.py` from its flags.

What to search and how long a trial trains is the study's (`StudySpec`); where runs go, where
trials train, when to stop and who this worker is are these options.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from search.storage import DEFAULT_RUNS_DIR

HEARTBEAT_INTERVAL_S = 10


@dataclass(frozen=True)
class SweepOptions:
    n_trials: int  # finished (complete + pruned) trials the study should have
    runs_dir: Path = DEFAULT_RUNS_DIR  # TensorBoard runs and checkpoints, runs_dir/<study>/trial_0007
    timeout: float | None = None  # seconds after which no new trial starts
    accelerator: str = "cpu"
    keep_checkpoints: bool = False  # keep the checkpoints of trials that ended
    # Training seconds between a trial's resume checkpoints; None: caser.callbacks.CHECKPOINT_INTERVAL_S.
    checkpoint_interval_s: float | None = None
    heartbeat: int = HEARTBEAT_INTERVAL_S  # RDB storages: seconds between a running trial's beats
    worker_index: int = 0  # this worker's place among a shared study's: sampler seed = seed + index
    worker: str | None = None  # the label stored with each trial it runs; None: host:pid

    def sampler_seed(self, study_seed: int) -> int:
        return study_seed + self.worker_index

    def worker_label(self) -> str:
        return self.worker or f"{socket.gethostname()}:{os.getpid()}"
