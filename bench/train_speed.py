"""Training sequences per second and full-evaluation seconds for one configuration.

    python bench/train_speed.py                       # ml-100k when ../shared/data has it
    python bench/train_speed.py --data synthetic --threads 2 --epochs 5

End to end: sequences/s counts every window of every epoch over the wall time of the epochs
(negative sampling, shuffling, batching, Lightning's loop, the optimiser), without evaluation.
Evaluation is timed separately over all users, best of several runs, and its metrics are
checked against the per-user reference implementation (`caser/reference_metrics.py`); it is
also given as a multiple of the bare scoring product over the same users (users x 2d x items,
`bench/bare_product.py`), timed alternately with it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ML100K = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ML100K) if ML100K.is_file() else "synthetic")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-repeats", type=int, default=5)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from bench.bare_product import bare_product_seconds
    from caser.config import DataConfig, ModelConfig, TrainConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.evaluation import evaluate
    from caser.model import Caser
    from caser.reference_metrics import reference_evaluate
    from caser.train import fit

    split = load_split(DataConfig(spec=args.data))
    data = PreparedData(split)
    model = ModelConfig()
    windows = len(data.windows("test", model.L, model.T))
    rows: list[dict] = []
    fit(model, TrainConfig(epochs=args.epochs), data, "test", on_epoch=rows.append, eval_every=10**9)
    train_seconds = sum(r["time_s"] for r in rows[1:])  # the first epoch pays one-off set-up
    per_s = windows * (len(rows) - 1) / train_seconds

    net = Caser(data.num_users, data.num_items, model)  # freshly initialised: timing needs no training
    eval_set = data.eval_set("test", model.L)
    times, bare = [], []
    for _ in range(args.eval_repeats):
        start = time.perf_counter(), time.process_time()
        metrics = evaluate(net, eval_set, "test")
        times.append((time.perf_counter() - start[0], time.process_time() - start[1]))
        bare.append(bare_product_seconds(len(eval_set), 2 * model.d, data.num_items, repeats=1))
    eval_s, eval_cpu_s = (min(t[i] for t in times) for i in (0, 1))
    bare_s, bare_cpu_s = min(t.wall_s for t in bare), min(t.cpu_s for t in bare)
    reference = reference_evaluate(net, eval_set, "test")
    worst = max(abs(metrics[k] - reference[k]) for k in reference)
    print(f"| data | threads | windows/epoch | sequences/s | epoch s | eval users | eval s (best of {args.eval_repeats}) "
          "| bare product s | eval / bare (wall; CPU s) | max abs diff vs reference metrics |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {Path(args.data).name} | {args.threads} | {windows} | {per_s:,.0f} | {windows / per_s:.2f} "
          f"| {len(eval_set)} | {eval_s:.3f} | {bare_s:.4f} | {eval_s / bare_s:.1f}x; {eval_cpu_s / bare_cpu_s:.1f}x "
          f"| {worst:.1e} |")
    if worst > 1e-6:
        sys.exit(f"the metrics differ from the per-user reference by {worst:.2e}")


if __name__ == "__main__":
    main()
