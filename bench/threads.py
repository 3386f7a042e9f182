"""Do two 1-thread trials at once finish more trials per minute than one 2-thread trial?

    python bench/threads.py                               # the default config, 6 trials, 2 epochs each
    python bench/threads.py --trials 4 --epochs 1 --batch-size 128 --data synthetic:users=600,items=400,interactions=15000

Runs `sweep.py --workers 1` (one trial at a time, torch threads = cores) and `sweep.py
--workers K` (K trials at once, cores // K threads each) on a study whose every trial is the
same configuration but for dropout (the original defaults, `--batch-size` aside, dropout
within 0.45-0.55, which costs the same), no pruning and no early
stopping, so that only the use of the cores differs. Prints trials per minute of each, from
the sweep's own wall time (data preparation and process start-up included, as a user pays
them). On a shared machine the figures move with the other load: rerun before relying on one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.workers import torch_threads, usable_cores  # noqa: E402


def study_text(data: str, epochs: int, batch_size: int) -> str:
    # Only dropout is searched, close to the original's 0.5: it costs the same in every trial,
    # and a space of one configuration is refused by the sweep (it would train one thing N times).
    return (f'[study]\nmax_epochs = {epochs}\npatience = 0\npruner = "none"\nsampler = "random"\nseed = 0\n\n'
            f'[data]\nspec = "{data}"\n\n'
            f'[space]\ndropout = {{ float = [0.45, 0.55] }}\nbatch_size = {batch_size}\n')


def timed_sweep(study: Path, trials: int, workers: int, runs_dir: Path) -> float:
    cmd = [sys.executable, str(ROOT / "sweep.py"), "--study", str(study), "--trials", str(trials),
           "--workers", str(workers), "--runs-dir", str(runs_dir)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/threads.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=6, help="trials per sweep (default %(default)s)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trial (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=512, help="every trial's batch size (default %(default)s)")
    p.add_argument("--data", default="synthetic", help="data spec (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="K, the parallel arm's workers (default %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="alternating repeats of both arms (default %(default)s)")
    args = p.parse_args(argv)
    cores = usable_cores()
    print(f"{cores} cores; load average before: {os.getloadavg()[0]:.2f}; {args.trials} trials of "
          f"{args.epochs} epochs, batch {args.batch_size}, data {args.data}")
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "threads.toml"
        study.write_text(study_text(args.data, args.epochs, args.batch_size))
        rows = []
        for repeat in range(args.repeats):
            for workers in (1, args.workers):
                seconds = timed_sweep(study, args.trials, workers, Path(tmp) / f"r{repeat}-w{workers}")
                per_minute = args.trials / seconds * 60
                threads = torch_threads(workers)  # what sweep.py gives each worker
                rows.append((workers, threads, seconds, per_minute))
                print(f"workers {workers} x {threads} threads: {seconds:.1f}s, {per_minute:.2f} trials/min "
                      f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    for workers in (1, args.workers):
        rates = [r[3] for r in rows if r[0] == workers]
        print(f"workers {workers}: median {sorted(rates)[len(rates) // 2]:.2f} trials/min over {len(rates)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
