"""Full-ranking metrics from the ranks of the held-out items alone, vectorised over a batch of users.

Every metric here depends only on where the held-out items land in the ranked list of candidate
items (every item but padding and those the user saw in training), so the catalogue is never
sorted: for each held-out item we count the candidates scoring at or above it. With the
held-out items' positions c_1 < ... < c_n in the ranked list and |R| distinct held-out items
(|R| >= n: the original counts held-out items the user also saw in training, which can never
be hit):
    AP          = (1/|R|) sum_j j / c_j                   (MAP: mean AP over users)
    Precision@k = #{j: c_j <= k} / k                      Recall@k = #{j: c_j <= k} / |R|
    NDCG@k      = sum_{c_j <= k} 1 / log2(c_j + 1)  /  sum_{j <= min(k, |R|)} 1 / log2(j + 1)
    HitRate@k   = 1 if some c_j <= k
which are the original's definitions over its sorted list (hits h_1.. along the list:
AP = (1/|R|) sum_j h_j (sum_{i<=j} h_i) / j); `caser/reference_metrics.py` is that list.

Tie rule (pessimistic): a candidate that is not held out and scores exactly as much as a
held-out item is ranked above it; held-out items tied with one another take consecutive
places (which one comes first changes no metric). So the metrics are those of the worst order
the scores allow: a model gains nothing from a tie, and one that scores every item alike gets
the floor, not whatever order a sort happened to leave. Without ties this is the only order.
The popularity baseline (integer counts, many ties) is the one place where it shows.

How a position is counted: r = #{candidates scoring >= the item} (itself and tied held-out
items included), then c_j = j + min_{i >= j}(r_i - i) over the user's r sorted ascending,
which moves tied held-out items to consecutive places ending at their shared r. Excluded
items and padding must score -inf (never >= a held-out item's finite score). The count takes
one of two exact paths per user (`COMPARE_MAX_TARGETS`): a comparison pass over the row per
held-out item, or, for users with more held-out items, one sort of the row's values and a
binary search per item.
"""
from __future__ import annotations

import numpy as np
import torch

from caser.metric_names import KS

# Users with at most this many held-out items are counted by one comparison pass over their
# row per item; users with more by sorting the row once (about the cost of two passes, see
# docs/measurements.md). Both give the same counts.
COMPARE_MAX_TARGETS = 2


def ranking_metric_sums(
    scores: torch.Tensor, relevant: torch.Tensor, n_relevant: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Per-metric SUMS over the users of a batch (divide by the user count for means)."""
    return {k: v.sum() for k, v in ranking_metrics(scores, relevant, n_relevant).items()}


def ranking_metrics(
    scores: torch.Tensor, relevant: torch.Tensor, n_relevant: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Per-metric values of each user of a batch, (B,) each: users are the unit of the paired
    tests that compare two configurations.

    scores: (B, I) with excluded items already at -inf; relevant: (B, I) bool of held-out items
    that can be hit (false for excluded items). n_relevant: (B,) |R|, the distinct held-out
    items; the original counts held-out items the user also saw in training (they can never
    be hit), so it may exceed relevant.sum(1). Every user must have |R| >= 1.
    """
    relevant = relevant & torch.isfinite(scores)
    rows, items = relevant.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=scores.size(0)).cpu().numpy()
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n_rel = relevant.sum(1) if n_relevant is None else n_relevant
    return target_metrics(scores, indptr, items, n_rel)


