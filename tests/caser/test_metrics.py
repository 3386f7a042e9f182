"""The rank-count metrics against the plain per-user reference (the original's sort-based code),
and the tie rule: held-out items lose every tie with another candidate."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caser import metrics
from caser.metrics import ranking_metric_sums, ranking_metrics
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


def _random_case(seed: int, n_users: int, n_items: int, held_out: tuple[int, int], max_seen: int):
    """Distinct random scores (no ties), seen sets of 0..max_seen items, held_out[0]..held_out[1]
    held-out items a user, some of them seen; returns the masked batch and the raw parts."""
    rng = np.random.default_rng(seed)
    scores = rng.permutation(n_users * (n_items + 1)).reshape(n_users, n_items + 1).astype(np.float64)
    items = np.arange(1, n_items + 1)
    seen = [set(rng.choice(items, size=rng.integers(0, max_seen + 1), replace=False).tolist())
            for _ in range(n_users)]
    targets = [set(rng.choice(items, size=rng.integers(held_out[0], held_out[1] + 1), replace=False).tolist())
               for _ in range(n_users)]
    masked = torch.tensor(scores)
    relevant = torch.zeros(n_users, n_items + 1, dtype=torch.bool)
    for u in range(n_users):
        masked[u, list(seen[u]) + [0]] = -torch.inf
        relevant[u, list(targets[u] - seen[u])] = True
    n_relevant = torch.tensor([len(t) for t in targets])
    return scores, seen, targets, masked, relevant, n_relevant


@pytest.mark.parametrize("held_out", [(1, 1), (1, 2), (3, 40), (1, 60)])
@pytest.mark.parametrize("max_seen", [0, 25])
@pytest.mark.parametrize("threads", [1, 2])
def test_each_users_metrics_equal_the_sorted_reference(monkeypatch, request, held_out, max_seen, threads):
    """1 held-out item a user, 1-2 (counted by comparison), 3-40 (by sorting the row) and a mix,
    with and without items excluded as seen, with the CPU passes on one thread or split
    between two (however small the batch)."""
    monkeypatch.setattr(metrics, "_PARALLEL_MIN_CELLS", 0)
    monkeypatch.setattr(metrics, "compare_max_targets", lambda num_candidates: 2)
    request.addfinalizer(lambda previous=torch.get_num_threads(): torch.set_num_threads(previous))
    torch.set_num_threads(threads)
    scores, seen, targets, masked, relevant, n_relevant = _random_case(
        sum(held_out) + max_seen, n_users=30, n_items=80, held_out=held_out, max_seen=max_seen)
    per_user = ranking_metrics(masked, relevant, n_relevant)
    for u in range(len(scores)):
        expected = per_user_metrics(scores[u], seen[u], targets[u])
        for name, values in per_user.items():
            assert float(values[u]) == pytest.approx(expected[name], abs=1e-9), (u, name)


def test_the_comparison_path_widens_with_the_catalogue_and_stays_bounded():
    """Comparing costs a pass per held-out item, sorting one pass-like sort per row: the
    larger the row, the more items a comparison may take before a sort is cheaper, never
    fewer than 1 nor more than a sort costs in passes."""
    limits = [metrics.compare_max_targets(n) for n in (2, 100, 1684, 23_001, 50_001, 10**7)]
    assert limits == sorted(limits) and limits[0] == 1 and limits[-1] > limits[2]
    assert limits[-1] <= metrics.SORT_NS_PER_CANDIDATE / metrics.COMPARE_NS_PER_CANDIDATE


@pytest.mark.parametrize("limit", [0, 1, 10**9])
@pytest.mark.parametrize("n_items", [30, 1000])
def test_comparison_and_sorting_count_alike_on_tie_heavy_scores(monkeypatch, limit, n_items):
    """Scores drawn from few values tie everywhere; every user counted by sorting (limit 0), by
    comparison (10**9) or a mix (1) gives the same per-user metrics."""
    rng = np.random.default_rng(7)
    scores = torch.tensor(rng.integers(0, n_items // 8, size=(25, n_items + 1)), dtype=torch.float32)
    scores[:, 0] = -torch.inf
    relevant = torch.rand(25, n_items + 1, generator=torch.Generator().manual_seed(7)) < 0.1
    relevant[:, 0] = False
    relevant[torch.arange(25), torch.randint(1, n_items + 1, (25,))] = True
    expected = ranking_metrics(scores, relevant)
    monkeypatch.setattr(metrics, "compare_max_targets", lambda num_candidates: limit)
    got = ranking_metrics(scores, relevant)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    # The worst order, spelled out: integer scores, held-out items a quarter below their ties.
    worst = (scores - 0.25 * relevant).double().numpy()
    for u in range(25):
        targets = set(torch.nonzero(relevant[u]).flatten().tolist())
        reference = per_user_metrics(worst[u], set(), targets)
        for name in expected:
            assert float(got[name][u]) == pytest.approx(reference[name], abs=1e-9), (u, name)


def test_a_held_out_item_tied_with_another_candidate_is_placed_below_it():
    # Item 2 (not held out) ties with held-out item 1: the order is 3, 2, 1, 4.
    scores = torch.tensor([[-torch.inf, 2.0, 2.0, 5.0, 1.0]])
    relevant = torch.tensor([[False, True, False, False, False]])
    m = ranking_metrics(scores, relevant)
    assert float(m["map"]) == pytest.approx(1 / 3)
    assert float(m["ndcg@10"]) == pytest.approx(1 / math.log2(4))
    assert float(m["prec@1"]) == 0.0 and float(m["hit@10"]) == 1.0


def test_tied_held_out_items_sit_together_below_the_tied_others():
    # Scores: item 3 5.0; items 1, 2 (held out) and 4 all 2.0; item 5 1.0. Worst order:
    # 3, 4, then 1 and 2 at places 3 and 4, then 5.
    scores = torch.tensor([[-torch.inf, 2.0, 2.0, 5.0, 2.0, 1.0]])
    relevant = torch.tensor([[False, True, True, False, False, False]])
    m = ranking_metrics(scores, relevant)
    assert float(m["map"]) == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert float(m["recall@5"]) == 1.0 and float(m["prec@1"]) == 0.0


def test_a_model_that_scores_every_item_alike_gets_the_worst_ranking():
    n_items, held = 50, [7, 20, 33]
    scores = torch.zeros(1, n_items + 1)
    scores[0, 0] = -torch.inf
    relevant = torch.zeros(1, n_items + 1, dtype=torch.bool)
    relevant[0, held] = True
    m = ranking_metrics(scores, relevant)
    # The 3 held-out items take the last 3 of the 50 places.
    expected_ap = sum(j / (n_items - 3 + j) for j in (1, 2, 3)) / 3
    assert float(m["map"]) == pytest.approx(expected_ap)
    assert float(m["hit@10"]) == 0.0 and float(m["ndcg@10"]) == 0.0
