"""How often each interval for "configuration minus default" covers the true difference.

    python bench/seed_interval_coverage.py                  # about 2 minutes on one core
    python bench/seed_interval_coverage.py --reps 2000 --seeds 2,3,5,10

Simulated test tables, (seeds x users) of per-user AP for a configuration and the default, the
users the same in every run (as in the report's final evaluation):

    AP[c, s, u] = base[u] + effect[c] + seed_effect[c, s] + noise[c, s, u]

with a true difference of `--delta`, a seed effect of standard deviation `--seed-sd` (a
configuration retrained with another seed lands elsewhere), and per-run noise per user. Three
95% intervals for MAP(config) - MAP(default):

- variance components: `search.report.seed_level.seed_level`, what the report uses;
- hierarchical bootstrap: resample each configuration's seeds, then the users (the same users
  for both, as they are crossed with the seeds), percentile interval;
- per-user t-interval: the paired per-user differences of seed-averaged AP, the seeds ignored
  (what a per-user test measures).

Prints the share of intervals that contained the true difference (nominal 95%) and their median
width. Standard library, numpy and the project's own interval only: no training.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.report.seed_level import seed_level  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="2,3,5,10", help="seed counts per configuration (default %(default)s)")
    p.add_argument("--seed-sd", default="0.002,0.01", help="seed effect standard deviations (default %(default)s)")
    p.add_argument("--users", type=int, default=300, help="users (default %(default)s)")
    p.add_argument("--noise-sd", type=float, default=0.1, help="per-run noise of one user's AP (default %(default)s)")
    p.add_argument("--delta", type=float, default=0.005, help="true difference in MAP (default %(default)s)")
    p.add_argument("--reps", type=int, default=500, help="simulated studies per cell (default %(default)s)")
    p.add_argument("--boot", type=int, default=400, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the simulation's seed (default %(default)s)")
    return p.parse_args(argv)


def tables(rng: np.random.Generator, seeds: int, users: int, seed_sd: float, noise_sd: float,
           delta: float) -> tuple[np.ndarray, np.ndarray]:
    base = rng.normal(0.2, 0.15, users)
    config = base + delta + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, noise_sd, (seeds, users))
    default = base + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, noise_sd, (seeds, users))
    return config, default


def bootstrap(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, n: int) -> tuple[float, float]:
    """Seeds resampled per configuration, users resampled once per draw for both."""
    seeds, users = a.shape
    seed_weights = lambda: rng.multinomial(seeds, np.full(seeds, 1 / seeds), n) / seeds  # noqa: E731
    user_weights = rng.multinomial(users, np.full(users, 1 / users), n) / users
    diffs = (np.einsum("bs,su,bu->b", seed_weights(), a, user_weights)
             - np.einsum("bs,su,bu->b", seed_weights(), b, user_weights))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(lo), float(hi)


def per_user_t(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = a.mean(0) - b.mean(0)
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return float(diff.mean() - half), float(diff.mean() + half)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print("| seeds | seed sd | variance components | hierarchical bootstrap | per-user t-interval |")
    print("|---|---|---|---|---|")
    for seeds in (int(s) for s in args.seeds.split(",")):
        for seed_sd in (float(s) for s in args.seed_sd.split(",")):
            covered = {"vc": [], "boot": [], "t": []}
            widths = {"vc": [], "boot": [], "t": []}
            for _ in range(args.reps):
                a, b = tables(rng, seeds, args.users, seed_sd, args.noise_sd, args.delta)
                level = seed_level(a, b)
                for name, (lo, hi) in (("vc", (level.lo, level.hi)), ("boot", bootstrap(rng, a, b, args.boot)),
                                       ("t", per_user_t(a, b))):
                    covered[name].append(lo <= args.delta <= hi)
                    widths[name].append(hi - lo)
            cells = [f"{np.mean(covered[k]):.0%} (width {np.median(widths[k]):.4f})" for k in ("vc", "boot", "t")]
            print(f"| {seeds} | {seed_sd:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{args.reps} simulated studies a row, {args.users} users, per-run noise sd {args.noise_sd:g}, "
          f"true difference {args.delta:g}; nominal coverage 95%.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
