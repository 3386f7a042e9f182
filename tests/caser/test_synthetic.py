"""Synthetic data: deterministic, sized on request, flat popularity, real sequential structure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caser.errors import DataError
from caser.sequences import Sequences, positions_within_user
from caser.synthetic import generate


@pytest.fixture(scope="module")
def default() -> Sequences:
    return generate(seed=0)


def next_item_accuracy(seqs: Sequences, k: int, backs: tuple[int, ...] | None = None) -> float:
    """Hit rate of the most frequent next item after the last k items (k=0: popularity), or
    after the items `backs` steps back (e.g. (2,): the item two steps back alone).

    Counts come from even users and are scored on odd users, so memorising a user cannot help.
    """
    base = seqs.num_items + 1
    users, items = seqs.users(), seqs.items
    at = np.flatnonzero(positions_within_user(seqs.lengths) >= 3)
    context = np.zeros(len(at), dtype=np.int64)
    for back in backs if backs is not None else range(1, k + 1):
        context = context * base + items[at - back]
    frame = pd.DataFrame({"context": context, "next": items[at], "fit": users[at] % 2 == 0})
    fit, score = frame[frame.fit], frame[~frame.fit]
    best = (
        fit.groupby(["context", "next"]).size().reset_index(name="n")
        .sort_values("n", ascending=False, kind="stable").drop_duplicates("context")
    )  # fmt: skip
    guess = score.merge(best, on="context", how="left", suffixes=("", "_guess"))
    return float((guess["next"] == guess["next_guess"]).mean())


def test_same_seed_gives_identical_arrays_and_other_seed_differs(default):
    again, other = generate(seed=0), generate(seed=1)
    assert np.array_equal(default.indptr, again.indptr)
    assert np.array_equal(default.items, again.items)
    assert not np.array_equal(default.items[:1000], other.items[:1000])


def test_default_size_is_about_2000_users_50_events_1000_items(default):
    assert default.num_users == 2000 and default.num_items == 1000
    assert 95_000 <= default.num_events <= 100_000
    assert default.lengths.min() >= 5
    assert default.items.min() >= 1 and default.items.max() <= 1000


@pytest.mark.parametrize("users, items, events", [(6040, 3706, 300_000), (500, 400, 20_000)])
def test_size_option_reaches_the_requested_size(users, items, events):
    seqs = generate(num_users=users, num_items=items, num_interactions=events, seed=3)
    assert seqs.num_users == users and seqs.num_items == items
    assert abs(seqs.num_events - events) <= 0.03 * events


def test_no_item_repeats_within_a_user(default):
    keys = default.users() * (default.num_items + 1) + default.items
    assert len(np.unique(keys)) == default.num_events


def test_popularity_is_roughly_flat(default):
    counts = np.bincount(default.items, minlength=default.num_items + 1)[1:]
    assert (counts > 0).all()
    assert counts.max() < 2.5 * counts.mean()
    # A top-10 popularity list covers a tiny share of events, unlike real logs.
    assert np.sort(counts)[-10:].sum() < 0.02 * counts.sum()


def test_next_item_needs_more_than_the_previous_item(default):
    # Two motifs play in alternation, so the next item continues the motif of the item two
    # steps back: a model that sees only the previous item (L=1) misses most of it.
    popularity = next_item_accuracy(default, 0)
    previous = next_item_accuracy(default, 1)
    two_back = next_item_accuracy(default, 0, backs=(2,))
    assert popularity < 0.01
    assert two_back > 0.15
    assert two_back > 3 * previous
    assert previous > 5 * popularity  # still some signal: motif order leaks a little


def test_too_dense_request_is_a_data_error():
    with pytest.raises(DataError, match="too dense"):
        generate(num_users=10, num_items=100, num_interactions=1000)
