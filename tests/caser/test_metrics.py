"""The vectorised ranking metrics against the plain per-user reference (the original's code)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caser.metrics import ranking_metric_sums
from caser.reference_metrics import per_user_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_the_per_user_reference(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 60
    scores = rng.normal(size=(n_users, n_items + 1)).astype(np.float64)
    seen = [set(rng.choice(np.arange(1, n_items + 1), size=rng.integers(0, 30), replace=False).tolist())
            for _ in range(n_users)]
    targets = [set(rng.choice(np.arange(1, n_items + 1), size=rng.integers(1, 12), replace=False).tolist())
               for _ in range(n_users)]
    masked = torch.tensor(scores)
    relevant = torch.zeros(n_users, n_items + 1, dtype=torch.bool)
    n_relevant = torch.tensor([len(t) for t in targets])
    for u in range(n_users):
        masked[u, list(seen[u]) + [0]] = -torch.inf
        relevant[u, list(targets[u] - seen[u])] = True
    sums = ranking_metric_sums(masked, relevant, n_relevant)
    refs = [per_user_metrics(scores[u], seen[u], targets[u]) for u in range(n_users)]
    for name, value in sums.items():
        expected = sum(r[name] for r in refs)
        assert float(value) == pytest.approx(expected, abs=1e-6), name


def test_hand_computed_ranking():
    # Ranked list: items 3, 1, 2, 4; relevant {1, 4}: hits at positions 2 and 4.
    scores = torch.tensor([[-torch.inf, 3.0, 2.0, 4.0, 1.0]])
    relevant = torch.tensor([[False, True, False, False, True]])
    m = ranking_metric_sums(scores, relevant)
    assert float(m["map"]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert float(m["prec@1"]) == 0.0
    assert float(m["prec@5"]) == pytest.approx(2 / 5)
    assert float(m["recall@5"]) == pytest.approx(1.0)
    assert float(m["ndcg@10"]) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_tied_relevant_items_take_consecutive_positions():
    # Ranked list: item 3 (5.0), then items 1 and 2 tied (2.0), then 4; relevant {1, 2}.
    scores = torch.tensor([[-torch.inf, 2.0, 2.0, 5.0, 1.0]])
    relevant = torch.tensor([[False, True, True, False, False]])
    m = ranking_metric_sums(scores, relevant)
    assert float(m["map"]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert float(m["prec@1"]) == 0.0 and float(m["recall@5"]) == 1.0


def test_a_user_whose_held_out_items_were_all_seen_scores_zero_beside_one_who_hits():
    scores = torch.tensor([[-torch.inf, 1.0, 3.0, -torch.inf], [-torch.inf, 1.0, 3.0, 2.0]])
    relevant = torch.tensor([[False, False, False, False], [False, False, True, False]])
    m = ranking_metric_sums(scores, relevant, torch.tensor([1, 1]))
    assert float(m["map"]) == 1.0 and float(m["prec@1"]) == 1.0 and float(m["hit@10"]) == 1.0
    assert float(m["ndcg@10"]) == 1.0
