"""From raw event columns to `Sequences`: dense ids, a fast stable sort, the CSR arrays.

    users, user_ids = dense_tokens(raw_users)
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


def dense_tokens(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..K-1 for id tokens (strings as the file spells them), and the sorted raw ids.

    Ids are tokens: `07` and `7`, `5.0` and `5` are different ids. Surrounding whitespace is not
    part of an id. The order of the raw ids (and so of the dense ids): numeric, as int64, when
    every token of the column is a non-negative integer written canonically (digits, no leading
    zero, at most 18 of them: then numbers group exactly as their tokens do); otherwise every
    token of the column sorts by its text (Python's string order: by code point, so "10" < "9").
    Hashing runs in C over all tokens; the per-token Python work is over the K distinct ones.
    """
    codes, uniques = factorize_tokens(tokens)
    ids = integer_tokens(uniques)
    raw = ids if ids is not None else uniques
    order = np.argsort(raw, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], raw[order]


def factorize_tokens(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct tokens in order of first appearance, surrounding whitespace dropped
    (" 7" and "7" are one id). Hashing runs in C; stripping only touches the distinct tokens."""
    codes, uniques = pd.factorize(np.asarray(tokens, dtype=object))
    stripped = np.array([token.strip() for token in uniques], dtype=object)
    if not np.array_equal(stripped, uniques):
        merged, stripped = pd.factorize(stripped)
        codes = merged[codes]
    return codes, stripped


MAX_INTEGER_DIGITS = 18  # every such integer fits an int64


def integer_tokens(tokens: np.ndarray) -> np.ndarray | None:
    """The tokens as int64 when each is a canonical non-negative integer (ASCII digits, no
    leading zero, at most `MAX_INTEGER_DIGITS`), else None. Canonical spelling is what makes
    numbers and tokens group alike: `int("07") == int("7")`, yet they are two tokens."""
    tokens = np.asarray(tokens, dtype=object)
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    if lengths.min() == 0 or lengths.max() > MAX_INTEGER_DIGITS:  # checked before a fixed width
        return None
    chars = tokens.astype(f"U{MAX_INTEGER_DIGITS}").view(np.uint32).reshape(len(tokens), -1)
    inside = np.arange(chars.shape[1]) < lengths[:, None]  # (K, 18): the token's own characters
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    leading_zero = (chars[:, 0] == ord("0")) & (lengths > 1)
    if not (digit | ~inside).all() or leading_zero.any():
        return None
    place = 10 ** np.maximum(lengths[:, None] - 1 - np.arange(chars.shape[1]), 0)
    return ((chars.astype(np.int64) - ord("0")) * place * inside).sum(axis=1)


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
