"""The Lightning callbacks every training uses: the per-epoch history (which a checkpoint
carries, with the random state, so that a resumed training goes on as the original would
have), the atomic last checkpoint written by time, and the switch that quiets Lightning's
banners."""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch

from caser.module import CaserModule

# Seconds of training between two resume checkpoints. A checkpoint is the weights and Adam's
# two moments, three times the parameters (3 to 9 MB for the configurations the default study
# draws on its default data, hundreds of MB for the largest the space allows on a large
# catalogue), while an epoch of the default study takes about a second: written after every
# epoch, the checkpoints of a 16-minute sweep came to 3.6 GB (issue 25), and every 10 s they
# were still most of the 1.97 GB a 100-trial sweep wrote. Every 30 s, the first 7 minutes of
# the default sweep wrote 93 MB against 268 MB every 10 s (docs/measurements.md), still one per
# epoch when epochs are slow (they take longer than the interval), and a killed trial loses at
# most max(30 s, one epoch) of training: seconds against the minutes a trial trains.
CHECKPOINT_INTERVAL_S = 30.0
ROWS = "rows"  # EpochHistory's state: the per-epoch rows
RANDOM_STATE = "caser_random_state"


class EpochHistory(pl.Callback):
    """Collects the train loss and every logged evaluation metric, once per epoch.

    In a checkpoint it keeps the rows of every epoch the checkpoint holds (`history_in` reads
    them back: a resumed trial's curve) and the random state dropout draws from, as plain
    values and tensors, which load weights-only; a training resumed from it draws the dropout
    masks the original would have (its negatives and batch order come from (seed, epoch)).
    `rows` holds only the epochs trained by this run."""

    def __init__(self, on_epoch: Callable[[dict[str, float]], None] | None) -> None:
        self.rows: list[dict[str, float]] = []
        self.earlier: list[dict[str, float]] = []  # a resumed run: the rows its checkpoint held
        self.on_epoch = on_epoch
        self._start = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        return {ROWS: self.earlier + self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier = list(state_dict.get(ROWS, []))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[RANDOM_STATE] = random_state()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if RANDOM_STATE in checkpoint:  # not in a checkpoint from before it was kept
            set_random_state(checkpoint[RANDOM_STATE])

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: CaserModule) -> None:
        row: dict[str, float] = {"epoch": trainer.current_epoch + 1, "train/loss": pl_module.epoch_loss()}
        evaluated = pl_module.last_eval_epoch == trainer.current_epoch
        if evaluated:
            row.update(pl_module.last_eval)
        row["time_s"] = time.perf_counter() - self._start
        row["eval_time_s"] = pl_module.last_eval_time_s if evaluated else 0.0
        row["train_time_s"] = row["time_s"] - row["eval_time_s"]
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)



class SaveLast(pl.Callback):
    """Write `<dir>/last.ckpt` at the end of an epoch once `interval_s` seconds have passed
    since the last write (or the start), never after the training's last epoch (the trial
    removes its checkpoints when it ends), atomically: a process killed mid-write leaves the
    previous checkpoint intact instead of a truncated file (`fit(ckpt_path=...)`). A write that
    fails (a full disk) leaves no temporary file."""

    def __init__(self, directory: str | Path, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = Path(directory) / "last.ckpt"
        self.interval_s = interval_s
        self._last = time.monotonic()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last_epoch = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if last_epoch or time.monotonic() - self._last < self.interval_s:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            trainer.save_checkpoint(partial)
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)
        self._last = time.monotonic()


def history_in(checkpoint: dict[str, Any]) -> list[dict[str, float]]:
    """The per-epoch rows a loaded checkpoint holds (EpochHistory's), oldest first; none in a
    checkpoint from before they were kept."""
    for key, state in checkpoint.get("callbacks", {}).items():
        if key == EpochHistory.__qualname__ and isinstance(state, dict):
            return list(state.get(ROWS, []))
    return []


def random_state() -> dict[str, Any]:
    """The generators dropout draws from, as tensors: torch's CPU one and, where there is one,
    each CUDA device's."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def quiet_lightning() -> None:
    """Silence Lightning's banners and the warnings it raises for our deliberate choices."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*is an invalid.*dataloader.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")  # we log per epoch
