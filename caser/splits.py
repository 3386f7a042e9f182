"""Split each user's time-ordered sequence into train / validation / test parts (a `Split`).

Two holdout schemes (`DataConfig.holdout`), both per user and in time order:
- ratio (Caser's paper): first floor(n * train_frac) events train, up to floor(n * (train_frac +
  val_frac)) validation, the rest test. Products are rounded to 9 decimals before the floor, so
  0.7 * 10 counts as 7 and not 6.999...
- loo (leave-one-out): the last event test, the one before it validation, the rest train.

Every user must keep at least one training event (Caser needs history to predict from); others
are a DataError naming the user. Validation or test may be empty for a user: that user is simply
not evaluated there. All three parts keep the same users, items and raw-id maps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caser.config import DataConfig
from caser.errors import DataError
from caser.sequences import Sequences, positions_within_user


@dataclass(frozen=True)
class Split:
    """Train, validation and test sequences over the same users and items."""

    train: Sequences
    val: Sequences
    test: Sequences


def split_sequences(seqs: Sequences, cfg: DataConfig) -> Split:
    """Cut every user's events into train / val / test following `cfg.holdout` (module docstring)."""
    n = seqs.lengths
    if cfg.holdout == "ratio":
        n_train = np.floor(np.round(n * cfg.train_frac, 9)).astype(np.int64)
        n_train_val = np.floor(np.round(n * (cfg.train_frac + cfg.val_frac), 9)).astype(np.int64)
        rule = f"holdout 'ratio' with train_frac={cfg.train_frac}"
    elif cfg.holdout == "loo":
        n_train_val = np.maximum(n - 1, 0)
        n_train = np.maximum(n - 2, 0)
        rule = "holdout 'loo' (needs 3 events: train, validation, test)"
    else:
        raise DataError(f"holdout: unknown holdout {cfg.holdout!r}; choose 'ratio' or 'loo'")

    empty = np.flatnonzero(n_train == 0)
    if len(empty):
        u = int(empty[0])
        raw = seqs.user_ids[u] if seqs.user_ids is not None else u
        raise DataError(
            f"user {raw}: {int(n[u])} event(s) leave no training item under {rule}; "
            f"{len(empty)} user(s) affected; set min_user_interactions to drop short users"
        )

    pos = positions_within_user(n)
    user = seqs.users()
    part = (pos >= n_train[user]).astype(np.int8) + (pos >= n_train_val[user])
    return Split(*(_part(seqs, user, part == k) for k in range(3)))


def _part(seqs: Sequences, user: np.ndarray, mask: np.ndarray) -> Sequences:
    counts = np.bincount(user[mask], minlength=seqs.num_users).astype(np.int64)
    return Sequences(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=seqs.items[mask],
        num_items=seqs.num_items,
        user_ids=seqs.user_ids,
        item_ids=seqs.item_ids,
    )
