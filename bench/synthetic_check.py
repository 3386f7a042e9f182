"""Does the embedded synthetic data reward what Caser models? Caser vs popularity, L=5 vs L=1.

    python bench/synthetic_check.py [--epochs 20] [--seeds 1]

Paper protocol (train on train + validation, score test). Prints a markdown table of test
metrics for popularity, Caser with the original defaults (L=5) and the same with L=1.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="synthetic")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, default=1)
    args = p.parse_args()
    from caser.config import DataConfig, ModelConfig, TrainConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.popularity import popularity_metrics
    from caser.train import fit

    data = PreparedData(load_split(DataConfig(spec=args.data)))
    rows = {"popularity": popularity_metrics(data, "test")}
    for name, model in (("Caser L=5 (defaults)", ModelConfig()), ("Caser L=1", replace(ModelConfig(), L=1))):
        runs = [fit(model, TrainConfig(epochs=args.epochs, seed=s), data, "test").metrics for s in range(args.seeds)]
        rows[name] = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        print(f"{name}: {rows[name]['test/map']:.4f}", file=sys.stderr)
    keys = ["test/map", "test/prec@1", "test/prec@10", "test/recall@10", "test/ndcg@10"]
    print("| system | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, m in rows.items():
        print(f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |")
    base = rows["popularity"]["test/map"]
    print(f"\nCaser / popularity MAP: {rows['Caser L=5 (defaults)']['test/map'] / base:.2f}x")


if __name__ == "__main__":
    main()
