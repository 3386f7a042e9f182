"""One size of the scale benchmark, in its own process so that its peak memory is its own.

    python bench/scale.py --users 6040 --items 3706 --interactions 1000000
    python bench/scale.py --users 30000 --items 23000 --interactions 280000   # sparse, Amazon-like

Prints one JSON line: data preparation seconds (generate, split, windows, evaluation set),
the seconds of one full training epoch of the default config end to end (`caser.train.fit`:
negatives, batches, Lightning's loop, the optimiser, without the evaluation fit ends with; the median of the epochs after the first,
so that one-off start-up is not counted and one slow epoch on a shared machine does not
decide the figure), full evaluation seconds (all validation users, user-batched; the best of
--eval-repeats), the bare scoring product over the same users (users x 2d x items, timed in
the same run: `bench/bare_product.py`) and evaluation as a multiple of it, in wall seconds and
in CPU seconds (steadier on a shared machine; the load average is printed beside them), and
the process's peak resident memory, with its peak before any data (the libraries alone).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--interactions", type=int, required=True)
    p.add_argument("--epochs", type=int, default=3,
                   help="epochs trained (at least 2); the median of all but the first is reported")
    p.add_argument("--eval-repeats", type=int, default=3,
                   help="evaluations and bare products timed, alternately; the best of each counts")
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2: the first epoch is not timed")
    import torch

    from bench.bare_product import Timing, bare_product_seconds, best_seconds
    from caser.config import DataConfig, ModelConfig, TrainConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.evaluation import evaluate
    from caser.model import Caser
    from caser.train import fit

    base_rss_mb = peak_rss_mb()  # the interpreter with torch and Lightning loaded, before any data
    model = ModelConfig()
    start = time.perf_counter()
    spec = f"synthetic:users={args.users},items={args.items},interactions={args.interactions}"
    data = PreparedData(load_split(DataConfig(spec=spec)))
    windows = len(data.windows("validation", model.L, model.T))
    eval_set = data.eval_set("validation", model.L)
    prepare_s = time.perf_counter() - start

    rows: list[dict] = []
    fit(model, TrainConfig(epochs=args.epochs), data, "validation", on_epoch=rows.append, eval_every=10**9)
    # Training seconds: fit evaluates once at the end, which evaluation's own figure covers.
    epoch_s = statistics.median(row["train_time_s"] for row in rows[1:])

    net = Caser(data.num_users, data.num_items, model)  # evaluation time does not depend on training
    evaluation = bare = Timing(float("inf"), float("inf"))
    for _ in range(args.eval_repeats):  # alternately, so that both meet the same load
        evaluation = evaluation.best(best_seconds(lambda: evaluate(net, eval_set, "val"), 1))
        bare = bare.best(bare_product_seconds(len(eval_set), 2 * model.d, data.num_items, repeats=1))
    split = data.split
    print(json.dumps({
        "interactions": int(split.train.num_events + split.val.num_events + split.test.num_events),
        "users": data.num_users, "items": data.num_items, "windows": windows,
        "prepare_s": round(prepare_s, 2), "train_seq_per_s": round(windows / epoch_s),
        "epoch_s": round(epoch_s, 2), "timed_epochs": len(rows) - 1,
        "eval_s": round(evaluation.wall_s, 3), "bare_product_s": round(bare.wall_s, 3),
        "eval_over_bare": round(evaluation.wall_s / bare.wall_s, 2),
        "eval_cpu_s": round(evaluation.cpu_s, 3), "bare_product_cpu_s": round(bare.cpu_s, 3),
        "eval_over_bare_cpu": round(evaluation.cpu_s / bare.cpu_s, 2),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "eval_users": len(eval_set), "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(), "base_rss_mb": base_rss_mb,
    }))


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
