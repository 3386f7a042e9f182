"""How fast the Gowalla reader is at the real file's size, against the quadruplets reader.

    python bench/read_gowalla.py                       # 6,442,890 check-ins, 3 runs
    python bench/read_gowalla.py --lines 1000000 --runs 5

Generates, in a temporary folder, a check-ins file shaped like SNAP's
`loc-gowalla_totalCheckins.txt` (107,092 users in id order, each newest first; 1,280,969
locations; tab-separated ISO times and coordinates; the `gowalla` dataset keeps this text in its
cache), its gzip (as SNAP publishes it, read as it is when given by path) and the same events as
`user item rating timestamp` quadruplets. Each run
reads the three with `read_interactions` and prints the seconds and the ratio of each Gowalla
read to the quadruplets read of the same run, so the figure holds on a loaded machine.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caser.readers import read_interactions  # noqa: E402

FIRST, LAST = np.datetime64("2009-02-04T00:00:00", "s"), np.datetime64("2010-10-23T00:00:00", "s")


def write_files(folder: Path, lines: int, users: int, locations: int, seed: int) -> dict[str, Path]:
    """The Gowalla text, its gzip and the quadruplets of the same events, in `folder`."""
    rng = np.random.default_rng(seed)
    user = np.sort(rng.integers(0, users, lines))
    seconds = rng.integers(FIRST.astype(np.int64), LAST.astype(np.int64), lines)
    newest_first = np.lexsort((-seconds, user))
    user, seconds = user[newest_first], seconds[newest_first]
    pool = np.sort(rng.choice(6_000_000, size=locations, replace=False))
    location = pool[rng.integers(0, locations, lines)]
    times = np.char.add(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "Z")
    lat, lon = rng.uniform(-60, 70, lines).round(7), rng.uniform(-180, 180, lines).round(7)
    columns = [user.tolist(), times.tolist(), lat.tolist(), lon.tolist(), location.tolist()]
    text = "".join(f"{u}\t{t}\t{a}\t{o}\t{c}\n" for u, t, a, o, c in zip(*columns))
    paths = {"gowalla": folder / "checkins.txt", "gowalla.gz": folder / "checkins.txt.gz",
             "quadruplets": folder / "quadruplets.txt"}
    paths["gowalla"].write_text(text)
    paths["gowalla.gz"].write_bytes(gzip.compress(text.encode(), compresslevel=6))
    quads = "".join(f"{u} {c} 1 {s}\n" for u, c, s in zip(columns[0], columns[4], seconds.tolist()))
    paths["quadruplets"].write_text(quads)
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=6_442_890)
    p.add_argument("--users", type=int, default=107_092)
    p.add_argument("--locations", type=int, default=1_280_969)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = write_files(Path(tmp), args.lines, args.users, args.locations, args.seed)
        print(f"generated {args.lines:,} lines in {time.perf_counter() - started:.0f}s")
        print("| run | quadruplets s | gowalla s (x quadruplets) | gowalla .gz s (x quadruplets) |")
        print("|---|---|---|---|")
        for run in range(1, args.runs + 1):
            seconds = {}
            for name in ("quadruplets", "gowalla", "gowalla.gz"):
                start = time.perf_counter()
                seqs = read_interactions(paths[name])
                seconds[name] = time.perf_counter() - start
                assert seqs.num_events == args.lines
            ref = seconds["quadruplets"]
            print(f"| {run} | {ref:.2f} | {seconds['gowalla']:.2f} ({seconds['gowalla'] / ref:.2f}x) "
                  f"| {seconds['gowalla.gz']:.2f} ({seconds['gowalla.gz'] / ref:.2f}x) |")


if __name__ == "__main__":
    main()
