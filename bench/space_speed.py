"""Training speed over the configurations a sweep draws, against the original implementation.

    python bench/space_speed.py                       # the default study's data and space, 12 + the default
    python bench/space_speed.py --configs 4 --epochs 2 --data synthetic:users=400,items=300,interactions=8000

A fixed, seeded sample of `--configs` configurations from `studies/default.toml`'s space (Optuna's
random sampler, seed `--seed`: the start-up trials of a sweep are drawn so), plus the original
defaults. For each, in the same run and on the same data (the study's training split):

- the project's seconds per epoch (`caser.train.fit`, validation protocol: an epoch as a sweep
  trains it, its validation included; the mean over the epochs after the first);
- the original implementation's (`../shared/anchor/caser_pytorch/`, driven in a process of its
  own by `bench/anchor_epoch.py` on the same training events written as triplets; the mean of
  its own per-epoch timings after the first, its negative sampling included). It cannot build
  a configuration with nv = 0 or nh = 0 (it concatenates a missing branch): n/a there;
- the configuration's FLOP floor: the multiply-adds of the forward pass over every window
  (vertical and horizontal convolutions as the original computes them, the fully connected
  layer, the scored items), times 2 for FLOPs and times 3 for forward plus backward, and the
  seconds that would take at the matrix-product speed measured in this run (`torch.mm` of two
  1024 x 1024 matrices at the same thread count).

Prints one markdown table and the ratios original / project at the default and at the median of
the sample. Skips the original, saying so, where `../shared/anchor/` is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANCHOR = ROOT.parent / "shared" / "anchor" / "caser_pytorch"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/space_speed.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default="default", help="the study whose space and data to use (default %(default)s)")
    p.add_argument("--data", help="override the study's data")
    p.add_argument("--configs", type=int, default=12, help="sampled configurations (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per training; the first is not timed (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the usable cores)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    return p.parse_args(argv)


def sample_configs(space: dict[str, Any], fixed: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """n feasible configurations drawn by Optuna's random sampler (nv = nh = 0 drawn again)."""
    import optuna

    from search.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    while len(out) < n:
        params = {**fixed, **suggest(study.ask(), space)}
        if params.get("nv", 1) or params.get("nh", 1):
            out.append(params)
    return out


def flops_per_epoch(model: Any, train: Any, windows: int) -> float:
    """Forward + backward FLOPs of one epoch, as the original computes the layers (see the
    module docstring); the optimiser and the embedding gathers are left out."""
    L, d, nv, nh, T = model.L, model.d, model.nv, model.nh, model.T
    macs = nv * L * d  # vertical: nv filters of L x 1 over d columns
    macs += sum(nh * h * d * (L - h + 1) for h in range(1, L + 1))  # horizontal, every height
    macs += (nv * d + nh * L) * d  # fully connected
    macs += (T + train.neg_samples) * (2 * d + 1)  # scored targets and negatives
    return 3 * 2 * macs * windows


