"""The floor of a full evaluation: the product that scores every item for every user.

    from bench.bare_product import bare_product_seconds
    bare = bare_product_seconds(num_users=30_000, width=100, num_items=23_000)  # .wall_s, .cpu_s

Caser scores a user's items as x (2d) times the item matrix W2 (items + 1, 2d) plus a bias, so
any full-ranking evaluation costs at least users x 2d x (items + 1) multiply-adds. Timing that
product alone, in the same process and moment as the evaluation, gives a yardstick that holds
on any machine and load: evaluation seconds / bare seconds is the evaluation's overhead.

The product runs in user batches (a single one would need users x items floats at once): at
the evaluation's batch size and at 8 times it, each with the bias added by addmm and folded
into the product, and the fastest counts, so a batch size or a form that slowed the product
down would show as overhead rather than hide in the yardstick.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import torch


def bare_product_seconds(num_users: int, width: int, num_items: int, repeats: int = 3,
                         batch_users: int | None = None) -> Timing:
    """Best of `repeats` (wall and CPU seconds) for scores = x W2^T + b over all users,
    float32, in user batches (see the module docstring), in the faster of two forms:
    addmm(b, x, W2^T), and [x, 1] times [W2, b]^T with the bias folded into the product (the
    form `caser.model.Caser.score_items` uses; it saves addmm's pass that first copies b into
    the output). width is 2d, num_items excludes padding."""
    from caser.eval_batch import eval_batch_users

    base = batch_users or eval_batch_users(num_items)
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(num_items + 1, width, generator=gen)
    b = torch.randn(num_items + 1, generator=gen)
    Wb = torch.cat([W, b[:, None]], 1)
    with_addmm = lambda x, out=None: torch.addmm(b, x, W.t(), out=out)  # noqa: E731
    folded = lambda x, out=None: torch.mm(x, Wb.t(), out=out)  # noqa: E731  x carries a 1
    best = Timing(float("inf"), float("inf"))
    for batch in sorted({base, min(8 * base, num_users)}):
        X = torch.randn(batch, width, generator=gen)
        out = torch.empty(batch, num_items + 1)
        for product, x in [(with_addmm, X), (folded, torch.cat([X, torch.ones(batch, 1)], 1))]:
            best = best.best(best_seconds(_over_users(product, x, out, num_users), repeats))
    return best


def _over_users(product: Callable, x: torch.Tensor, out: torch.Tensor, num_users: int) -> Callable[[], None]:
    """num_users' scores by `product` in batches of len(x) users, the last one shorter."""
    full, rest = divmod(num_users, len(x))

    def run() -> None:
        for _ in range(full):
            product(x, out=out)
        if rest:
            product(x[:rest])

    return run


class Timing(NamedTuple):
    """Wall seconds, and CPU seconds of the process (all its threads): on a machine shared
    with other work the CPU seconds stay close to what the work needs, the wall seconds
    do not, so a ratio of CPU seconds is the steadier figure there."""

    wall_s: float
    cpu_s: float

    def best(self, other: "Timing") -> "Timing":
        return Timing(min(self.wall_s, other.wall_s), min(self.cpu_s, other.cpu_s))


def best_seconds(run: Callable[[], object], repeats: int) -> Timing:
    """The fastest of `repeats` runs: the least disturbed by other work on the machine."""
    best = Timing(float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        best = best.best(Timing(time.perf_counter() - wall, time.process_time() - cpu))
    return best
