"""Full-ranking metrics from the ranks of the held-out items alone, vectorised over a batch of users.

Every metric here depends only on where the held-out items land in the ranked list of candidate
items (every item but padding and those the user saw in training), so no ranked list is ever
built: for each held-out item we count the candidates scoring at or above it. With the
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
one of two exact paths per user (`compare_max_targets`): a comparison pass over the row per
held-out item, or, for users with more held-out items, one sort of the row's values and a
binary search per item.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from caser.metric_names import KS

# What a user's row costs on each path, per row, as measured on the 2-core CPU
# (docs/measurements.md): a comparison pass per held-out item, about a fixed 4.5 us plus 0.25
# ns per candidate; one sort (and the search, cheap beside it), about 5 ns per candidate. Both
# paths give the same counts; only their cost depends on these.
COMPARE_PASS_NS = 4500.0
COMPARE_NS_PER_CANDIDATE = 0.25
SORT_NS_PER_CANDIDATE = 5.0


def compare_max_targets(num_candidates: int) -> int:
    """Users with at most this many held-out items among num_candidates are counted by
    comparison passes, which then cost less than one sort of the row: 1 at MovieLens-100K's
    1,683 items, 11 at 23,000, toward 20 on the largest catalogues."""
    sort = SORT_NS_PER_CANDIDATE * num_candidates
    return max(1, int(sort / (COMPARE_PASS_NS + COMPARE_NS_PER_CANDIDATE * num_candidates)))


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
    scores: torch.Tensor, indptr: np.ndarray, items: torch.Tensor, n_relevant: torch.Tensor,
    overwrite: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-user metrics (B,) each, float64, from the scores and each user's held-out items.

    scores: (B, I) with excluded items and padding at -inf. indptr (B + 1,), a numpy CSR over
    the rows of `scores`, and items: the held-out items that can be hit (not excluded), distinct
    within a user. n_relevant: (B,) |R| >= 1. The layout lives on the host so that no step
    waits on the device. overwrite: `scores` may be reordered in place (saves a copy).
    """
    at_or_above = held_out_counts(scores, indptr, items, overwrite)
    return metrics_from_counts(at_or_above, indptr, n_relevant, scores.size(1))


def held_out_counts(scores: torch.Tensor, indptr: np.ndarray, items: torch.Tensor,
                    overwrite: bool = False) -> torch.Tensor:
    """(N,) int64, in the CSR order of `items`: how many candidates score at or above each
    held-out item (itself included). Arguments as `target_metrics`."""
    device = scores.device
    n_held = np.diff(indptr)
    rows, cols = _csr_cells(n_held)
    rows_t, cols_t = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
    # (B, width) held-out scores, +inf where a user has fewer: nothing scores >= +inf.
    held = scores.new_full((scores.size(0), max(int(n_held.max(initial=0)), 1)), torch.inf)
    held[rows_t, cols_t] = scores[rows_t, items.to(device)]
    return count_at_or_above(scores, held, n_held, overwrite)[rows_t, cols_t]


def metrics_from_counts(at_or_above: torch.Tensor, indptr: np.ndarray, n_relevant: torch.Tensor,
                        num_candidates: int) -> dict[str, torch.Tensor]:
    """Per-user metrics (B,) each, float64, from `held_out_counts` of users laid out by the
    CSR indptr (B + 1,); num_candidates: at least every count (the row width)."""
    device = at_or_above.device
    rows, cols = _csr_cells(np.diff(indptr))
    rows_t, cols_t = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
    return _from_counts(at_or_above, rows_t, cols_t + 1, n_relevant.to(device), num_candidates)


def count_at_or_above(scores: torch.Tensor, held: torch.Tensor, n_held: np.ndarray,
                      overwrite: bool = False) -> torch.Tensor:
    """(B, W) int64: how many entries of each row of `scores` (B, I) are >= each of `held`
    (B, W). n_held: (B,) host array, how many of a row's W entries are real (the first ones);
    it picks each row's path (module docstring). overwrite: `scores` may be sorted in place."""
    few = n_held <= compare_max_targets(scores.size(1))
    many = np.flatnonzero(~few)
    if len(many) == len(n_held):
        return _by_sorting(scores if overwrite else scores.clone(), held)
    # Rows of the sorting path take no comparison pass (0 items to compare); then their
    # copies, only theirs, are sorted.
    out = _by_comparison(scores, held, np.where(few, n_held, 0))
    if len(many):
        rows = torch.from_numpy(many).to(scores.device)
        out[rows] = _by_sorting(scores.index_select(0, rows), held.index_select(0, rows))
    return out


def _by_comparison(scores: torch.Tensor, held: torch.Tensor, n_held: np.ndarray) -> torch.Tensor:
    """One pass over a row per held-out item. On a CPU, row by row on the calling thread with
    numpy: a 1-D comparison and count run about twice as fast per cell as numpy's 2-D
    count along an axis and six times as fast as torch's; and on a few cores, threads of our
    own would compete with torch's OpenMP workers, which spin for a while after the scoring
    product (docs/measurements.md)."""
    if scores.device.type != "cpu":
        return _by_comparison_on_device(scores, held, n_held)
    values, thresholds = scores.detach().numpy(), held.numpy()
    out = np.zeros(held.shape, dtype=np.int64)
    for b, n in enumerate(n_held.tolist()):
        row = values[b]
        for j in range(n):
            out[b, j] = np.count_nonzero(row >= thresholds[b, j])
    return torch.from_numpy(out)


