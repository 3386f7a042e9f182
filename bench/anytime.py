"""Anytime performance of pruning: best-so-far validation value against the training spent.

    python bench/anytime.py                                    # the default study, 3 seeds per arm
    python bench/anytime.py --trials 8 --max-epochs 12 --data synthetic:users=400,items=300,interactions=8000

The standard test of multi-fidelity methods (Hyperband, BOHB, ASHA papers): the same study is
run with several seeds for each arm, {the study's pruner, median, none}; for every run the best
validation value of the COMPLETE trials so far is followed against the cumulative epochs (and
seconds) its trials trained, pruned ones included. Written to --out: anytime.png (median and
interquartile range over seeds, against epochs and against seconds), anytime.md (the table
printed at the end) and anytime.json (every run's curve).

The table reads each arm at 25%, 50% and 100% of the unpruned arm's budget (the median over
seeds of the epochs its runs trained) and says whether the chosen pruner reaches the unpruned
arm's median final best within 50% of those epochs (median over seeds). A run's study is kept
in --out/<arm>-s<seed>/: running the command again reads it instead of training again.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.studyfile import PRUNERS, load_study_spec  # noqa: E402
from search.workers import torch_threads  # noqa: E402

FRACTIONS = (0.25, 0.5, 1.0)  # of the unpruned arm's budget
TARGET_SHARE = 0.5  # the chosen pruner should reach the unpruned final best within this share


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/anytime.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default="default", help="study name or TOML path (default %(default)s)")
    p.add_argument("--trials", type=int, default=20, help="finished trials per run (default %(default)s)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm, 0..S-1 (default %(default)s)")
    p.add_argument("--arms", help="comma-separated pruners (default: the study's, median, none)")
    p.add_argument("--max-epochs", type=int, help="override the study's epoch budget")
    p.add_argument("--patience", type=int, help="override the study's patience (0: none)")
    p.add_argument("--min-delta", type=float, help="override the study's min_delta")
    p.add_argument("--data", help="override the study's data (a smaller synthetic set for a quick run)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each with cores/jobs threads (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/anytime"), help="output folder (default %(default)s)")
    return p.parse_args(argv)


def study_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"data_spec": args.data, "max_epochs": args.max_epochs, "patience": args.patience,
            "min_delta": args.min_delta}


def run_one(study: str, overrides: dict[str, Any], arm: str, seed: int, trials: int, out: Path,
            threads: int) -> dict[str, Any]:
    """One sweep (arm, seed), resumed if stored; returns its trials' costs and values."""
    import optuna
    import torch

    from search.data import prepare_data
    from search.options import SweepOptions
    from search.runner import run_sweep
    from search.study import open_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    spec = load_study_spec(study).with_overrides(pruner=arm, seed=seed, **overrides)
    runs_dir = out / f"{arm}-s{seed}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    options = SweepOptions(n_trials=trials, runs_dir=runs_dir)
    handle = open_study(spec, f"sqlite:///{runs_dir / 'study.db'}", options)
    run_sweep(spec, handle, prepare_data(spec), options, lambda line: print(f"[{arm} s{seed}] {line}", flush=True))
    return {"arm": arm, "seed": seed, "direction": spec.direction, "max_epochs": spec.max_epochs,
            "patience": spec.patience, "min_delta": spec.min_delta, "trials": trial_costs(handle)}


def trial_costs(study: Any) -> list[dict[str, Any]]:
    """Per finished trial in the order they ran: epochs, seconds, value (None unless COMPLETE)."""
    from optuna.trial import TrialState

    from search import record

    rows = []
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                    key=lambda t: t.datetime_complete):
        rows.append({"number": t.number, "epochs": record.epochs_run(t), "seconds": record.trial_time(t) or 0.0,
                     "value": t.value if t.state == TrialState.COMPLETE else None,
                     "stop_reason": t.user_attrs.get(record.STOP_REASON), "is_default": record.is_default(t)})
    return rows


