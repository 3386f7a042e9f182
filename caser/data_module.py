"""Data prepared once and shared by every training on the same split.

`PreparedData` holds a split and, lazily, what each protocol needs: the training sequences,
the seen-item index for negatives, the windows of each (L, T) and the evaluation sets of each
L, so a sweep that retrains a hundred configurations reads and windows its data once.
`CaserDataModule` serves one training from it: shuffled batches with negatives resampled every
epoch (seeded by the training seed and the epoch, so a resumed run draws what it would have).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Iterator

import lightning.pytorch as pl
import numpy as np
import torch

from caser.evaluation import EvalSet, build_eval_set
from caser.eval_batch import EVAL_RANGE_USERS
from caser.windows import SeenItems, Windows, build_windows, sample_negatives

if TYPE_CHECKING:
    from caser.splits import Split

PROTOCOLS = ("validation", "test")


class PreparedData:
    """A split plus cached per-protocol training data, windows and evaluation sets."""

    def __init__(self, split: Split, max_cached: int = 8) -> None:
        self.split = split
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple, object] = OrderedDict()

    @property
    def num_users(self) -> int:
        return self.split.train.num_users

    @property
    def num_items(self) -> int:
        return self.split.train.num_items

    def _cached(self, key: tuple, build: Callable[[], object]) -> object:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = build()
        self._cache[key] = value
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return value

    def history(self, protocol: str):
        """What a protocol trains on: train (validation protocol) or train + validation (test)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if protocol == "validation":
            return self.split.train
        return self._cached(("history",), lambda: self.split.train.concat(self.split.val))

    def seen(self, protocol: str) -> SeenItems:
        return self._cached(("seen", protocol), lambda: SeenItems(self.history(protocol)))

    def windows(self, protocol: str, L: int, T: int) -> Windows:
        return self._cached(("windows", protocol, L, T), lambda: build_windows(self.history(protocol), L, T))

    def held_out(self, protocol: str):
        """What a protocol evaluates on: validation, or test."""
        return self.split.val if protocol == "validation" else self.split.test

    def has_eval_users(self, protocol: str) -> bool:
        """Whether any user has a held-out item: the evaluation set's users, without building it."""
        return bool((self.held_out(protocol).lengths > 0).any())

    def eval_set(self, protocol: str, L: int) -> EvalSet:
        held_out = self.held_out(protocol)
        return self._cached(("eval", protocol, L), lambda: build_eval_set(self.history(protocol), held_out, L))


class TrainBatches:
    """One epoch of shuffled batches (users, inputs, targets, negatives), made afresh per epoch."""

    def __init__(
        self,
        windows: Windows,
        seen: SeenItems,
        neg_samples: int,
        batch_size: int,
        seed: int,
        epoch: Callable[[], int],
    ) -> None:
        self.windows, self.seen = windows, seen
        self.neg_samples, self.batch_size, self.seed = neg_samples, batch_size, seed
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        rng = np.random.default_rng([self.seed, self.epoch()])
        order = rng.permutation(len(self.windows))
        w = self.windows
        users = w.users[order]
        negatives = sample_negatives(self.seen, users, self.neg_samples, rng)
        tensors = [torch.from_numpy(a) for a in (users, w.inputs[order], w.targets[order], negatives)]
        for start in range(0, len(order), self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in tensors)


class EpochOfBatches:
    """Lightning's training data: one item per epoch, the epoch's mini-batches, which
    `CaserModule.training_step` optimises one by one (see there why). Its length is 1."""

    def __init__(self, batches: TrainBatches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[TrainBatches]:
        yield self.batches


class CaserDataModule(pl.LightningDataModule):
    """Training batches and evaluation-user ranges for one (L, T, protocol) on prepared data."""

    def __init__(
        self,
        data: PreparedData,
        L: int,
        T: int,
        neg_samples: int,
        batch_size: int,
        seed: int,
        protocol: str = "validation",
        eval_range_users: int = EVAL_RANGE_USERS,
    ) -> None:
        super().__init__()
        self.data, self.L, self.T, self.protocol = data, L, T, protocol
        self.neg_samples, self.batch_size, self.seed = neg_samples, batch_size, seed
        self.eval_set = data.eval_set(protocol, L)
        # Users per validation step (`caser.evaluation.batch_metrics` bounds its memory).
        self.eval_range_users = eval_range_users

    def train_dataloader(self) -> EpochOfBatches:
        return EpochOfBatches(TrainBatches(
            self.data.windows(self.protocol, self.L, self.T),
            self.data.seen(self.protocol),
            self.neg_samples,
            self.batch_size,
            self.seed,
            epoch=lambda: self.trainer.current_epoch if self.trainer is not None else 0,
        ))

    def val_dataloader(self) -> "UserRanges":
        return UserRanges(len(self.eval_set), self.eval_range_users)


class UserRanges:
    """Evaluation batches as (start, stop) ranges of eval users; an object, not a list, since
    Lightning reads a list as several dataloaders."""

    def __init__(self, n: int, batch: int) -> None:
        self.ranges = [(start, min(start + batch, n)) for start in range(0, n, batch)]

    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.ranges)
