"""Where a full evaluation's time goes: user vectors, the scoring product, counting the
held-out items, metrics from the counts, and the rest (layout, exclusion, Python).

    python bench/eval_parts.py                                           # 30k x 23k x 280k
    python bench/eval_parts.py --data ../shared/data/ml-100k/u.data --protocol test

Each part is timed by wrapping the function that does it, around `caser.evaluation.evaluate`
of an untrained default model (evaluation time does not depend on training), best of
--repeats; the bare scoring product over the same users is printed beside it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="synthetic:users=30000,items=23000,interactions=280000")
    p.add_argument("--protocol", default="validation", choices=["validation", "test"])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import caser.evaluation as evaluation
    from bench.bare_product import bare_product_seconds
    from caser.config import DataConfig, ModelConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.model import Caser

    config = ModelConfig()
    data = PreparedData(load_split(DataConfig(spec=args.data)))
    eval_set = data.eval_set(args.protocol, config.L)
    net = Caser(data.num_users, data.num_items, config)
    seconds: dict[str, float] = {}

    def timed(part: str, work: Callable) -> Callable:
        def run(*a, **k):
            start = time.perf_counter()
            try:
                return work(*a, **k)
            finally:
                seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - start
        return run

    net.user_vectors = timed("user vectors", net.user_vectors)
    net.score_items = timed("scoring product", net.score_items)
    evaluation.held_out_counts = timed("counting", evaluation.held_out_counts)
    evaluation.metrics_from_counts = timed("metrics from counts", evaluation.metrics_from_counts)
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        seconds.clear()
        start = time.perf_counter()
        evaluation.evaluate(net, eval_set)
        total = time.perf_counter() - start
        if total < best.get("total", float("inf")):
            best = {**seconds, "rest": total - sum(seconds.values()), "total": total}
    bare = bare_product_seconds(len(eval_set), 2 * config.d, data.num_items).wall_s
    print(f"{len(eval_set)} users x {data.num_items} items, best of {args.repeats}")
    print("| part | seconds | x bare product |\n|---|---|---|")
    for part, s in [*best.items(), ("bare scoring product", bare)]:
        print(f"| {part} | {s:.4f} | {s / bare:.2f} |")


if __name__ == "__main__":
    main()
