"""Windowing, padding and negative sampling, against hand-made sequences."""
from __future__ import annotations

import numpy as np
import pytest

from caser.sequences import Sequences
from caser.windows import SeenItems, build_windows, last_inputs, sample_negatives


def test_windows_match_the_originals_documented_example():
    # The original's docstring example: items 1..9, L=5, T=3 (window 8, step 1).
    seqs = Sequences.from_lists([list(range(1, 10))], num_items=9)
    w = build_windows(seqs, L=5, T=3)
    assert w.inputs.tolist() == [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]
    assert w.targets.tolist() == [[6, 7, 8], [7, 8, 9]]
    assert w.users.tolist() == [0, 0]
    assert last_inputs(seqs, 5).tolist() == [[5, 6, 7, 8, 9]]


def test_short_sequences_give_one_window_left_padded_with_zero():
    seqs = Sequences.from_lists([[4, 5, 6], [7]], num_items=9)
    w = build_windows(seqs, L=3, T=2)
    assert w.users.tolist() == [0, 1]
    assert w.inputs.tolist() == [[0, 0, 4], [0, 0, 0]]
    assert w.targets.tolist() == [[5, 6], [0, 7]]
    assert last_inputs(seqs, 3).tolist() == [[4, 5, 6], [0, 0, 7]]


def test_windows_of_many_users_stay_with_their_user():
    seqs = Sequences.from_lists([[1, 2, 3, 4], [], [5, 6, 7, 8, 9]], num_items=9)
    w = build_windows(seqs, L=2, T=1)
    assert w.users.tolist() == [0, 0, 2, 2, 2]
    assert w.inputs.tolist() == [[1, 2], [2, 3], [5, 6], [6, 7], [7, 8]]
    assert w.targets.tolist() == [[3], [4], [7], [8], [9]]


@pytest.mark.parametrize("dense", [True, False], ids=["table", "binary-search"])
def test_negatives_never_hit_training_items(dense, monkeypatch):
    monkeypatch.setattr(SeenItems, "TABLE_MAX_CELLS", 10**9 if dense else 0)
    rng = np.random.default_rng(0)
    num_items = 50
    lists = [sorted(rng.choice(np.arange(1, num_items + 1), size=k, replace=False).tolist())
             for k in rng.integers(1, 45, size=40)]
    seqs = Sequences.from_lists(lists, num_items=num_items)
    users = np.repeat(np.arange(len(lists)), 30)
    seen = SeenItems(seqs)
    assert (seen.table is not None) == dense
    negatives = sample_negatives(seen, users, 5, np.random.default_rng(1))
    assert negatives.shape == (len(users), 5)
    for u, row in zip(users, negatives):
        assert not set(row.tolist()) & set(lists[u])
        assert all(1 <= i <= num_items for i in row)


@pytest.mark.parametrize("dense", [True, False], ids=["table", "binary-search"])
def test_membership_is_exact_for_every_user_item_cell(dense, monkeypatch):
    monkeypatch.setattr(SeenItems, "TABLE_MAX_CELLS", 10**9 if dense else 0)
    rng = np.random.default_rng(2)
    num_items = 21  # 22 cells a user: users straddle the table's bytes
    lists = [rng.choice(np.arange(1, num_items + 1), size=k, replace=False).tolist()
             for k in rng.integers(0, 15, size=9)]
    seen = SeenItems(Sequences.from_lists(lists, num_items=num_items))
    users, items = np.divmod(np.arange(len(lists) * (num_items + 1)), num_items + 1)
    truth = [i in lists[u] for u, i in zip(users, items)]
    assert seen.contains(users, items).tolist() == truth


def test_a_sparse_catalogue_gets_no_users_x_items_table_and_answers_alike():
    # 300 users x 100,000 items, 3 events each: a table would be 10,000 bits a seen pair.
    rng = np.random.default_rng(3)
    lists = [rng.choice(np.arange(1, 100_001), size=3, replace=False).tolist() for _ in range(300)]
    seen = SeenItems(Sequences.from_lists(lists, num_items=100_000))
    assert seen.table is None
    users = np.repeat(np.arange(300), 4)
    items = np.array([i for row in lists for i in [*row, 7]])
    assert seen.contains(users, items).tolist() == [i in lists[u] for u, i in zip(users, items)]


def test_negatives_are_uniform_over_unseen_items():
    seqs = Sequences.from_lists([[1, 2, 3, 4, 5, 6]], num_items=10)
    draws = sample_negatives(SeenItems(seqs), np.zeros(20000, dtype=np.int64), 1, np.random.default_rng(0))
    counts = np.bincount(draws.ravel(), minlength=11)
    assert counts[:7].sum() == 0
    assert np.allclose(counts[7:] / 20000, 0.25, atol=0.02)


def test_a_user_who_saw_nearly_everything_still_gets_only_unseen_negatives():
    # 1 unseen item of 2,000: rejection alone would leave most cells seen after its rounds.
    seqs = Sequences.from_lists([list(range(1, 2000)), [1]], num_items=2000)
    draws = sample_negatives(SeenItems(seqs), np.array([0] * 50 + [1] * 50), 3, np.random.default_rng(0),
                             max_rounds=2)
    assert (draws[:50] == 2000).all()
    assert not (draws[50:] == 1).any()
