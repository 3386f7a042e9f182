"""The metric names, in display order: one torch-free source for the metrics, the sweep and the
report (`val/map`, `val/prec@10`, `test/recall@5`, ...)."""
from __future__ import annotations

KS = (1, 5, 10)  # the cut-offs of Precision@k and Recall@k


def metric_names(prefix: str) -> list[str]:
    """All metric names under a prefix (`val` or `test`), in display order."""
    names = ["map"] + [f"prec@{k}" for k in KS] + [f"recall@{k}" for k in KS]
    return [f"{prefix}/{n}" for n in names + ["ndcg@10", "hit@10"]]
