"""Stopping rules replayed on recorded learning curves: what each rule would have cost and lost.

    python bench/stopping_replay.py runs/selection/curves.json runs/sparse/curves.json

Reads the curves `bench/selection.py` recorded (every arm: the paper's and forward-chaining
validation, and test, each recorded far past its best) and replays each candidate rule through
`caser.stopping.stop_epoch`, as a training would have met it. Per rule: the epochs it trains over
all curves, and what it loses: the share of each curve's recorded best that the epoch it picks
(the best within the epochs it ran) falls short by. A rule that never ends before the end of a
recording is charged the whole recording.

The candidates are the study's rule today and variations of it (`RULES`); the verdict the
default study's choice rests on is printed under the table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caser.stopping import StoppingRule, stop_epoch  # noqa: E402

RULES = {
    "today: patience 10, min_delta 0.001": StoppingRule(patience=10, min_delta=0.001),
    "patience 10, min_delta 0": StoppingRule(patience=10),
    "patience 10, rel 0.5%": StoppingRule(patience=10, rel_delta=0.005),
    "patience 10, rel 0.25%": StoppingRule(patience=10, rel_delta=0.0025),
    "patience 10, growth 25%": StoppingRule(patience=10, patience_growth=0.25),
    "patience 10, rel 0.5%, growth 25%": StoppingRule(patience=10, rel_delta=0.005, patience_growth=0.25),
    "patience 10, rel 0.25%, growth 25%": StoppingRule(patience=10, rel_delta=0.0025, patience_growth=0.25),
    "patience 10, rel 0.5%, growth 25%, warm-up 20": StoppingRule(patience=10, rel_delta=0.005,
                                                                  patience_growth=0.25, warmup=20),
    "patience 10, growth 50%": StoppingRule(patience=10, patience_growth=0.5),
    "patience 10, rel 0.25%, growth 50%": StoppingRule(patience=10, rel_delta=0.0025, patience_growth=0.5),
    "patience 20, min_delta 0": StoppingRule(patience=20),
    "patience 5, min_delta 0": StoppingRule(patience=5),
    "patience 5, rel 0.5%, growth 25%, warm-up 20": StoppingRule(patience=5, rel_delta=0.005,
                                                                 patience_growth=0.25, warmup=20),
}
LOSS_TOLERATED = 0.01  # a rule losing more than 1% of a curve's best on any curve cut it short


def curves(paths: Sequence[Path]) -> list[tuple[str, list[float]]]:
    """(name, curve) for every arm of every run in the files."""
    out = []
    for path in paths:
        stored = json.loads(path.read_text())
        for key, run in sorted(stored["runs"].items()):
            out.append((f"{path.parent.name}/{key}", run["curve"]))
    return out


def replay(rule: StoppingRule, curve: list[float]) -> tuple[int, float]:
    """(epochs trained, share of the curve's best lost by the epoch picked within them)."""
    ran = stop_epoch(rule, curve)
    best = max(curve)
    return ran, (best - max(curve[:ran])) / best if best > 0 else 0.0


def table(named: list[tuple[str, list[float]]]) -> str:
    lines = ["| rule | epochs (all curves) | median loss | worst loss | curves losing > 1% |", "|---|---|---|---|---|"]
    worst: dict[str, list[str]] = {}
    for label, rule in RULES.items():
        results = [(name, *replay(rule, curve)) for name, curve in named]
        losses = [loss for _, _, loss in results]
        cut = [name for name, _, loss in results if loss > LOSS_TOLERATED]
        worst[label] = cut
        lines.append(f"| {label} | {sum(r[1] for r in results)} | {statistics.median(losses):.2%} | "
                     f"{max(losses):.2%} | {len(cut)} |")
    details = [f"- {label}: {', '.join(cut)}" for label, cut in worst.items() if cut]
    return "\n".join(lines) + ("\n\nCurves a rule cut short (loss above 1%):\n" + "\n".join(details) if details else "")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/stopping_replay.py", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path, help="curves.json files written by bench/selection.py")
    args = p.parse_args(argv)
    named = curves(args.files)
    print(f"{len(named)} curves from {len(args.files)} file(s)\n")
    print(table(named))
    return 0


if __name__ == "__main__":
    sys.exit(main())
