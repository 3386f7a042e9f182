"""Split each user's time-ordered sequence into train / validation / test parts (a `Split`).

Two holdout schemes (`DataConfig.holdout`), both per user and in time order:
- ratio (Caser's paper): first floor(n * train_frac) events train, up to floor(n * (train_frac +
  val_frac)) validation, the rest test. Products are rounded to 9 decimals before the floor, so
  0.7 * 10 counts as 7 and not 6.999... The paper's fractions, 0.7 and 0.1, validate on a window
  half as long as test's; 0.6 and 0.2 chain forward at equal horizons (validation trains on the
  first 60% and scores the next 20%, test trains on the first 80% and scores the last 20%, as
  with the paper's), so that validation ranks configurations on the horizon test measures.
- loo (leave-one-out): the last event test, the one before it validation, the rest train.

Every user must keep at least one training event (Caser needs history to predict from); others
are a DataError naming the user and the `min_user_interactions` that drops all such users, or,
when that filter would leave nobody, saying that the data is too short for the holdout.
Validation or test may be empty for a user: that user is simply not evaluated there. All three parts keep the same users, items and raw-id maps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from caser.config import DataConfig
from caser.errors import DataError, shown
from caser.filtering import kcore
from caser.sequences import Sequences, positions_within_user


PAPER_FRACTIONS = (0.7, 0.1)  # train_frac, val_frac of the paper's protocol


@dataclass(frozen=True)
class Split:
    """Train, validation and test sequences over the same users and items."""

    train: Sequences
    val: Sequences
    test: Sequences


def split_sequences(seqs: Sequences, cfg: DataConfig) -> Split:
    """Cut every user's events into train / val / test following `cfg.holdout` (module docstring)."""
    n = seqs.lengths
    n_train, n_train_val, rule = _cut_points(n, cfg)
    empty = np.flatnonzero(n_train == 0)
    if len(empty):
        raise _too_short_error(seqs, cfg, empty, rule)

    pos = positions_within_user(n)
    user = seqs.users()
    part = (pos >= n_train[user]).astype(np.int8) + (pos >= n_train_val[user])
    return Split(*(_part(seqs, user, part == k) for k in range(3)))


def _cut_points(n: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """Per user of `n` events: how many train, how many train + validation; and the rule's name."""
    if cfg.holdout == "ratio":
        n_train = np.floor(np.round(n * cfg.train_frac, 9)).astype(np.int64)
        n_train_val = np.floor(np.round(n * (cfg.train_frac + cfg.val_frac), 9)).astype(np.int64)
        return n_train, n_train_val, f"holdout 'ratio' with train_frac={cfg.train_frac}"
    if cfg.holdout == "loo":
        rule = "holdout 'loo' (needs 3 events: train, validation, test)"
        return np.maximum(n - 2, 0), np.maximum(n - 1, 0), rule
    raise DataError(f"holdout: unknown holdout {cfg.holdout!r}; choose 'ratio' or 'loo'")


def describe_holdout(cfg: DataConfig) -> str:
    """The protocol in words, for reports: what validation and test train on and score."""
    if cfg.holdout == "loo":
        return "leave-one-out: validation scores each user's last-but-one event, test the last"
    train, val = cfg.train_frac, cfg.val_frac
    test = max(0.0, round(1 - train - val, 9))
    words = f"per user in time order, validation trains on the first {train:.0%} and scores the next {val:.0%}; "
    if test == 0:
        return words + "nothing is left for test"
    words += f"test trains on the first {train + val:.0%} and scores the last {test:.0%}"
    if math.isclose(val, test):
        return words + " (forward chaining at equal horizons)"
    if (train, val) == PAPER_FRACTIONS:
        return words + " (the paper's protocol)"
    return words


def horizon_warning(cfg: DataConfig) -> str | None:
    """A sentence when validation scores a window of another length than test's: a ranking of
    configurations can change with the horizon (docs/measurements.md), so validation may then
    not rank them as test would."""
    if cfg.holdout != "ratio":
        return None
    test = round(1 - cfg.train_frac - cfg.val_frac, 9)
    if test == 0 or math.isclose(cfg.val_frac, test):
        return None
    return (f"Validation scores the next {cfg.val_frac:.0%} of each user's events and test the last "
            f"{test:.0%}: configurations are ranked on a horizon test does not measure, and a ranking "
            "can change with the horizon (docs/measurements.md). Fractions 0.6 and 0.2 validate on "
            "test's horizon.")


def min_user_events(cfg: DataConfig) -> int:
    """The fewest events a user needs to keep a training item under cfg's holdout rule."""
    n = 1
    while _cut_points(np.array([n]), cfg)[0][0] == 0:
        n += 1
    return n


def _too_short_error(seqs: Sequences, cfg: DataConfig, empty: np.ndarray, rule: str) -> DataError:
    """Name the first user without a training item and the filter, in both spellings, that
    drops every such user, with what it would drop (the same k-core the loader applies)."""
    u = int(empty[0])
    raw = seqs.user_ids[u] if seqs.user_ids is not None else u
    need = min_user_events(cfg)
    kept = kcore(seqs, need, cfg.min_item_interactions)
    if kept.num_users == 0:  # advice that drops everyone would only lead to "no user left"
        return _too_short_data_error(seqs, cfg, rule, need)
    return DataError(
        f"user {shown(raw, quote=False)}: {int(seqs.lengths[u])} event(s) leave no training item "
        f"under {rule}; "
        f"{len(empty)} user(s) are that short. Drop them with --min-user-interactions {need} "
        f"(python -m caser.train) or data.min_user_interactions = {need} (study file): that "
        f"drops {seqs.num_users - kept.num_users} user(s) and {seqs.num_events - kept.num_events} "
        f"event(s)"
    )


def _too_short_data_error(seqs: Sequences, cfg: DataConfig, rule: str, need: int) -> DataError:
    """No filter makes this data fit the rule: say so, and why (too short, or the item filter)."""
    longest = int(seqs.lengths.max())
    if longest < need:
        return DataError(
            f"the data is too short for {rule}: a user needs {need} events to keep a training item "
            f"and the longest has {longest}, so --min-user-interactions {need} (a study file's "
            "data.min_user_interactions) would drop every user"
        )
    return DataError(
        f"the data is too small for {rule} with min_item_interactions={cfg.min_item_interactions}: "
        f"--min-user-interactions {need} (data.min_user_interactions), which a user needs to keep "
        "a training item, leaves no user once the items it makes rare are dropped too"
    )


def _part(seqs: Sequences, user: np.ndarray, mask: np.ndarray) -> Sequences:
    counts = np.bincount(user[mask], minlength=seqs.num_users).astype(np.int64)
    return Sequences(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=seqs.items[mask],
        num_items=seqs.num_items,
        user_ids=seqs.user_ids,
        item_ids=seqs.item_ids,
    )
