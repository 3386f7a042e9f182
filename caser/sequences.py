"""Per-user item sequences in time order, stored flat (CSR) so that millions of events stay cheap.

Users are dense 0..num_users-1; items are dense 1..num_items, item 0 being padding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Sequences:
    """User u's items, in time order, are `items[indptr[u]:indptr[u + 1]]`.

    num_items counts real items (ids 1..num_items); padding id 0 is not counted.
    user_ids / item_ids map dense ids back to the raw ids of the file (item_ids[0] is padding).
    """

    indptr: np.ndarray  # (num_users + 1,) int64
    items: np.ndarray  # (num_events,) int64, values in 1..num_items
    num_items: int
    user_ids: np.ndarray | None = field(default=None, compare=False)
    item_ids: np.ndarray | None = field(default=None, compare=False)

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def num_events(self) -> int:
        return int(self.indptr[-1])

    def user(self, u: int) -> np.ndarray:
        """The items of user u, in time order."""
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def users(self) -> np.ndarray:
        """The user of every event, aligned with `items`."""
        return np.repeat(np.arange(self.num_users, dtype=np.int64), self.lengths)

    @classmethod
    def from_lists(cls, seqs: list[list[int]], num_items: int | None = None) -> "Sequences":
        """Build from Python lists of dense item ids (handy in tests)."""
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.array([i for s in seqs for i in s], dtype=np.int64)
        if num_items is None:
            num_items = int(items.max()) if len(items) else 0
        return cls(indptr=indptr, items=items, num_items=num_items)

    def to_lists(self) -> list[list[int]]:
        return [self.user(u).tolist() for u in range(self.num_users)]

    def concat(self, other: "Sequences") -> "Sequences":
        """Each user's events of self followed by those of other (same users, same items)."""
        if other.num_users != self.num_users:
            raise ValueError("concat needs the same users")
        lengths = self.lengths + other.lengths
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        pos_self = indptr[:-1].repeat(self.lengths) + positions_within_user(self.lengths)
        pos_other = (indptr[:-1] + self.lengths).repeat(other.lengths) + positions_within_user(other.lengths)
        items = np.empty(indptr[-1], dtype=np.int64)
        items[pos_self] = self.items
        items[pos_other] = other.items
        return Sequences(indptr, items, self.num_items, self.user_ids, self.item_ids)


def positions_within_user(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., n_u - 1 for every user, concatenated: each event's index inside its user."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.arange(lengths.sum(), dtype=np.int64) - np.repeat(starts, lengths)
