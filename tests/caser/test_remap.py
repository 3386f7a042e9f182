"""Id remapping and event order: the fast paths give exactly what the plain numpy/pandas calls give."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caser.remap import dense_ids, user_time_order


@pytest.mark.parametrize("high", [5, 3000, 2**22, 2**40])  # table path for the small, factorize above
def test_dense_ids_are_codes_sorted_by_raw_id(high):
    raw = np.random.default_rng(high).integers(0, high, size=20_000)
    codes, uniques = dense_ids(raw)
    expected_codes, expected_uniques = pd.factorize(raw, sort=True)
    assert np.array_equal(codes, expected_codes) and np.array_equal(uniques, expected_uniques)
    assert codes.dtype == np.int64 and uniques.dtype == raw.dtype


def test_dense_ids_of_negative_or_text_ids_keep_their_sorted_order():
    for raw in (np.array([5, -3, 5, 0]), np.array(["b", "a", "b", "c"], dtype=object)):
        codes, uniques = dense_ids(raw)
        assert uniques.tolist() == sorted(set(raw.tolist()))
        assert [uniques[c] for c in codes] == raw.tolist()


@pytest.mark.parametrize("grouped", [True, False])
def test_user_time_order_is_the_stable_order_by_user_then_time(grouped):
    rng = np.random.default_rng(7)
    users = rng.integers(0, 50, size=5000)
    if grouped:  # a file grouped by user in id order takes numpy's stable sort
        users = np.sort(users)
    times = rng.integers(0, 40, size=5000)  # many ties, which must keep their file order
    expected = np.lexsort((times, users))  # lexsort is stable
    assert np.array_equal(user_time_order(users, times), expected)