def target_metrics(
    scores: torch.Tensor, indptr: np.ndarray, items: torch.Tensor, n_relevant: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-user metrics (B,) each, float64, from the scores and each user's held-out items.

    scores: (B, I) with excluded items and padding at -inf. indptr (B + 1,), a numpy CSR over
    the rows of `scores`, and items: the held-out items that can be hit (not excluded), distinct
    within a user. n_relevant: (B,) |R| >= 1. The layout lives on the host so that no step
    waits on the device.
    """
    device = scores.device
    positions, width = _padded_layout(indptr)
    rows_t = torch.from_numpy(positions[0]).to(device)
    cols_t = torch.from_numpy(positions[1]).to(device)
    items = items.to(device)
    # (B, width) held-out scores, +inf where a user has fewer: nothing scores >= +inf.
    held = scores.new_full((scores.size(0), width), torch.inf)
    held[rows_t, cols_t] = scores[rows_t, items]
    at_or_above = count_at_or_above(scores, held, np.diff(indptr))  # (B, width), 0 in padding
    return _from_counts(at_or_above, torch.from_numpy(np.diff(indptr)).to(device),
                        n_relevant.to(device), scores.size(1))


def count_at_or_above(scores: torch.Tensor, held: torch.Tensor, n_held: np.ndarray) -> torch.Tensor:
    """(B, W) int64: how many entries of each row of `scores` (B, I) are >= each of `held`
    (B, W). n_held: (B,) host array, how many of a row's W entries are real (the first ones);
    it picks each row's path (module docstring)."""
    few = n_held <= COMPARE_MAX_TARGETS
    if few.all():
        return _by_comparison(scores, held, int(n_held.max(initial=0)))
    if not few.any():
        return _by_sorting(scores, held)
    out = torch.zeros(held.shape, dtype=torch.int64, device=scores.device)
    for mask in (few, ~few):
        rows = torch.from_numpy(np.flatnonzero(mask)).to(scores.device)
        part_scores, part_held = scores.index_select(0, rows), held.index_select(0, rows)
        if mask is few:
            part = _by_comparison(part_scores, part_held, int(n_held[mask].max()))
        else:
            part = _by_sorting(part_scores, part_held)
        out.index_copy_(0, rows, part)
    return out


def _by_comparison(scores: torch.Tensor, held: torch.Tensor, width: int) -> torch.Tensor:
    """Columns past `width` are padding everywhere and stay 0."""
    out = torch.zeros(held.shape, dtype=torch.int64, device=scores.device)
    for j in range(width):
        out[:, j] = (scores >= held[:, j : j + 1]).sum(1)
    return out


def _by_sorting(scores: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    if scores.device.type == "cpu":  # numpy's vectorised sort of values is far faster than torch's
        ascending = torch.from_numpy(np.sort(scores.detach().numpy(), axis=1))
    else:
        ascending = torch.sort(scores, dim=1).values
    # The first index whose value is >= the held-out score: everything from there on counts.
    return scores.size(1) - torch.searchsorted(ascending, held.contiguous(), side="left")


def _padded_layout(indptr: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """(row, column) of each CSR entry in a (B, width) padded layout, and the width (>= 1)."""
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    cols = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], counts)
    return (rows, cols), max(int(counts.max(initial=0)), 1)


def _from_counts(at_or_above: torch.Tensor, n_held: torch.Tensor, n_relevant: torch.Tensor,
                 num_candidates: int) -> dict[str, torch.Tensor]:
    """The metrics of each row from its counts r (B, W), the first n_held of a row real."""
    width = at_or_above.size(1)
    j = torch.arange(1, width + 1, device=at_or_above.device)  # (W,) 1-based hit number
    real = j[None, :] <= n_held[:, None]  # (B, W)
    # Padding sorts last and, being far beyond any real count, never lowers a real minimum.
    far = num_candidates + width + 1
    r = torch.where(real, at_or_above, far).sort(dim=1).values
    # c_j = j + min_{i >= j}(r_i - i): tied held-out items take consecutive places.
    suffix_min = (r - j).flip(1).cummin(1).values.flip(1)
    c = (suffix_min + j).to(torch.float64)
    realf = real.to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    out = {"map": (realf * j / c).sum(1) / n_rel}
    for k in KS:
        hits = (realf * (c <= k)).sum(1)
        out[f"prec@{k}"] = hits / k
        out[f"recall@{k}"] = hits / n_rel
    in_top = realf * (c <= 10)
    out["ndcg@10"] = (in_top / torch.log2(c + 1)).sum(1) / _ideal_dcg(n_relevant, 10)
    out["hit@10"] = (in_top.sum(1) > 0).to(torch.float64)
    return out


def _ideal_dcg(n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=n_relevant.device))
    ideal = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])
    return ideal[n_relevant.clamp(max=k).long()]
