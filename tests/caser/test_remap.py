"""Id remapping and event order: the fast paths give exactly what the plain numpy/pandas calls give."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caser.remap import dense_tokens, integer_tokens, user_time_order


@pytest.mark.parametrize("high", [5, 3000, 2**22, 2**40, 10**18 - 1])
def test_canonical_integer_tokens_group_and_sort_as_their_numbers(high):
    raw = np.random.default_rng(high % 2**32).integers(0, high, size=20_000)
    codes, uniques = dense_tokens(raw.astype(str).astype(object))
    expected_codes, expected_uniques = pd.factorize(raw, sort=True)
    assert np.array_equal(codes, expected_codes) and np.array_equal(uniques, expected_uniques)
    assert codes.dtype == np.int64 and uniques.dtype == np.int64


@pytest.mark.parametrize("tokens", [["5", "-3", "5", "0"], ["b", "a", "b", "c"], ["07", "7", "10"],
                                    ["5.0", "5", "1e1"], ["1" * 19, "2"], ["٧", "7"]])
def test_other_tokens_keep_their_spelling_and_sort_by_text(tokens):
    codes, uniques = dense_tokens(np.array(tokens, dtype=object))
    assert uniques.tolist() == sorted(set(tokens))
    assert [uniques[c] for c in codes] == tokens


def test_surrounding_whitespace_is_not_part_of_a_token():
    codes, uniques = dense_tokens(np.array([" 7", "7", "8 ", "8"], dtype=object))
    assert codes.tolist() == [0, 0, 1, 1] and uniques.tolist() == [7, 8]


def test_integer_tokens_accepts_only_canonical_non_negative_integers():
    assert integer_tokens(np.array(["0", "10", "9" * 18], dtype=object)).tolist() == [0, 10, int("9" * 18)]
    for bad in ("07", "00", "+7", "-7", "7.0", "", "1" * 19, "7\x00", "٧"):
        assert integer_tokens(np.array(["1", bad], dtype=object)) is None, bad


@pytest.mark.parametrize("grouped", [True, False])
def test_user_time_order_is_the_stable_order_by_user_then_time(grouped):
    rng = np.random.default_rng(7)
    users = rng.integers(0, 50, size=5000)
    if grouped:  # a file grouped by user in id order takes numpy's stable sort
        users = np.sort(users)
    times = rng.integers(0, 40, size=5000)  # many ties, which must keep their file order
    expected = np.lexsort((times, users))  # lexsort is stable
    assert np.array_equal(user_time_order(users, times), expected)
