"""The LightningModule: Caser's loss, optimiser and the per-epoch ranking evaluation.

Loss (the original's): binary cross-entropy of the T targets against the sampled negatives,
    -mean(log sigmoid(s_target)) - mean(log(1 - sigmoid(s_negative))),
computed with logsigmoid for stability. Adam with lr and weight decay l2.
"""
from __future__ import annotations

import time
from typing import Iterable

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F

from caser.config import ModelConfig, TrainConfig
from caser.evaluation import EvalSet, batch_metrics
from caser.model import Caser


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class CaserModule(pl.LightningModule):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        model_config: ModelConfig,
        train_config: TrainConfig,
        eval_set: EvalSet,
        prefix: str = "val",
    ) -> None:
        super().__init__()
        self.net = Caser(num_users, num_items, model_config)
        self.train_config = train_config
        self.eval_set = eval_set
        self.prefix = prefix
        self._sums: dict[str, float] = {}
        self._ap_parts: list[np.ndarray] = []
        self._eval_started = 0.0
        self.last_eval: dict[str, float] = {}  # metrics of the latest evaluation
        self.last_eval_epoch = -1  # the 0-based epoch they belong to
        self.last_eval_time_s = 0.0  # the seconds that evaluation took
        # AP of each evaluated user in the latest evaluation, in eval_set.users order: users
        # are the unit of a paired comparison of two configurations.
        self.last_user_ap = np.zeros(0)
        self._loss_sum = torch.zeros(())
        self._loss_count = 0
        # Lightning's own loop around every optimisation step (its hooks, closure and progress
        # tracking) cost about as much CPU as a default-configuration step: one Lightning step
        # is a whole epoch (`caser.data_module.EpochOfBatches`), whose mini-batches
        # `training_step` optimises in order, exactly as Lightning's loop would.
        self.automatic_optimization = False

    def training_step(self, batches: Iterable[tuple[torch.Tensor, ...]], batch_idx: int) -> None:
        """One epoch: forward, backward and an Adam step for each mini-batch, in order."""
        optimizer = self.optimizers(use_pl_optimizer=False)
        for batch in batches:
            users, seqs, targets, negatives = (t.to(self.device) for t in batch)
            loss = self.loss(users, seqs, targets, negatives)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def loss(self, users: torch.Tensor, seqs: torch.Tensor, targets: torch.Tensor,
             negatives: torch.Tensor) -> torch.Tensor:
        """The original's loss on one mini-batch (module docstring); Diverged when not finite."""
        scores = self.net(seqs, users, torch.cat([targets, negatives], 1))  # (B, T + n)
        T = targets.size(1)
        loss = -F.logsigmoid(scores[:, :T]).mean() - F.logsigmoid(-scores[:, T:]).mean()
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at epoch {self.current_epoch + 1}")
        # Averaged by hand at epoch end: self.log per step costs more than the step itself here.
        self._loss_sum = self._loss_sum + loss.detach()
        self._loss_count += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_count = torch.zeros(()), 0
        self.net.seed_dropout(self.train_config.seed, self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.epoch_loss(), on_epoch=True)
        self.log("step", float(self.current_epoch + 1))  # loggers plot against the epoch

    def on_validation_epoch_start(self) -> None:
        self._sums, self._ap_parts = {}, []
        self._eval_started = time.perf_counter()

    def validation_step(self, batch: tuple[int, int], batch_idx: int) -> None:
        start, stop = (int(x) for x in batch)
        per_user = batch_metrics(self.net, self.eval_set, start, stop)
        for k, v in per_user.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v.sum())
        self._ap_parts.append(per_user["map"].detach().cpu().double().numpy())

    def on_validation_epoch_end(self) -> None:
        n = max(len(self.eval_set), 1)
        self.last_eval = {f"{self.prefix}/{k}": v / n for k, v in self._sums.items()}
        self.last_eval_epoch = self.current_epoch
        self.last_user_ap = np.concatenate(self._ap_parts) if self._ap_parts else np.zeros(0)
        self.last_eval_time_s = time.perf_counter() - self._eval_started
        for k, v in self.last_eval.items():
            self.log(k, v, on_epoch=True, batch_size=n)
        self.log("step", float(self.current_epoch + 1), batch_size=n)

    def epoch_loss(self) -> float:
        """Mean training loss of the current (or last) epoch."""
        return float(self._loss_sum) / max(self._loss_count, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.train_config
        # The fused kernel does the same update as the default loop, faster on a CPU.
        return torch.optim.Adam(self.parameters(), lr=t.lr, weight_decay=t.l2, fused=True)
