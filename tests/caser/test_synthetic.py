"""Synthetic data: deterministic, sized on request, flat popularity, real sequential structure;
the default data byte for byte as before, and shapes past the dense bound drawn sparsely alike."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from caser.errors import DataError
from caser.sequences import Sequences, positions_within_user
from caser.synthetic import DENSE_MAX_CELLS, _distinct_draws, generate


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


def test_the_default_data_is_byte_for_byte_what_it_has_always_been(default):
    # The digest of generate(seed=0) before the sparse draw existed: studies and their tests
    # depend on these exact sequences.
    digest = hashlib.sha256(default.indptr.tobytes() + default.items.tobytes()).hexdigest()
    assert digest == "33bc9be1ec3c698a7b7ac0404006ced23cc82f59792544b59657c798d681bc34"


@pytest.fixture(scope="module")
def sparse() -> Sequences:
    """A shape past the dense bound (20,000 users x 250 motifs), about 6 events a user."""
    assert 20_000 * 250 > DENSE_MAX_CELLS
    return generate(num_users=20_000, num_items=500, num_interactions=120_000, seed=4)


def test_past_the_dense_bound_the_data_keeps_its_size_and_rules(sparse):
    assert sparse.num_users == 20_000 and sparse.num_items == 500
    assert abs(sparse.num_events - 120_000) <= 0.03 * 120_000
    assert sparse.lengths.min() >= 5
    keys = sparse.users() * (sparse.num_items + 1) + sparse.items
    assert len(np.unique(keys)) == sparse.num_events  # no repeats within a user
    counts = np.bincount(sparse.items, minlength=501)[1:]
    assert (counts > 0).all() and counts.max() < 2.5 * counts.mean()
    again = generate(num_users=20_000, num_items=500, num_interactions=120_000, seed=4)
    assert np.array_equal(again.items, sparse.items) and np.array_equal(again.indptr, sparse.indptr)


def test_past_the_dense_bound_the_next_item_still_follows_two_steps_back(sparse):
    two_back = next_item_accuracy(sparse, 0, backs=(2,))
    assert two_back > 0.15 and two_back > 3 * next_item_accuracy(sparse, 1)


def test_distinct_draws_are_distinct_and_uniform_in_every_position():
    rng = np.random.default_rng(0)
    counts = np.array([3] * 40_000 + [7, 8, 10, 0])  # 7 of 10 and all 10: the dense rows
    rows, values = _distinct_draws(rng, counts, 10)
    assert np.array_equal(rows, np.repeat(np.arange(len(counts)), counts))
    assert values.min() >= 0 and values.max() <= 9
    assert len(np.unique(rows * 10 + values)) == len(rows)
    assert sorted(values[rows == 40_002]) == list(range(10))
    # Each of the three positions of the 3-draw rows is uniform over 0..9 (4,000 expected
    # each; 5 standard deviations is about 300).
    first3 = values[: 3 * 40_000].reshape(-1, 3)
    for position in range(3):
        assert np.abs(np.bincount(first3[:, position], minlength=10) - 4_000).max() < 300
    # And each of the 90 ordered pairs of the first two positions (about 444 each, sd 21).
    pairs = np.bincount(first3[:, 0] * 10 + first3[:, 1], minlength=100)
    assert (pairs[np.arange(0, 100, 11)] == 0).all()
    assert np.abs(np.delete(pairs, np.arange(0, 100, 11)) - 40_000 / 90).max() < 110


def test_a_negative_seed_is_a_data_error_not_numpys_message():
    """A study's `data.seed = -1` reached numpy: a traceback ending "expected non-negative integer"."""
    with pytest.raises(DataError, match=r"^synthetic: the data seed must be from 0 up, got -1$"):
        generate(num_users=20, num_items=50, num_interactions=200, seed=-1)
