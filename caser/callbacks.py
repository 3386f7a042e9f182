"""The Lightning callbacks every training uses: the per-epoch history and the atomic last
checkpoint, and the switch that quiets Lightning's banners."""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import lightning.pytorch as pl

from caser.module import CaserModule


class EpochHistory(pl.Callback):
    """Collects the train loss and every logged evaluation metric, once per epoch."""

    def __init__(self, on_epoch: Callable[[dict[str, float]], None] | None) -> None:
        self.rows: list[dict[str, float]] = []
        self.on_epoch = on_epoch
        self._start = time.perf_counter()

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
    """Write `<dir>/last.ckpt` after every epoch, atomically: a process killed mid-write leaves
    the previous epoch's checkpoint intact instead of a truncated file (`fit(ckpt_path=...)`)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        trainer.save_checkpoint(partial)
        os.replace(partial, self.path)


def quiet_lightning() -> None:
    """Silence Lightning's banners and the warnings it raises for our deliberate choices."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*is an invalid.*dataloader.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")  # we log per epoch
