"""The popularity baseline: rank every unseen item by how often it was consumed in training.

It is the floor a sequential model must clear; on real logs it is strong (MovieLens 100K:
MAP 0.087), on the embedded synthetic data it is weak by design. Equal counts are frequent in
the tail, and the metrics' pessimistic tie rule (`caser/metrics.py`) places a held-out item
below every other item of its count: a slightly lower floor than an arbitrary order gives
(docs/measurements.md).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from caser.data_module import PreparedData
from caser.evaluation import evaluate


class Popularity(nn.Module):
    """Scores every item by its training count, the same for every user."""

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float32))

    def user_vectors(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.counts.new_zeros(len(users), 0)  # nothing about the user matters

    def score_items(self, vectors: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.counts.expand(len(vectors), -1)  # (B, num_items + 1)
        return scores.clone() if out is None else out.copy_(scores)

    def score_all(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.score_items(self.user_vectors(seqs, users))


def popularity_metrics(data: PreparedData, protocol: str = "test") -> dict[str, float]:
    """Metrics of the popularity ranking under the same protocol and exclusions as Caser."""
    history = data.history(protocol)
    counts = np.bincount(history.items, minlength=history.num_items + 1).astype(np.float32)
    prefix = "val" if protocol == "validation" else "test"
    return evaluate(Popularity(counts), data.eval_set(protocol, L=1), prefix)
