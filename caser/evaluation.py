"""Full-ranking evaluation in user batches: the batch size bounds memory, not the results.

An `EvalSet` holds, for every user with a held-out item, the L items that precede the
held-out part, the items to exclude (seen in training) and the held-out items, as compact CSR
arrays so that a batch of consecutive users is a slice: nothing here is users x items.

A model evaluated here gives `user_vectors(seqs, users)` and `score_items(vectors)`, every
item's score for each vector. A range of users (`caser.eval_batch.EVAL_RANGE_USERS`) gets its
vectors in one pass; then a batch of them scores every item, (B, num_items + 1), and counts
where the held-out items rank (`caser.metrics`), so memory is a few times B x items;
`caser.eval_batch.eval_batch_users` picks B from `EVAL_BATCH_CELLS`, the bound the memory
estimate uses too.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from caser.eval_batch import EVAL_RANGE_USERS, eval_batch_users
from caser.metrics import held_out_counts, metrics_from_counts
from caser.sequences import Sequences
from caser.windows import SeenItems, last_inputs


@dataclass(frozen=True)
class EvalSet:
    users: torch.Tensor  # (E,) users with at least one held-out item
    inputs: torch.Tensor  # (E, L)
    seen_indptr: np.ndarray  # (E + 1,) into seen_items
    seen_items: torch.Tensor
    target_indptr: np.ndarray  # (E + 1,) into target_items (distinct held-out items)
    target_items: torch.Tensor
    num_items: int

    def __len__(self) -> int:
        return len(self.users)

    @cached_property
    def target_unseen(self) -> np.ndarray:
        """(len(target_items),) bool: the held-out item was not seen in training, so it can be
        hit (a seen one is excluded from the ranking yet counts in |R|, as in the original)."""
        stride = self.num_items + 1
        seen_keys = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.seen_indptr))
        seen_keys = seen_keys * stride + self.seen_items.numpy()
        target_keys = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.target_indptr))
        target_keys = target_keys * stride + self.target_items.numpy()
        return ~np.isin(target_keys, seen_keys)


def _select(indptr: np.ndarray, items: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows `users` of a CSR, as a new compact CSR."""
    counts = indptr[users + 1] - indptr[users]
    new_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    offsets = np.repeat(indptr[users] - new_indptr[:-1], counts) + np.arange(new_indptr[-1])
    return new_indptr, items[offsets]


def build_eval_set(history: Sequences, held_out: Sequences, L: int) -> EvalSet:
    """Score held_out given history: inputs are history's last L items, history is excluded."""
    t_indptr, t_items = SeenItems(held_out).as_csr()
    users = np.nonzero(np.diff(t_indptr) > 0)[0]
    s_indptr, s_items = SeenItems(history).as_csr()
    seen_indptr, seen_items = _select(s_indptr, s_items, users)
    target_indptr, target_items = _select(t_indptr, t_items, users)
    return EvalSet(
        users=torch.from_numpy(users),
        inputs=torch.from_numpy(last_inputs(history, L)[users]),
        seen_indptr=seen_indptr,
        seen_items=torch.from_numpy(seen_items),
        target_indptr=target_indptr,
        target_items=torch.from_numpy(target_items),
        num_items=history.num_items,
    )


def _rows(indptr: np.ndarray, start: int, stop: int) -> torch.Tensor:
    counts = np.diff(indptr[start : stop + 1])
    return torch.from_numpy(np.repeat(np.arange(stop - start), counts))


@torch.no_grad()
def batch_metrics(model, eval_set: EvalSet, start: int, stop: int,
                  batch_users: int | None = None) -> dict[str, torch.Tensor]:
    """Per-user metrics of eval users [start, stop), (stop - start,) each: the users' vectors
    in one pass (`model.user_vectors`), then every item scored (`model.score_items`), seen
    items and padding excluded and the held-out items counted, batch_users users at a time
    (default `eval_batch_users(num_items)`, which bounds memory and changes no number)."""
    device = next(iter([*model.parameters(), *model.buffers()])).device
    vectors = model.user_vectors(eval_set.inputs[start:stop].to(device), eval_set.users[start:stop].to(device))
    t0, t1 = eval_set.target_indptr[start], eval_set.target_indptr[stop]
    unseen = eval_set.target_unseen[t0:t1]  # a held-out item seen in training can never be hit
    n_targets = np.diff(eval_set.target_indptr[start : stop + 1])
    rows = np.repeat(np.arange(stop - start), n_targets)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[unseen], minlength=stop - start))]).astype(np.int64)
    items = eval_set.target_items[t0:t1][torch.from_numpy(unseen)]
    step = batch_users or eval_batch_users(eval_set.num_items)
    counts = []
    buffer = vectors.new_empty(min(step, stop - start), eval_set.num_items + 1)
    for a in range(0, stop - start, step):
        b = min(a + step, stop - start)
        scores = model.score_items(vectors[a:b], out=buffer[: b - a])  # (b - a, I + 1)
        s0, s1 = eval_set.seen_indptr[start + a], eval_set.seen_indptr[start + b]
        scores[_rows(eval_set.seen_indptr, start + a, start + b).to(device),
               eval_set.seen_items[s0:s1].to(device)] = -torch.inf
        scores[:, 0] = -torch.inf  # padding is not an item
        counts.append(held_out_counts(scores, indptr[a : b + 1] - indptr[a], items[indptr[a] : indptr[b]],
                                      overwrite=True))
    at_or_above = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.int64, device=device)
    return metrics_from_counts(at_or_above, indptr, torch.from_numpy(n_targets), eval_set.num_items + 1)


def evaluate(model, eval_set: EvalSet, prefix: str = "val", batch_users: int | None = None) -> dict[str, float]:
    """Mean metrics over the eval users, named `<prefix>/<metric>`, in ranges of
    `EVAL_RANGE_USERS`; batch_users: users scored at once (default
    `eval_batch_users(num_items)`), which changes memory, not the numbers."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    for start in range(0, len(eval_set), EVAL_RANGE_USERS):
        stop = min(start + EVAL_RANGE_USERS, len(eval_set))
        for k, v in batch_metrics(model, eval_set, start, stop, batch_users).items():
            totals[k] = totals.get(k, 0.0) + float(v.sum())
    model.train(was_training)
    n = max(len(eval_set), 1)
    return {f"{prefix}/{k}": v / n for k, v in totals.items()}
