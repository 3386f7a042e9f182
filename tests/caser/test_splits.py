"""Splits: ratio and leave-one-out cuts per user, in time order, with exact expected lists."""
from __future__ import annotations

import numpy as np
import pytest

from caser.config import DataConfig
from caser.errors import DataError
from caser.sequences import Sequences
from caser.splits import describe_holdout, horizon_warning, split_sequences


def seqs_of(lists: list[list[int]], user_ids: list | None = None) -> Sequences:
    s = Sequences.from_lists(lists)
    ids = np.array(user_ids if user_ids is not None else range(len(lists)))
    return Sequences(s.indptr, s.items, s.num_items, ids, np.arange(s.num_items + 1))


def test_ratio_split_takes_floor_fractions_in_time_order():
    seqs = seqs_of([list(range(1, 11)), [5, 4, 3, 2, 1], [7, 8, 9]])
    split = split_sequences(seqs, DataConfig(holdout="ratio", train_frac=0.7, val_frac=0.1))
    # n=10: 7 train, 1 val, 2 test; n=5: floor(3.5)=3 train, floor(4.0)=4 -> 1 val, 1 test;
    # n=3: floor(2.1)=2 train, floor(2.4)=2 -> no val, 1 test.
    assert split.train.to_lists() == [[1, 2, 3, 4, 5, 6, 7], [5, 4, 3], [7, 8]]
    assert split.val.to_lists() == [[8], [2], []]
    assert split.test.to_lists() == [[9, 10], [1], [9]]


def test_ratio_split_guards_floating_noise_in_the_floor():
    # In floats (0.7 + 0.1) * 10 is 7.999999999999999 and 0.29 * 100 is 28.999999999999996.
    seqs = seqs_of([list(range(1, 11))])
    split = split_sequences(seqs, DataConfig(holdout="ratio", train_frac=0.7, val_frac=0.1))
    assert [len(p.user(0)) for p in (split.train, split.val, split.test)] == [7, 1, 2]
    seqs = seqs_of([list(range(1, 101))])
    split = split_sequences(seqs, DataConfig(holdout="ratio", train_frac=0.29, val_frac=0.1))
    assert [len(p.user(0)) for p in (split.train, split.val, split.test)] == [29, 10, 61]


def test_ratio_split_without_validation():
    seqs = seqs_of([[1, 2, 3, 4]])
    split = split_sequences(seqs, DataConfig(holdout="ratio", train_frac=0.5, val_frac=0.0))
    assert (split.train.to_lists(), split.val.to_lists(), split.test.to_lists()) == (
        [[1, 2]], [[]], [[3, 4]],
    )  # fmt: skip


def test_loo_split_holds_out_last_for_test_and_previous_for_validation():
    seqs = seqs_of([[4, 3, 2, 1], [1, 2, 3]])
    split = split_sequences(seqs, DataConfig(holdout="loo"))
    assert split.train.to_lists() == [[4, 3], [1]]
    assert split.val.to_lists() == [[2], [2]]
    assert split.test.to_lists() == [[1], [3]]


def test_parts_share_users_items_and_raw_id_maps():
    seqs = seqs_of([[1, 2, 3, 4], [2, 3, 1]], user_ids=[17, 42])
    split = split_sequences(seqs, DataConfig(holdout="loo"))
    for part in (split.train, split.val, split.test):
        assert part.num_users == 2 and part.num_items == 4
        assert part.user_ids.tolist() == [17, 42]
    assert split.train.concat(split.val).concat(split.test).to_lists() == seqs.to_lists()


def test_user_without_training_item_names_raw_user_and_the_fix():
    seqs = seqs_of([[1, 2, 3, 4], [5]], user_ids=[17, 42])
    with pytest.raises(DataError, match=r"user 42: 1 event.*min_user_interactions") as info:
        split_sequences(seqs, DataConfig(holdout="ratio"))
    assert "\n" not in str(info.value)


def test_loo_needs_three_events_per_user():
    seqs = seqs_of([[1, 2, 3], [4, 5]], user_ids=["a", "b"])
    with pytest.raises(DataError, match=r"user b: 2 event.*loo"):
        split_sequences(seqs, DataConfig(holdout="loo"))


def test_forward_chaining_validates_on_a_window_as_long_as_tests_and_tests_as_the_paper_does():
    seqs = Sequences.from_lists([list(range(1, 11)), list(range(1, 6)), list(range(1, 21)), list(range(1, 8))])
    forward = split_sequences(seqs, DataConfig(train_frac=0.6, val_frac=0.2))
    paper = split_sequences(seqs, DataConfig(train_frac=0.7, val_frac=0.1))
    # 10 events: 6 train, 2 validation, 2 test; 5: 3, 1, 1; 20: 12, 4, 4; 7: 4, 1 (5.6), 2.
    assert forward.train.lengths.tolist() == [6, 3, 12, 4]
    assert forward.val.lengths.tolist() == [2, 1, 4, 1]
    assert forward.test.lengths.tolist() == [2, 1, 4, 2]
    # Test trains on the first 80% and scores the rest under both protocols: the same test.
    assert forward.test.to_lists() == paper.test.to_lists()
    assert forward.train.concat(forward.val).to_lists() == paper.train.concat(paper.val).to_lists()


def test_the_protocol_is_named_and_unequal_horizons_are_warned_about():
    forward, paper = DataConfig(train_frac=0.6, val_frac=0.2), DataConfig()
    assert describe_holdout(forward).endswith("(forward chaining at equal horizons)")
    assert describe_holdout(paper).endswith("(the paper's protocol)")
    assert horizon_warning(forward) is None and horizon_warning(DataConfig(holdout="loo")) is None
    assert horizon_warning(paper).startswith("Validation scores the next 10% of each user's events and test the last 20%")
    assert describe_holdout(DataConfig(train_frac=0.8, val_frac=0.2)).endswith("nothing is left for test")
