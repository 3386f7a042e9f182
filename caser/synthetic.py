"""The embedded default dataset: synthetic sequences with structure Caser can learn, from a seed.

    from caser.synthetic import generate
    seqs = generate(seed=0)                                   # ~2,000 users x ~50 events
    big = generate(num_users=6040, num_items=3706, num_interactions=1_000_000, seed=0)

Why synthetic: the sweep needs a default dataset that needs no download, is identical on every
machine for a seed, and rewards sequence models. Real logs are dominated by popularity; here
popularity is flat on purpose and the signal lives in short ordered patterns.

How it is generated (all knobs are keyword arguments of `generate`):
- Motifs. The catalogue of `num_items` items is laid out `motifs_per_item` times, each time in a
  fresh random order, and the result is cut into motifs (fixed ordered item sequences) of
  `motif_len` = (shortest, longest) items. Every item therefore sits in `motifs_per_item`
  motifs with different successors: the previous item alone is ambiguous, while the last 2-5
  items almost always identify the motif (union-level patterns, Caser's horizontal filters).
  Item popularity is roughly flat, so a popularity ranking is nearly useless.
- Taste groups. Motifs are partitioned among `num_groups` groups (fewer when a group would
  hold too few motifs for its users); each user belongs to one group, which Caser's user
  embedding can pick up. The default is one group: with groups, the user embedding alone
  predicts most of a user's future items and the order of the sequence matters less.
- Users. Each user draws a target length around num_interactions / num_users (spread
  +-`length_spread`, at least `min_length`) and a run of *different* motifs of their group,
  each entered at a random offset in 0..`max_offset`, played `interleave` at a time in
  alternation (a1 b1 a2 b2 ...: the next item continues the motif of the item two steps back,
  so a model that sees only the previous item misses it; Caser's skip behaviour). Every
  event is replaced by a uniformly random item with probability `noise`. Repeats of an item within a user are dropped (items
  seen in training are excluded from ranking, so a repeat would be unpredictable), and the
  sequence is cut at the target length, so sizes land within a few percent of the request.

Raw ids are the dense ids themselves. Everything is numpy array work over the events, none of
it users x items: each user's motifs are drawn densely (a random order of the group's motifs)
only up to `DENSE_MAX_CELLS` users x group-motifs, which covers the default data, and as
distinct draws beyond it (the same distribution, other numbers).
"""
from __future__ import annotations

import numpy as np

from caser.errors import DataError
from caser.sequences import Sequences, positions_within_user

DEFAULT_USERS = 2_000
DEFAULT_ITEMS = 1_000
DEFAULT_INTERACTIONS = 100_000
# Motifs drawn per user beyond what the target length needs: repeats and offsets eat into it.
_SPARE_FACTOR, _SPARE_MOTIFS = 1.3, 2
# Each user's motifs come from a random order of their group's motifs. Up to this many
# users x group-motifs cells (about 140 MB of work arrays; the default data is 1M cells) that
# order is drawn densely, one random key per cell, which keeps the default data byte for byte
# what it has always been; beyond it only the motifs a user plays are drawn (`_distinct_draws`),
# so time and memory follow the interactions, not users x items.
DENSE_MAX_CELLS = 2**22


