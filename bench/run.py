"""Every benchmark behind one command; prints one markdown report. Not a test: CI skips it.

    python bench/run.py            # about 20 minutes on 2 cores
    python bench/run.py --quick    # smaller sizes and sweeps, a couple of minutes

1. Training speed and evaluation time of the default config on MovieLens 100K (when
   ../shared/data has it) or the synthetic data: bench/train_speed.py.
2. Scale: the default config at about 100k, 1M and 5M interactions (synthetic, ml-1m-like
   users x items at 1M), and on two sparse catalogues of about 10 events a user (30,000 x
   23,000 x 280,000, Amazon-category-like, and 100,000 x 50,000 x 1,000,000, Amazon-Books-
   like), each in its own process for its own peak memory: bench/scale.py. Evaluation is
   also given as a multiple of the bare scoring product (users x 2d x items) of the same run.
3. A sweep of the default study with its own pruner and the same without pruning (same
   seed, same trial count): epochs trained, best value, and the per-trial overhead (trial
   wall time minus its epochs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# (users, items, interactions, epochs): every epoch after the first is timed, more of them
# where an epoch is short and one slow second on a shared machine would swing the figure.
SIZES = [(1_000, 2_000, 100_000, 8), (6_040, 3_706, 1_000_000, 4), (30_000, 10_000, 5_000_000, 3),
         (30_000, 23_000, 280_000, 4), (100_000, 50_000, 1_000_000, 3)]
QUICK_SIZES = [(1_000, 2_000, 100_000, 4), (6_040, 3_706, 1_000_000, 3), (30_000, 23_000, 280_000, 3)]


def run(cmd: list[str]) -> str:
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def sweep_figures(trials: int, pruner: str | None, max_epochs: int, workdir: Path) -> dict:
    """One sweep of the default study; pruner None keeps the study's own."""
    import optuna

    runs = workdir / (pruner or "default")
    # One worker: the pruned and unpruned sweeps then sample the same trials until they differ.
    run([sys.executable, "sweep.py", "--trials", str(trials), *(["--pruner", pruner] if pruner else []),
         "--max-epochs", str(max_epochs), "--seed", "0", "--runs-dir", str(runs), "--workers", "1"])
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{runs / 'default.db'}")
    done = [t for t in study.trials if t.state.is_finished() and "epochs_run" in t.user_attrs]
    overheads = [t.user_attrs["wall_time_s"] - t.user_attrs.get("train_time_s", 0.0) for t in done
                 if "train_time_s" in t.user_attrs]
    return {
        "epochs": sum(t.user_attrs["epochs_run"] for t in done),
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "best": study.best_value,
        "overhead_s": sorted(overheads)[len(overheads) // 2] if overheads else float("nan"),
        "wall_s": sum(t.user_attrs["wall_time_s"] for t in done),
        "params": [t.params for t in study.trials],
    }


def ratios(rows: list[dict], per_unit) -> str:
    base = per_unit(rows[0])
    return ", ".join(f"{per_unit(r) / base:.2f}x" for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes and a 10-trial sweep")
    args = p.parse_args()
    started = time.perf_counter()
    import torch

    print(f"# caser-sweep benchmarks\n\nmachine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"Python {platform.python_version()}\n", flush=True)

    print("## Training and evaluation, default config\n")
    print(run([sys.executable, "bench/train_speed.py", "--epochs", "4"]), flush=True)

    print("## Scale (synthetic data, default config)\n")
    print("Epoch s: the median of the epochs after the first.\n")
    print("| interactions | users x items | windows | prepare s | train seq/s | epoch s | eval s "
          "| eval / bare product | peak RSS MB | of which data and model MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for users, items, n, epochs in QUICK_SIZES if args.quick else SIZES:
        r = json.loads(run([sys.executable, "bench/scale.py", "--users", str(users), "--items", str(items),
                            "--interactions", str(n), "--epochs", str(epochs)]).strip().splitlines()[-1])
        rows.append(r)
        print(f"| {r['interactions']:,} | {r['users']:,} x {r['items']:,} | {r['windows']:,} | {r['prepare_s']} "
              f"| {r['train_seq_per_s']:,} | {r['epoch_s']} | {r['eval_s']} | {r['eval_over_bare']}x "
              f"| {r['peak_rss_mb']:,} "
              f"| {r['peak_rss_mb'] - r['base_rss_mb']:,} |", flush=True)
    print("\nRelative to the smallest size, per unit of work (1.00x: linear; below: better than linear):")
    print("- epoch seconds per interaction: " + ratios(rows, lambda r: r["epoch_s"] / r["interactions"]))
    print("- data and model memory per interaction: "
          + ratios(rows, lambda r: (r["peak_rss_mb"] - r["base_rss_mb"]) / r["interactions"]))
    print("- evaluation seconds per (user x item): "
          + ratios(rows, lambda r: r["eval_s"] / (r["eval_users"] * r["items"])) + "\n", flush=True)

    from search.studyfile import load_study_spec

    default = load_study_spec("default")
    trials, epochs = (10, 4) if args.quick else (30, default.max_epochs)
    default_pruner = default.pruner
    print(f"## Pruning: default study, {trials} trials, {epochs} epochs max, seed 0\n")
    with tempfile.TemporaryDirectory() as tmp:
        pruned = sweep_figures(trials, None, epochs, Path(tmp))
        full = sweep_figures(trials, "none", epochs, Path(tmp))
    print("| pruner | epochs trained | pruned trials | best val/map | trial time s | median per-trial overhead s |")
    print("|---|---|---|---|---|---|")
    for name, r in ((f"{default_pruner} (the study's)", pruned), ("none", full)):
        print(f"| {name} | {r['epochs']} | {r['pruned']} | {r['best']:.4f} | {r['wall_s']:.0f} | {r['overhead_s']:.2f} |")
    saved = 1 - pruned["epochs"] / full["epochs"]
    print(f"\nPruning saved {saved:.0%} of the epochs; its best is {pruned['best'] / full['best']:.1%} of the unpruned best.")
    same = next((i for i, (a, b) in enumerate(zip(pruned["params"], full["params"])) if a != b), None)
    print("Both sweeps sampled the same configurations throughout." if same is None else
          f"The sweeps' configurations first differ at trial {same}: from there on the pruned one "
          "samples others (TPE's best tenth changed: see bench/pruner_replay.py).")
    print(f"\nAll benchmarks: {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
