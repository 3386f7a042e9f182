"""Per-user paired statistics: Holm's correction on known p-values, the Wilcoxon test against
scipy on hand-made per-user values, the rank-biserial effect by hand, users matched by id and
averaged over seeds, and a seeded bootstrap that gives the same interval every time."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from search.report.paired import compare_users, holm, matched, mean_per_user, rank_biserial


def test_holm_on_known_p_values():
    # Holm (1979) / Wikipedia's example: at alpha 0.05 the 1st and 4th hypotheses are rejected.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])  # one test: nothing to correct
    adjusted = holm([0.01, math.nan, 0.02])  # nan is neither counted nor adjusted
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.02)


def test_wilcoxon_equals_scipy_on_hand_made_per_user_values():
    default = {1: 0.10, 2: 0.20, 3: 0.05, 4: 0.30, 5: 0.00, 6: 0.12, 7: 0.40, 8: 0.22, 9: 0.08}
    better = {1: 0.15, 2: 0.26, 3: 0.05, 4: 0.33, 5: 0.10, 6: 0.11, 7: 0.47, 8: 0.30, 9: 0.12,
              10: 0.9}  # user 10 was not evaluated under the default: it has no pair
    a, b = matched(better, default)
    assert len(a) == 9
    c = compare_users(a, b, bootstrap=0)
    d = a - b
    assert c.users == 9 and c.ties == 1  # user 3
    assert c.wilcoxon_p == pytest.approx(sps.wilcoxon(d).pvalue)
    assert c.diff == pytest.approx(d.mean())
    half = sps.t.ppf(0.975, 8) * d.std(ddof=1) / 3
    assert (c.diff_lo, c.diff_hi) == pytest.approx((d.mean() - half, d.mean() + half))


def test_rank_biserial_by_hand():
    # |d| ranks 1, 2, 3, 4; W+ = 1 + 2 + 4, W- = 3: (7 - 3) / 10.
    assert rank_biserial(np.array([0.1, 0.2, -0.3, 0.4, 0.0])) == pytest.approx(0.4)
    assert rank_biserial(np.array([0.1, 0.2])) == 1.0
    assert math.isnan(rank_biserial(np.zeros(3)))


def test_identical_users_give_p_one_and_no_effect():
    x = np.array([0.1, 0.2, 0.3])
    c = compare_users(x, x)
    assert c.wilcoxon_p == 1.0 and c.ties == 3 and c.diff == 0.0 and math.isnan(c.rank_biserial)


def test_per_user_ap_is_averaged_over_seeds_by_user_id():
    runs = [([3, 1, 2], [0.3, 0.1, 0.2]), ([1, 2, 3], [0.3, 0.0, 0.1])]  # another order
    assert mean_per_user(runs) == pytest.approx({1: 0.2, 2: 0.1, 3: 0.2})


def test_bootstrap_interval_is_deterministic_with_its_seed():
    rng = np.random.default_rng(1)
    b = rng.random(300)
    a = b + rng.normal(0.02, 0.05, 300)
    first = compare_users(a, b, bootstrap=200, seed=3)
    assert compare_users(a, b, bootstrap=200, seed=3) == first
    assert first.rb_lo < first.rank_biserial < first.rb_hi
    assert compare_users(a, b, bootstrap=200, seed=4).rb_lo != first.rb_lo