def generate(
    num_users: int = DEFAULT_USERS,
    num_items: int = DEFAULT_ITEMS,
    num_interactions: int = DEFAULT_INTERACTIONS,
    seed: int = 0,
    *,
    motif_len: tuple[int, int] = (6, 10),
    motifs_per_item: int = 4,
    num_groups: int = 1,
    max_offset: int = 2,
    noise: float = 0.05,
    length_spread: float = 0.5,
    min_length: int = 5,
    interleave: int = 2,
) -> Sequences:
    """Generate `num_users` sequences over `num_items` items, about `num_interactions` in all.

    motif_len: shortest and longest motif. motifs_per_item: how many motifs each item sits in
    (the ambiguity of a single previous item). num_groups: taste groups (an upper bound).
    max_offset: a motif is entered at offset 0..max_offset. noise: probability that an event is
    replaced by a random item. length_spread: user lengths are uniform in mean * (1 +- spread).
    min_length: the shortest user sequence. interleave: how many motifs a user plays in
    alternation (1: one after the other).
    """
    lo, hi = motif_len
    mean_events = num_interactions / max(num_users, 1)
    if num_users < 1 or num_items < hi or num_interactions < num_users:
        raise DataError(
            f"synthetic: need users >= 1, items >= {hi} and interactions >= users; got "
            f"users={num_users}, items={num_items}, interactions={num_interactions}"
        )
    if mean_events * (1 + length_spread) > num_items / 2:
        raise DataError(
            f"synthetic: {mean_events:.0f} events per user is too dense for {num_items} items; "
            f"ask for at most {int(num_items / 2 / (1 + length_spread))} per user"
        )
    if seed < 0:  # numpy would say "expected non-negative integer", naming nothing
        raise DataError(f"synthetic: the data seed must be from 0 up, got {seed}")
    if not 2 <= lo <= hi or max_offset > lo - 2 or not 0 <= noise < 1:
        raise ValueError("need 2 <= lo <= hi, max_offset <= lo - 2 and 0 <= noise < 1")
    rng = np.random.default_rng(seed)

    motif_items, motif_start, motif_lens = _motifs(rng, num_items, motifs_per_item, lo, hi)
    targets = _target_lengths(rng, num_users, num_interactions, length_spread, min_length)
    segment_mean = (lo + hi) / 2 - max_offset / 2
    wanted = np.ceil(targets / segment_mean * _SPARE_FACTOR).astype(np.int64) + _SPARE_MOTIFS
    num_motifs = len(motif_lens)
    groups = max(1, min(num_groups, num_motifs // int(wanted.max())))
    per_user = np.minimum(wanted, num_motifs // groups)

    # Each user's motifs: a random order of their group's motifs, first per_user[u] of them.
    members = rng.permutation(num_motifs)[: (num_motifs // groups) * groups].reshape(groups, -1)
    group = rng.integers(groups, size=num_users)
    if num_users * members.shape[1] <= DENSE_MAX_CELLS:
        order = np.argsort(rng.random((num_users, members.shape[1])), axis=1)
        chosen = np.take_along_axis(members[group], order, axis=1)
        take = np.arange(members.shape[1]) < per_user[:, None]
        seg_motif, seg_user = chosen[take], np.nonzero(take)[0]  # row-major: grouped by user
    else:
        seg_user, seg_index = _distinct_draws(rng, per_user, members.shape[1])
        seg_motif = members[group[seg_user], seg_index]

    seg_offset = rng.integers(0, max_offset + 1, size=len(seg_motif))
    seg_len = motif_lens[seg_motif] - seg_offset
    start = np.repeat(motif_start[seg_motif] + seg_offset, seg_len)
    within = positions_within_user(seg_len)  # each event's position inside its motif
    items = motif_items[start + within]
    users = np.repeat(seg_user, seg_len)
    if interleave > 1:
        # Play `interleave` consecutive motifs of a user in alternation (a1 b1 a2 b2 ...): the
        # next item continues the motif of the item `interleave` steps back, which one
        # previous item cannot see (the paper's skip behaviour).
        seg_rank = np.repeat(positions_within_user(np.bincount(seg_user, minlength=num_users)), seg_len)
        order = _stable_order(users, seg_rank // interleave, within, seg_rank % interleave)
        items, users = items[order], users[order]
    noisy = rng.random(len(items)) < noise
    items[noisy] = rng.integers(1, num_items + 1, size=int(noisy.sum()))

    # Keep the first occurrence of each (user, item), then cut each user at the target length.
    _, first = np.unique(users * (num_items + 1) + items, return_index=True)
    keep = np.zeros(len(items), dtype=bool)
    keep[first] = True
    users, items = users[keep], items[keep]
    lengths = np.bincount(users, minlength=num_users)
    inside = positions_within_user(lengths) < targets[users]
    users, items = users[inside], items[inside]

    counts = np.bincount(users, minlength=num_users).astype(np.int64)
    return Sequences(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=items.astype(np.int64),
        num_items=num_items,
        user_ids=np.arange(num_users, dtype=np.int64),
        item_ids=np.arange(num_items + 1, dtype=np.int64),
    )


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """np.lexsort's order by keys[0], then keys[1], ... (non-negative ints), from one stable
    argsort of a combined key: the same permutation, several times faster."""
    spans = [int(key.max(initial=0)) + 1 for key in keys]
    if np.prod(np.array(spans, dtype=float)) >= 2.0**62:  # no room in an int64
        return np.lexsort(keys[::-1])
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for key, span in zip(keys, spans):
        combined = combined * span + key
    return np.argsort(combined, kind="stable")


def _distinct_draws(
    rng: np.random.Generator, counts: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row r, counts[r] <= n distinct values of 0..n-1 in uniformly random order (the
    first counts[r] of a random permutation), flat and grouped by row: (rows, values).

    Draw every cell uniformly, then redraw the cells that repeat an earlier cell of their row
    until none does. The rule looks only at positions and equality, so relabelling values
    changes nothing: every ordered choice of distinct values is equally likely. Rows asking for
    more than half of 0..n-1 (few, and only with tiny n) take a dense random order instead,
    where redrawing would take long.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    values = rng.integers(0, n, size=len(rows))
    full = np.flatnonzero(2 * counts > n)
    if len(full):
        at = np.isin(rows, full)
        order = np.argsort(rng.random((len(full), n)), axis=1)
        values[at] = order[np.arange(n) < counts[full][:, None]]
    pending = np.flatnonzero(~np.isin(rows, full))  # positions, in order, of rows to check
    while len(pending):
        keys = rows[pending] * n + values[pending]
        repeat = np.ones(len(keys), dtype=bool)
        repeat[np.unique(keys, return_index=True)[1]] = False  # the first of equal keys stays
        if not repeat.any():
            break
        values[pending[repeat]] = rng.integers(0, n, size=int(repeat.sum()))
        pending = pending[np.isin(rows[pending], rows[pending[repeat]])]  # rows that repeated
    return rows, values


def _motifs(
    rng: np.random.Generator, num_items: int, motifs_per_item: int, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat motif items, motif start offsets and lengths; each item in `motifs_per_item` motifs."""
    total = motifs_per_item * num_items
    lengths = rng.integers(lo, hi + 1, size=max(1, round(total / ((lo + hi) / 2))))
    lengths = _adjust_sum(rng, lengths, total, lo, hi)
    slots = np.concatenate([rng.permutation(num_items) + 1 for _ in range(motifs_per_item)])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Only a motif straddling two layouts of the catalogue can repeat an item; swap the repeat
    # with a slot of another motif (keeps every item's motif count exact).
    for b in range(num_items, total, num_items):
        m = int(np.searchsorted(starts, b, side="right") - 1)
        _dedupe_motif(rng, slots, starts, lengths, m)
    return slots, starts, lengths


def _adjust_sum(
    rng: np.random.Generator, lengths: np.ndarray, total: int, lo: int, hi: int
) -> np.ndarray:
    """Nudge lengths by one, within [lo, hi], until they sum to `total`."""
    lengths = lengths.copy()
    while (diff := total - int(lengths.sum())) != 0:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(lengths < hi) if step > 0 else np.flatnonzero(lengths > lo)
        if len(room) == 0:  # all at a bound: add or drop a motif
            lengths = np.append(lengths, lo) if step > 0 else lengths[:-1]
            continue
        pick = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        lengths[pick] += step
    return lengths


def _dedupe_motif(
    rng: np.random.Generator, slots: np.ndarray, starts: np.ndarray, lengths: np.ndarray, m: int
) -> None:
    lo, hi = int(starts[m]), int(starts[m] + lengths[m])
    motif_of = np.repeat(np.arange(len(lengths)), lengths)
    for _ in range(1000):
        values, first = np.unique(slots[lo:hi], return_index=True)
        repeated = np.setdiff1d(np.arange(hi - lo), first)
        if len(repeated) == 0:
            return
        p = lo + int(repeated[0])
        q = int(rng.integers(len(slots)))
        other = motif_of[q]
        o_lo, o_hi = int(starts[other]), int(starts[other] + lengths[other])
        if other != m and slots[q] not in values and slots[p] not in slots[o_lo:o_hi]:
            slots[p], slots[q] = slots[q], slots[p]


def _target_lengths(
    rng: np.random.Generator, num_users: int, total: int, spread: float, min_length: int
) -> np.ndarray:
    """Per-user lengths, uniform around total / num_users, summing to `total` exactly."""
    raw = rng.uniform(1 - spread, 1 + spread, size=num_users)
    floor = min(min_length, total // num_users)
    lengths = np.maximum(np.floor(raw / raw.sum() * total), floor).astype(np.int64)
    diff = total - int(lengths.sum())
    if diff > 0:  # floors lose less than one event per user
        np.add.at(lengths, rng.choice(num_users, size=diff, replace=diff > num_users), 1)
    while (diff := total - int(lengths.sum())) < 0:
        # Trim the longest users first so nobody falls under the floor.
        longest = np.argsort(-lengths, kind="stable")[: min(-diff, num_users)]
        lengths[longest] -= 1
    return lengths