def curve(run: dict[str, Any], cost: str) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative cost after each trial, and the best value of the complete trials so far
    (nan before the first; higher is better after the sign flip for minimising studies)."""
    sign = 1.0 if run["direction"] == "maximize" else -1.0
    spent, best, xs, ys = 0.0, -math.inf, [], []
    for row in run["trials"]:
        spent += row[cost]
        if row["value"] is not None and math.isfinite(row["value"]):
            best = max(best, sign * row["value"])
        xs.append(spent)
        ys.append(best if math.isfinite(best) else math.nan)
    return np.array(xs), np.array(ys)


def value_at(run: dict[str, Any], cost: str, x: float) -> float:
    """Best-so-far after the trials that finished within cost x."""
    xs, ys = curve(run, cost)
    done = ys[xs <= x]
    return float(done[-1]) if len(done) else math.nan


def cost_to_reach(run: dict[str, Any], cost: str, target: float) -> float:
    xs, ys = curve(run, cost)
    reached = xs[np.nan_to_num(ys, nan=-math.inf) >= target]
    return float(reached[0]) if len(reached) else math.inf


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median and interquartile range, ignoring runs with no value yet."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan, math.nan
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    return float(med), float(q1), float(q3)


def summarise(runs: list[dict[str, Any]], arms: list[str]) -> tuple[str, bool | None]:
    """The markdown table with a verdict per pruned arm, and whether the chosen pruner (arms[0])
    meets the target."""
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in arms}
    unpruned = by_arm.get("none") or []
    total = lambda r, cost: sum(row[cost] for row in r["trials"])  # noqa: E731
    budget = float(np.median([total(r, "epochs") for r in unpruned])) if unpruned else math.nan
    first = runs[0]
    lines = [f"max_epochs {first['max_epochs']}, patience {first['patience'] or 'none'}, "
             f"min_delta {first['min_delta']:g}; {len(first['trials'])} trials a run; "
             f"unpruned budget (median epochs over seeds): {budget:g}", "",
             "| arm | seeds | epochs (median) | seconds (median) | "
             + " | ".join(f"best at {int(f * 100)}% (IQR)" for f in FRACTIONS) + " |",
             "|---|---|---|---|" + "---|" * len(FRACTIONS)]
    for arm, arm_runs in by_arm.items():
        cells = []
        for fraction in FRACTIONS:
            med, q1, q3 = spread([value_at(r, "epochs", fraction * budget) for r in arm_runs])
            cells.append(f"{med:.4f} ({q1:.4f}-{q3:.4f})")
        lines.append(f"| {arm} | {len(arm_runs)} | {np.median([total(r, 'epochs') for r in arm_runs]):g} | "
                     f"{np.median([total(r, 'seconds') for r in arm_runs]):.0f} | " + " | ".join(cells) + " |")
    meets_target: dict[str, bool] = {}
    target = spread([value_at(r, "epochs", math.inf) for r in unpruned])[0] if unpruned else math.nan
    pruned_arms = [a for a in arms if a != "none"] if unpruned else []
    for arm in pruned_arms:
        costs = [cost_to_reach(r, "epochs", target) for r in by_arm[arm]]
        needed, missed = float(np.median(costs)), sum(math.isinf(c) for c in costs)
        meets = meets_target[arm] = needed <= TARGET_SHARE * budget
        never = f"; {missed} of {len(costs)} seeds never reach it" if missed else ""
        reach = (f"after {needed:g} epochs (median over seeds{never}) = {needed / budget:.0%} of the unpruned budget"
                 if math.isfinite(needed) else f"in only {len(costs) - missed} of {len(costs)} seeds")
        lines += ["", f"{arm} reaches the unpruned median final best {target:.4f} {reach}: "
                  f"{'within' if meets else 'NOT within'} {TARGET_SHARE:.0%}."]
    return "\n".join(lines), meets_target.get(arms[0])


def plot(runs: list[dict[str, Any]], arms: list[str], path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, cost, label in ((axes[0], "epochs", "cumulative training epochs"),
                            (axes[1], "seconds", "cumulative trial seconds")):
        end = max(sum(row[cost] for row in r["trials"]) for r in runs)
        grid = np.linspace(0, end, 400)
        for arm in arms:
            values = np.array([[value_at(r, cost, x) for x in grid] for r in runs if r["arm"] == arm])
            # Drawn from where every seed has a complete trial: a median over fewer seeds
            # could fall when another seed's first value comes in.
            values[:, np.isnan(values).any(axis=0)] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns before that
                q1, med, q3 = np.nanpercentile(values, [25, 50, 75], axis=0)
            ax.plot(grid, med, label=f"{arm} (median of {len(values)} seeds)")
            ax.fill_between(grid, q1, q3, alpha=0.2)
        ax.set_xlabel(label)
        ax.set_ylabel(f"best {metric} so far")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Anytime performance: median and interquartile range over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = load_study_spec(args.study).with_overrides(**{k: v for k, v in study_overrides(args).items()})
    arms = list(dict.fromkeys(args.arms.split(",") if args.arms else [spec.pruner, "median", "none"]))
    if any(arm not in PRUNERS for arm in arms) or args.trials < 1 or args.seeds < 1 or args.jobs < 1:
        print(f"error: arms must be among {', '.join(PRUNERS)}; --trials, --seeds, --jobs >= 1", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    threads = torch_threads(args.jobs)
    jobs = [(args.study, study_overrides(args), arm, seed, args.trials, args.out, threads)
            for seed in range(args.seeds) for arm in arms]
    if args.jobs == 1:
        runs = [run_one(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, *zip(*jobs)))
    (args.out / "anytime.json").write_text(json.dumps(runs, indent=1))
    plot(runs, arms, args.out / "anytime.png", spec.metric)
    table, _ = summarise(runs, arms)
    (args.out / "anytime.md").write_text(table + "\n")
    print(table)
    print(f"\nwritten: {args.out / 'anytime.png'}, {args.out / 'anytime.md'}, {args.out / 'anytime.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
