"""Full-ranking metrics, vectorised over a batch of users, with the original's definitions.

Every item is ranked; items the user saw in training (and padding) are excluded by giving them
score -inf, which puts them after every real candidate, so the positions of the remaining
items are those of the original's filtered list. With hits h_1..h_n along the ranked list and
|R| distinct relevant (held-out) items:
    Precision@k = (sum_{j<=k} h_j) / k          Recall@k = (sum_{j<=k} h_j) / |R|
    AP          = (1/|R|) sum_j h_j * (sum_{i<=j} h_i) / j      (MAP: mean AP over users)
    NDCG@k      = sum_{j<=k} h_j / log2(j + 1)  /  sum_{j<=min(k,|R|)} 1 / log2(j + 1)
    HitRate@k   = 1 if any h_j = 1 for j <= k
"""
from __future__ import annotations

import numpy as np
import torch

from caser.metric_names import KS


def descending_order(scores: torch.Tensor) -> torch.Tensor:
    """Per-row item order by descending score. On a CPU numpy's introsort (the original's
    argsort) is four to five times faster than torch's sort, so it is used there."""
    if scores.device.type == "cpu":
        return torch.from_numpy(np.argsort(-scores.detach().numpy(), axis=1))
    return torch.argsort(scores, dim=1, descending=True)


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
    n_rel = relevant.sum(1) if n_relevant is None else n_relevant
    n_rel = n_rel.to(scores.dtype)  # (B,)
    order = descending_order(scores)
    hits = relevant.gather(1, order).to(scores.dtype)  # (B, I) in ranked order
    positions = torch.arange(1, hits.size(1) + 1, dtype=scores.dtype, device=scores.device)
    cum = hits.cumsum(1)
    ap = (hits * cum / positions).sum(1) / n_rel
    out = {"map": ap}
    for k in KS:
        hk = cum[:, k - 1] if hits.size(1) >= k else cum[:, -1]
        out[f"prec@{k}"] = hk / k
        out[f"recall@{k}"] = hk / n_rel
    k = min(10, hits.size(1))
    discounts = 1.0 / torch.log2(positions[:k] + 1)
    dcg = (hits[:, :k] * discounts).sum(1)
    ideal_cum = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])
    idcg = ideal_cum[n_rel.clamp(max=k).long()]
    out["ndcg@10"] = dcg / idcg
    out["hit@10"] = (cum[:, k - 1] > 0).to(scores.dtype)
    return out
