"""From raw event columns to `Sequences`: dense ids, a fast stable sort, the CSR arrays.

    users, user_ids = dense_ids(raw_users)
    order = user_time_order(users, timestamps)
    seqs = build_sequences(users[order], items[order] + 1, user_ids, with_padding(item_ids))

Every reader (`caser.readers`, `caser.gowalla`, `caser.santander`) ends with these steps, so they
live here, below all of them: no reader imports another to reach them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from caser.sequences import Sequences


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for non-negative integer keys, several times faster.

    LSD radix sort by 16-bit digits: numpy's stable sort of 16-bit integers is a radix sort,
    while for int64 it falls back to timsort, several times slower per pass.
    """
    keys = np.asarray(keys, dtype=np.int64)
    order = np.arange(len(keys), dtype=np.int64)
    top = int(keys.max()) if len(keys) else 0
    shift = 0
    while True:
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
        if top >> shift == 0:
            return order


def user_time_order(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """The stable order of events by (user, timestamp): ties keep their order in the file.

    A file grouped by user in id order (ml-1m's ratings.dat, Gowalla's check-ins) is already
    in long sorted blocks, which numpy's stable sort (a timsort) merges almost for free; other
    files take the radix sort.
    """
    key = user_time_key(users, timestamps)
    if len(users) > 1 and bool((users[1:] >= users[:-1]).all()):
        return np.argsort(key, kind="stable")
    return stable_argsort(key)


def user_time_key(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """One non-negative int64 per event that orders by (user, timestamp)."""
    if timestamps.dtype.kind in "iu":
        offset = timestamps.astype(np.int64) - timestamps.min()
        span = int(offset.max()) + 1
        if span * (int(users.max()) + 1) < 2**62:
            return users * span + offset
    # Fractional or very wide timestamps: rank them first (slower, sort-based).
    _, rank = np.unique(timestamps, return_inverse=True)
    return users * (int(rank.max()) + 1) + rank.reshape(-1)


def dense_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..K-1 for raw ids sorted by value, and the sorted unique raw ids.

    Non-negative integer ids below 2 * len(raw) + 2**20 (Gowalla's location ids, MovieLens ids)
    go through a presence table indexed by id, a few times faster than hashing and sorting;
    the table's size is bounded by that limit. Anything else goes through `pd.factorize`.
    """
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu" and len(raw) and raw.min() >= 0 and raw.max() < 2 * len(raw) + 2**20:
        present = np.zeros(int(raw.max()) + 1, dtype=bool)
        present[raw] = True
        code_of = np.cumsum(present, dtype=np.int64) - 1
        return code_of[raw], np.flatnonzero(present).astype(raw.dtype, copy=False)
    codes, uniques = pd.factorize(raw, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def with_padding(item_ids: np.ndarray) -> np.ndarray:
    """Prepend a padding entry so that `item_ids[dense_item]` is the raw id (dense ids from 1)."""
    kind = item_ids.dtype.kind
    if kind == "i":
        pad = np.array([-1], dtype=item_ids.dtype)
    elif kind == "f":
        pad = np.array([np.nan], dtype=item_ids.dtype)
    else:
        pad = np.array([None], dtype=object)
        item_ids = item_ids.astype(object)
    return np.concatenate([pad, item_ids])


def build_sequences(
    users: np.ndarray, items: np.ndarray, user_ids: np.ndarray, item_ids: np.ndarray
) -> Sequences:
    """CSR `Sequences` from events already grouped by dense user and in time order within each."""
    counts = np.bincount(users, minlength=len(user_ids)).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Sequences(
        indptr=indptr,
        items=np.ascontiguousarray(items, dtype=np.int64),
        num_items=len(item_ids) - 1,
        user_ids=user_ids,
        item_ids=item_ids,
    )