def matmul_gflops(threads: int) -> float:
    """The speed of a large float32 matrix product here, in GFLOP/s (best of 5)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best / 1e9


def project_epoch(model: Any, train: Any, prepared: Any, epochs: int) -> float:
    from caser.train import fit

    result = fit(model, train.__class__(**{**asdict(train), "epochs": epochs, "seed": 0}), prepared, "validation")
    return statistics.fmean(row["time_s"] for row in result.history[1:])


def original_epoch(triplets: Path, model: Any, train: Any, epochs: int, threads: int) -> float | None:
    """The original's mean seconds per epoch after the first, or None where it cannot run."""
    if not ANCHOR.is_dir() or model.nv == 0 or model.nh == 0:
        return None
    job = {"triplets": str(triplets), "model": asdict(model), "train": asdict(train), "epochs": epochs,
           "threads": threads}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "anchor_epoch.py"), json.dumps(job)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ANCHOR)})
    if done.returncode != 0:
        raise SystemExit(f"error: the original failed on {asdict(model)}:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def write_triplets(seqs: Any, path: Path) -> None:
    """Training events as `user item 1` lines in time order per user (the original's format)."""
    import numpy as np

    users = seqs.users()
    np.savetxt(path, np.stack([users, seqs.items, np.ones_like(users)], 1), fmt="%d")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from caser.config import ModelConfig, TrainConfig, configs_from_params
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from search.studyfile import load_study_spec
    from search.workers import usable_cores

    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)
    spec = load_study_spec(args.study).with_overrides(data_spec=args.data)
    prepared = PreparedData(load_split(spec.data))
    if not ANCHOR.is_dir():
        print(f"the original is not at {ANCHOR}: its column is n/a", file=sys.stderr)
    print(f"load average {os.getloadavg()[0]:.2f}; {threads} threads; data {spec.data.spec}; "
          f"{args.epochs} epochs each", file=sys.stderr, flush=True)
    configs = [{"label": "default", **asdict(ModelConfig()), **asdict(TrainConfig())}]
    configs += [{"label": f"sample {i + 1}", **p} for i, p in
                enumerate(sample_configs(spec.space, dict(spec.fixed), args.configs, args.seed))]
    gflops = matmul_gflops(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        triplets = Path(tmp) / "train.txt"
        write_triplets(prepared.split.train, triplets)
        for params in configs:
            label = params.pop("label")
            model, train = configs_from_params({k: v for k, v in params.items() if k not in ("epochs", "seed")})
            windows = len(prepared.windows("validation", model.L, model.T))
            ours = project_epoch(model, train, prepared, args.epochs)
            theirs = original_epoch(triplets, model, train, args.epochs, threads)
            flops = flops_per_epoch(model, train, windows)
            rows.append({"config": label, **{k: params[k] for k in ("L", "T", "d", "nv", "nh", "batch_size")},
                         "project_s": ours, "original_s": theirs, "gflop": flops / 1e9,
                         "floor_s": flops / (gflops * 1e9)})
            print(_line(rows[-1]), file=sys.stderr, flush=True)
    print(report(rows, gflops, os.getloadavg()[0]))
    if args.json:
        args.json.write_text(json.dumps({"gflops": gflops, "rows": rows}, indent=1))
    return 0


def _line(row: dict[str, Any]) -> str:
    theirs = f"{row['original_s']:.2f}" if row["original_s"] else "n/a"
    return f"{row['config']}: project {row['project_s']:.2f} s, original {theirs} s, floor {row['floor_s']:.3f} s"


def report(rows: list[dict[str, Any]], gflops: float, load: float) -> str:
    lines = ["| config | L | T | d | nv | nh | batch | project s/epoch | original s/epoch | original / project | "
             "GFLOP/epoch | floor s | project / floor |", "|" + "---|" * 13]
    for r in rows:
        ratio = r["original_s"] / r["project_s"] if r["original_s"] else None
        lines.append(f"| {r['config']} | {r['L']} | {r['T']} | {r['d']} | {r['nv']} | {r['nh']} | {r['batch_size']} | "
                     f"{r['project_s']:.3f} | {r['original_s'] or 0:.3f} | {f'{ratio:.2f}x' if ratio else 'n/a'} | "
                     f"{r['gflop']:.1f} | {r['floor_s']:.3f} | {r['project_s'] / r['floor_s']:.1f}x |")
    sample = [r for r in rows if r["config"] != "default" and r["original_s"]]
    default = rows[0]
    tail = [f"Matrix-product speed here: {gflops:.0f} GFLOP/s; load average at the end {load:.2f}."]
    if default["original_s"]:
        tail.append(f"Default: the project is {default['original_s'] / default['project_s']:.2f}x the original.")
    if sample:
        ratios = [r["original_s"] / r["project_s"] for r in sample]
        tail.append(f"Sample ({len(sample)} configurations the original can build): median "
                    f"{statistics.median(ratios):.2f}x, range {min(ratios):.2f}x to {max(ratios):.2f}x.")
    return "\n".join(lines) + "\n\n" + "\n".join(tail) + "\n"


if __name__ == "__main__":
    sys.exit(main())