def _by_comparison_on_device(scores: torch.Tensor, held: torch.Tensor, n_held: np.ndarray) -> torch.Tensor:
    """`_by_comparison` as whole-batch tensor operations: one per held-out column, each over
    the rows that have an item in it."""
    out = torch.zeros(held.shape, dtype=torch.int64, device=scores.device)
    for j in range(int(n_held.max(initial=0))):
        if (n_held > j).all():  # every row: no copy of the scores
            out[:, j] = (scores >= held[:, j : j + 1]).sum(1)
            continue
        rows = torch.from_numpy(np.flatnonzero(n_held > j)).to(scores.device)
        out[rows, j] = (scores.index_select(0, rows) >= held[rows, j : j + 1]).sum(1)
    return out


def _by_sorting(scores: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """Sort each row's values (in place on a CPU, with numpy's vectorised sort, far faster
    than torch's), then binary-search every held-out score in its row at once. The search
    also runs over the +inf padding of rows with fewer items: cheap next to the sort, and at
    MovieLens-100K's shape twice as fast as searching only the real items with numpy
    (docs/measurements.md)."""
    if scores.device.type == "cpu":
        ascending = scores.detach().numpy()
        _over_row_blocks(lambda rows_: ascending[rows_].sort(axis=1), ascending.shape)
        ascending = torch.from_numpy(ascending)
    else:
        ascending = torch.sort(scores, dim=1).values
    return scores.size(1) - torch.searchsorted(ascending, held.contiguous(), side="left")


def _from_counts(at_or_above: torch.Tensor, rows: torch.Tensor, j: torch.Tensor,
                 n_relevant: torch.Tensor, num_candidates: int) -> dict[str, torch.Tensor]:
    """The metrics of each user from the counts r (N,) of the held-out items, flat and grouped
    by user: rows (N,) their user, j (N,) 1, 2, ... within each user."""
    # Sort each user's r ascending (users stay where they are: the user is the major key).
    stride = num_candidates + 1
    r = at_or_above.gather(0, _argsort(rows * stride + at_or_above))
    # c_j = j + min_{i >= j}(r_i - i) within a user, as one suffix minimum over all users: an
    # offset growing with the user keeps every later user above the current one's values.
    offset = rows * (2 * stride + len(r))
    suffix_min = _suffix_min(r - j + offset) - offset
    c = (suffix_min + j).to(torch.float64)
    n_rel = n_relevant.to(torch.float64)

    def per_user(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(n_rel).index_add_(0, rows, values)

    out = {"map": per_user(j / c) / n_rel}
    for k in KS:
        hits = per_user((c <= k).to(torch.float64))
        out[f"prec@{k}"] = hits / k
        out[f"recall@{k}"] = hits / n_rel
    in_top = c <= 10
    out["ndcg@10"] = per_user(torch.where(in_top, 1 / torch.log2(c + 1), 0.0)) / _ideal_dcg(n_relevant, 10)
    out["hit@10"] = (per_user(in_top.to(torch.float64)) > 0).to(torch.float64)
    return out


def _over_row_blocks(work: Callable[[slice], object], shape: tuple[int, int]) -> None:
    """work(rows) over blocks of rows, on as many threads as torch uses: numpy's comparisons,
    sums and sorts release the GIL, so the CPU's cores share the pass as they share the
    scoring product. Small arrays stay on the calling thread."""
    threads = min(torch.get_num_threads(), shape[0])
    if threads <= 1 or shape[0] * shape[1] < _PARALLEL_MIN_CELLS:
        work(slice(0, shape[0]))
        return
    bounds = np.linspace(0, shape[0], threads + 1).astype(int)
    blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    list(_pool(threads).map(work, blocks))


_PARALLEL_MIN_CELLS = 2**16


@functools.lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="caser-metrics")


def _csr_cells(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every entry of rows holding counts[b] entries each, row by row."""
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return rows, np.arange(len(rows), dtype=np.int64) - np.repeat(starts, counts)


def _argsort(x: torch.Tensor) -> torch.Tensor:
    """Ascending order of a 1-D tensor; numpy's on a CPU (several times faster than torch's)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.argsort(x.numpy(), kind="stable"))
    return x.argsort()


def _suffix_min(x: torch.Tensor) -> torch.Tensor:
    """out[i] = min(x[i:]) of a 1-D tensor."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.minimum.accumulate(x.numpy()[::-1])[::-1].copy())
    return x.flip(0).cummin(0).values.flip(0)


def _ideal_dcg(n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=n_relevant.device))
    ideal = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])
    return ideal[n_relevant.clamp(max=k).long()]
