"""Training instances and negatives, built vectorised over all users at once.

Caser trains on sliding windows of L inputs followed by T targets over each user's training
sequence, step 1; a sequence shorter than L + T yields one window left-padded with item 0, as
the original implementation does. For items 1..9, L=5, T=3 (window 8) the windows are
[1..5] -> [6, 7, 8] and [2..6] -> [7, 8, 9]; the input for evaluation is [5, 6, 7, 8, 9].
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from caser.sequences import Sequences, positions_within_user


@dataclass(frozen=True)
class Windows:
    """Aligned arrays, one row per window: the user, its L inputs and its T targets."""

    users: np.ndarray  # (N,) int64
    inputs: np.ndarray  # (N, L) int64
    targets: np.ndarray  # (N, T) int64

    def __len__(self) -> int:
        return len(self.users)


def build_windows(seqs: Sequences, L: int, T: int) -> Windows:
    """All sliding windows of length L + T (step 1) over every user's sequence."""
    width = L + T
    lengths = seqs.lengths
    counts = np.maximum(lengths - width + 1, 1)
    counts[lengths == 0] = 0  # a user with no training event has no window
    users = np.repeat(np.arange(seqs.num_users, dtype=np.int64), counts)
    j = positions_within_user(counts)  # window index within its user
    starts = seqs.indptr[:-1][users]
    pad = np.maximum(width - lengths, 0)[users]
    # Offsets of each window's cells relative to the user's first event; negative = padding.
    rel = j[:, None] + np.arange(width, dtype=np.int64)[None, :] - pad[:, None]  # (N, L+T)
    padded_items = np.concatenate([[0], seqs.items])
    cells = np.where(rel >= 0, starts[:, None] + rel + 1, 0)
    rows = padded_items[cells]
    return Windows(users=users, inputs=rows[:, :L], targets=rows[:, L:])


def last_inputs(seqs: Sequences, L: int) -> np.ndarray:
    """(num_users, L): each user's last L items, left-padded with 0: the input for evaluation."""
    lengths = seqs.lengths
    rel = lengths[:, None] - L + np.arange(L, dtype=np.int64)[None, :]  # (U, L)
    padded_items = np.concatenate([[0], seqs.items])
    cells = np.where(rel >= 0, seqs.indptr[:-1, None] + rel + 1, 0)
    return padded_items[cells]


class SeenItems:
    """Membership test "has user u seen item i" for many pairs at once (sorted int64 keys)."""

    # `contains` reads a dense bit table of all (user, item) cells, one bit a cell (0.2 MB for
    # ml-100k, 2.8 MB for ml-1m), many times faster than a binary search of the sorted keys,
    # but only where the table stays in proportion to the data: at most TABLE_CELLS_PER_KEY
    # cells a seen (user, item) pair (the table at most 4 times the keys' own 8 bytes each) and
    # at most TABLE_MAX_CELLS in all. A sparse catalogue (30,000 users x 23,000 items with
    # 10 events a user: 86 MB of table for 2 MB of keys) keeps the binary search, whose cost
    # grows with the interactions only.
    TABLE_MAX_CELLS = 2**30
    TABLE_CELLS_PER_KEY = 256

    def __init__(self, seqs: Sequences) -> None:
        self.stride = seqs.num_items + 1
        self.keys = np.unique(seqs.users() * self.stride + seqs.items)
        self.num_items = seqs.num_items
        self.num_users = seqs.num_users

    @cached_property
    def table(self) -> np.ndarray | None:
        """The dense (user, item) bit table, bit k of byte j for cell 8j + k, built on the first
        membership test (evaluation sets only need `as_csr`); None where it would be out of
        proportion (see TABLE_CELLS_PER_KEY)."""
        cells = self.num_users * self.stride
        if cells > min(self.TABLE_MAX_CELLS, self.TABLE_CELLS_PER_KEY * max(len(self.keys), 1)):
            return None
        table = np.zeros((cells + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(table, self.keys >> 3, np.left_shift(1, self.keys & 7).astype(np.uint8))
        return table

    def as_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's distinct items, sorted, as CSR (indptr, items)."""
        counts = np.bincount(self.keys // self.stride, minlength=self.num_users)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), self.keys % self.stride

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.stride + items
        if self.table is not None:
            return (self.table[q >> 3] >> (q & 7).astype(np.uint8)) & 1 == 1
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q if len(self.keys) else np.zeros(q.shape, dtype=bool)


def sample_negatives(
    seen: SeenItems, users: np.ndarray, n: int, rng: np.random.Generator, max_rounds: int = 64
) -> np.ndarray:
    """(len(users), n) items drawn uniformly, with replacement, from those the user has not seen.

    Rejection sampling, vectorised: draw all, redraw only the rejected cells. A user who has
    seen almost every item would loop for long, so after max_rounds the cells still rejected
    are drawn exactly from that user's unseen items (left as drawn only when there are none).
    """
    out = rng.integers(1, seen.num_items + 1, size=(len(users), n), dtype=np.int64)
    u = np.broadcast_to(users[:, None], out.shape)
    bad = seen.contains(u, out)
    for _ in range(max_rounds):
        if not bad.any():
            break
        idx = np.nonzero(bad)
        redraw = rng.integers(1, seen.num_items + 1, size=len(idx[0]), dtype=np.int64)
        out[idx] = redraw
        bad[idx] = seen.contains(u[idx], redraw)
    if bad.any():
        _draw_from_unseen(seen, u, out, bad, rng)
    return out


def _draw_from_unseen(seen: SeenItems, u: np.ndarray, out: np.ndarray, bad: np.ndarray,
                      rng: np.random.Generator) -> None:
    """Fill the still-rejected cells of `out` from each user's complement, one user at a time
    (few users, those who saw nearly everything, ever get here)."""
    rows, cols = np.nonzero(bad)
    users = u[rows, cols]
    all_items = np.arange(1, seen.num_items + 1)
    for user in np.unique(users):
        unseen = all_items[~seen.contains(np.full(len(all_items), user), all_items)]
        if len(unseen):
            cells = users == user
            out[rows[cells], cols[cells]] = rng.choice(unseen, size=int(cells.sum()))
