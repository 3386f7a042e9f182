"""Recursive k-core filtering of `Sequences`: drop rare users and items until none is left.

    from caser.filtering import kcore
    seqs = kcore(seqs, min_user=5, min_item=5)

Why recursive: dropping a rare item can push a user under `min_user`, and dropping that user can
push another item under `min_item`, so one pass is not enough. Each round is a handful of numpy
array operations over all events; the number of rounds is small in practice.
"""
from __future__ import annotations

import numpy as np

from caser.sequences import Sequences


def kcore(seqs: Sequences, min_user: int, min_item: int) -> Sequences:
    """Keep events until every kept user has >= min_user and every kept item >= min_item events.

    Zero disables a side. Users and items are re-densified in their old order (so still sorted by
    raw id) and the raw-id maps follow; users left with no events are dropped.
    """
    if min_user <= 0 and min_item <= 0:
        return seqs
    users, items = seqs.users(), seqs.items
    keep = np.ones(len(items), dtype=bool)
    while True:
        user_count = np.bincount(users[keep], minlength=seqs.num_users)
        item_count = np.bincount(items[keep], minlength=seqs.num_items + 1)
        still = keep & (user_count[users] >= min_user) & (item_count[items] >= min_item)
        if np.array_equal(still, keep):
            break
        keep = still
    return _compact(seqs, keep)


def _compact(seqs: Sequences, keep: np.ndarray) -> Sequences:
    """Sequences of the kept events, with users and items renumbered densely."""
    users, items = seqs.users()[keep], seqs.items[keep]
    kept_users = np.unique(users)
    kept_items = np.unique(items)
    new_user = np.full(seqs.num_users, -1, dtype=np.int64)
    new_user[kept_users] = np.arange(len(kept_users))
    new_item = np.zeros(seqs.num_items + 1, dtype=np.int64)
    new_item[kept_items] = np.arange(1, len(kept_items) + 1)

    # Without raw-id maps the old dense ids are the raw ids, so filtered data stays traceable.
    old_user_ids = seqs.user_ids if seqs.user_ids is not None else np.arange(seqs.num_users)
    old_item_ids = seqs.item_ids if seqs.item_ids is not None else np.arange(seqs.num_items + 1)
    counts = np.bincount(new_user[users], minlength=len(kept_users)).astype(np.int64)
    return Sequences(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=new_item[items],
        num_items=len(kept_items),
        user_ids=old_user_ids[kept_users],
        item_ids=np.concatenate([old_item_ids[:1], old_item_ids[kept_items]]),
    )
