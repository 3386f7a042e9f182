"""Users too short for the split: the error names the filter in both spellings and what it drops,
and the filter it names is exactly the one that makes the split work."""
from __future__ import annotations

import re

import pytest

from caser.config import DataConfig
from caser.datasets import load_sequences, load_split
from caser.errors import DataError
from caser.splits import min_user_events


@pytest.mark.parametrize("cfg, need", [
    (DataConfig(holdout="ratio", train_frac=0.7), 2),    # 1 * 0.7 -> 0 train, 2 * 0.7 -> 1
    (DataConfig(holdout="ratio", train_frac=0.25), 4),   # 3 * 0.25 -> 0, 4 * 0.25 -> 1
    (DataConfig(holdout="ratio", train_frac=1.0, val_frac=0.0), 1),
    (DataConfig(holdout="loo"), 3),                      # train, validation, test
])  # fmt: skip
def test_the_fewest_events_is_the_smallest_length_with_a_training_item(cfg, need):
    assert min_user_events(cfg) == need


def write_pairs(tmp_path, lines: list[str]):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_error_names_both_spellings_and_what_the_filter_drops(tmp_path):
    # User b has one event; dropping b leaves item z with one event (below the item minimum
    # of 2), so a loses z too: the filter drops 1 user and 2 events.
    path = write_pairs(tmp_path, ["a x", "a y", "a z", "b z", "c x", "c y"])
    cfg = DataConfig(spec=str(path), format="pairs", min_item_interactions=2)
    with pytest.raises(DataError) as info:
        load_split(cfg)
    message = str(info.value)
    assert message.startswith("user b: 1 event(s) leave no training item under holdout 'ratio'")
    assert "1 user(s) are that short" in message
    assert "--min-user-interactions 2 (python -m caser.train)" in message
    assert "data.min_user_interactions = 2 (study file)" in message
    assert message.endswith("that drops 1 user(s) and 2 event(s)") and "\n" not in message


def test_the_filter_the_error_names_makes_the_split_work_and_drops_what_it_said(tmp_path):
    lines = [f"u{u} i{i}" for u in range(6) for i in range(u % 4 + 1)]  # lengths 1, 2, 3, 4, 1, 2
    path = write_pairs(tmp_path, lines)
    cfg = DataConfig(spec=str(path), format="pairs", holdout="loo")
    with pytest.raises(DataError, match=r"user u0: 1 event\(s\).*'loo'") as info:
        load_split(cfg)
    found = re.search(r"--min-user-interactions (\d+) .*that drops (\d+) user\(s\) and (\d+) event",
                      str(info.value))
    need, users, events = (int(g) for g in found.groups())
    assert (need, users, events) == (3, 4, 6)  # users of 1, 2, 1, 2 events
    before = load_sequences(DataConfig(spec=str(path), format="pairs"))
    split = load_split(DataConfig(spec=str(path), format="pairs", holdout="loo", min_user_interactions=need))
    assert before.num_users - split.train.num_users == users
    kept = split.train.num_events + split.val.num_events + split.test.num_events
    assert before.num_events - kept == events


@pytest.mark.parametrize("holdout, lengths, rule", [
    ("loo", [2, 2, 1], "holdout 'loo' (needs 3 events: train, validation, test)"),
    ("ratio", [1, 1], "holdout 'ratio' with train_frac=0.7"),
])
def test_data_too_short_for_the_holdout_says_so_instead_of_a_filter_that_drops_everyone(
    tmp_path, holdout, lengths, rule
):
    """Issue 24 defect 23: every user with 2 events under loo: the advice was
    "--min-user-interactions 3 ... drops 3 user(s)", all of them; following it: "no user left"."""
    path = write_pairs(tmp_path, [f"u{u} i{i}" for u, n in enumerate(lengths) for i in range(n)])
    with pytest.raises(DataError) as info:
        load_split(DataConfig(spec=str(path), format="pairs", holdout=holdout))
    need = 3 if holdout == "loo" else 2
    assert str(info.value) == (
        f"the data is too short for {rule}: a user needs {need} events to keep a training item and "
        f"the longest has {max(lengths)}, so --min-user-interactions {need} (a study file's "
        "data.min_user_interactions) would drop every user")


def test_a_filter_that_leaves_nobody_once_rare_items_go_too_says_so(tmp_path):
    # a is long enough for loo; dropping b and c leaves x, y, z with one event each, which the
    # item minimum of 2 drops, and a with them.
    path = write_pairs(tmp_path, ["a x", "a y", "a z", "b x", "b y", "c z"])
    with pytest.raises(DataError) as info:
        load_split(DataConfig(spec=str(path), format="pairs", holdout="loo", min_item_interactions=2))
    assert str(info.value) == (
        "the data is too small for holdout 'loo' (needs 3 events: train, validation, test) with "
        "min_item_interactions=2: --min-user-interactions 3 (data.min_user_interactions), which a "
        "user needs to keep a training item, leaves no user once the items it makes rare are "
        "dropped too")
