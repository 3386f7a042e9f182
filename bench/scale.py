"""One size of the scale benchmark, in its own process so that its peak memory is its own.

    python bench/scale.py --users 6040 --items 3706 --interactions 1000000 [--batches 300]

Prints one JSON line: data preparation seconds, training sequences/s over `--batches` batches
of the default config (after one warm-up batch), one epoch's projected seconds, full
evaluation seconds (all validation users, user-batched) and peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--interactions", type=int, required=True)
    p.add_argument("--batches", type=int, default=300)
    args = p.parse_args()
    import torch

    from caser.config import DataConfig, ModelConfig, TrainConfig
    from caser.data_module import CaserDataModule, PreparedData
    from caser.datasets import load_split
    from caser.evaluation import evaluate
    from caser.module import CaserModule

    start = time.perf_counter()
    spec = f"synthetic:users={args.users},items={args.items},interactions={args.interactions}"
    data = PreparedData(load_split(DataConfig(spec=spec)))
    model, train = ModelConfig(), TrainConfig()
    dm = CaserDataModule(data, model.L, model.T, train.neg_samples, train.batch_size, train.seed)
    prepare_s = time.perf_counter() - start
    module = CaserModule(data.num_users, data.num_items, model, train, dm.eval_set)
    optimizer = module.configure_optimizers()
    batches = dm.train_dataloader()
    seen = 0
    start = None
    for i, batch in enumerate(batches):  # the module's own step, without Lightning's loop
        if i == 1:
            start = time.perf_counter()
        loss = module.training_step(batch, i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 1:
            seen += len(batch[0])
        if i == args.batches:
            break
    train_rate = seen / (time.perf_counter() - start)
    windows = len(data.windows("validation", model.L, model.T))
    start = time.perf_counter()
    evaluate(module.net, dm.eval_set, "val")
    eval_s = time.perf_counter() - start
    print(json.dumps({
        "interactions": int(data.split.train.num_events + data.split.val.num_events + data.split.test.num_events),
        "users": data.num_users, "items": data.num_items, "windows": windows,
        "prepare_s": round(prepare_s, 2), "train_seq_per_s": round(train_rate),
        "epoch_s": round(windows / train_rate, 1), "eval_s": round(eval_s, 3),
        "eval_users": len(dm.eval_set), "threads": torch.get_num_threads(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
