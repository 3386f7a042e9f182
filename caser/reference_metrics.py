"""The original implementation's evaluation, user by user in plain Python: slow on purpose.

It is the yardstick the vectorised metrics (`caser/metrics.py`, `caser/evaluation.py`) are
checked against, by the tests on random scores and by `bench/train_speed.py` on a real model.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from caser.evaluation import EvalSet


def per_user_metrics(scores: np.ndarray, seen: set[int], targets: set[int]) -> dict[str, float]:
    """One user's metrics, loop by loop: drop the padding and seen items, rank, count hits."""
    ranked = [int(i) for i in np.argsort(-scores, kind="stable") if i not in seen and i != 0]
    out = {}
    hits, ap = 0, 0.0
    for pos, item in enumerate(ranked, start=1):
        if item in targets:
            hits += 1
            ap += hits / pos
    out["map"] = ap / len(targets)
    for k in (1, 5, 10):
        h = len(set(ranked[:k]) & targets)
        out[f"prec@{k}"] = h / k
        out[f"recall@{k}"] = h / len(targets)
    dcg = sum(1 / math.log2(p + 2) for p, item in enumerate(ranked[:10]) if item in targets)
    idcg = sum(1 / math.log2(p + 2) for p in range(min(10, len(targets))))
    out["ndcg@10"] = dcg / idcg
    out["hit@10"] = float(bool(set(ranked[:10]) & targets))
    return out


@torch.no_grad()
def reference_evaluate(model, eval_set: EvalSet, prefix: str = "val") -> dict[str, float]:
    """`evaluation.evaluate`'s numbers, computed one user at a time with `per_user_metrics`."""
    was_training = model.training
    model.eval()
    scores = model.score_all(eval_set.inputs, eval_set.users).double().numpy()
    model.train(was_training)
    totals: dict[str, float] = {}
    for u in range(len(eval_set)):
        seen = eval_set.seen_items[eval_set.seen_indptr[u] : eval_set.seen_indptr[u + 1]].tolist()
        targets = eval_set.target_items[eval_set.target_indptr[u] : eval_set.target_indptr[u + 1]].tolist()
        for k, v in per_user_metrics(scores[u], set(seen), set(targets)).items():
            totals[k] = totals.get(k, 0.0) + v
    n = max(len(eval_set), 1)
    return {f"{prefix}/{k}": v / n for k, v in totals.items()}
