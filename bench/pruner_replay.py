"""Which pruner suits a study: replay unpruned sweeps' learning curves through every pruner.

    python sweep.py --trials 30 --pruner none --seed 0 --runs-dir /tmp/none0   # one per seed
    python bench/pruner_replay.py /tmp/none0/default.db /tmp/none1/default.db
    python bench/pruner_replay.py --grid /tmp/none0/default.db /tmp/none1/default.db

Each finished trial of the recorded sweep is replayed in order into an in-memory study with
the candidate pruner (built from the study file's `[pruners.*]` tables), reporting its curve
epoch by epoch until the pruner stops it. Printed per sweep: the share of the epochs saved,
the replayed best as a share of the recorded best, and the first trial a real pruned sweep
would sample differently.

The trials' order and configurations are the recorded ones, which a real pruned sweep with
the same seed repeats only while TPE sees the same good trials. After its random start-up
trials, TPE models its next configuration on the best tenth of the trials so far
(`default_gamma`) against the rest, and a pruned trial counts among the rest. So the real
sweep samples what the recorded one did until a trial that would have finished in that best
tenth is pruned; from then on it samples other configurations, and its best is another draw.
"path kept" means that never happens. (Checked against real pruned sweeps of the default
study: the first differing trial was the predicted one in all seven.)
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import sys
from pathlib import Path
from typing import Callable

import optuna
from optuna.samplers._tpe.sampler import default_gamma  # the size of TPE's "good" group

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.strategy import SuccessiveHalvingOverEpochs, make_pruner  # noqa: E402
from search.studyfile import PRUNERS, load_study_spec  # noqa: E402

TPE_STARTUP_TRIALS = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default


def recorded_curves(db: str, study_name: str) -> list[list[float]]:
    """The per-epoch values of every completed trial, in trial order."""
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{db}")
    return [[t.intermediate_values[step] for step in sorted(t.intermediate_values)]
            for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def replay(curves: list[list[float]], pruner: optuna.pruners.BasePruner,
           direction: str) -> tuple[int, float, int | None]:
    """(epochs trained, best completed value, first trial sampled differently or None) when
    `pruner` decides after every epoch."""
    study = optuna.create_study(direction=direction, pruner=pruner, study_name="replay")  # Hyperband hashes the name
    epochs = 0
    finals = [c[-1] if direction == "maximize" else -c[-1] for c in curves]
    pruned: set[int] = set()
    diverges_at = None
    for number, curve in enumerate(curves):
        best_tenth = sorted(range(number), key=lambda i: -finals[i])[:default_gamma(number)]
        if diverges_at is None and number >= TPE_STARTUP_TRIALS and pruned.intersection(best_tenth):
            diverges_at = number
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
            epochs += 1
            if step < len(curve) - 1 and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned.add(number)
                break
        else:
            study.tell(trial, curve[-1])
    return epochs, study.best_value, diverges_at


def grid() -> list[tuple[str, Callable[[], optuna.pruners.BasePruner]]]:
    """Settings of the two pruners that can cut hardest, for `--grid`."""
    settings = [(f"percentile {p:g}, startup {st}, warmup {wu}",
                 lambda p=p, st=st, wu=wu: optuna.pruners.PercentilePruner(
                     percentile=p, n_startup_trials=st, n_warmup_steps=wu))
                for p, st, wu in itertools.product([20, 25, 30, 35, 40, 50], [3, 5, 8], [0, 1, 2, 3])]
    settings += [(f"successive halving, min_resource {mr}, reduction {rf}, early stop rate {es}",
                  lambda mr=mr, rf=rf, es=es: SuccessiveHalvingOverEpochs(
                      min_resource=mr, reduction_factor=rf, min_early_stopping_rate=es))
                 for mr, rf, es in itertools.product([1, 2, 3], [2, 3, 4], [0, 1])]
    return settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dbs", nargs="+", help="SQLite files of unpruned sweeps (--pruner none)")
    p.add_argument("--study", default="default", help="study file whose pruner tables are used")
    p.add_argument("--grid", action="store_true",
                   help=f"instead of the study's pruners, try {len(grid())} settings of the percentile and "
                        "successive halving pruners; print those whose best is within 2%% of the "
                        "recorded best in every sweep, the most saving (in the worst sweep) first")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_study_spec(args.study)
    runs = [(db, recorded_curves(db, spec.name)) for db in args.dbs]
    candidates = grid() if args.grid else [
        (name, lambda name=name: make_pruner(spec.with_overrides(pruner=name))) for name in PRUNERS]
    best_of = min if spec.direction == "minimize" else max
    rows = []
    for label, pruner in candidates:
        cells = []
        for _, curves in runs:
            full, best = sum(map(len, curves)), best_of(c[-1] for c in curves)
            epochs, replayed, diverges_at = replay(curves, pruner(), spec.direction)
            cells.append((1 - epochs / full, replayed / best, diverges_at))
        rows.append((label, cells))
    if args.grid:
        rows = [row for row in rows if all(abs(kept - 1) <= 0.02 for _, kept, _ in row[1])]
        rows.sort(key=lambda row: -min(saved for saved, _, _ in row[1]))
        print(f"{len(rows)} of {len(candidates)} settings keep the best within 2% in every sweep.\n")
    print("| pruner | " + " | ".join(Path(db).parent.name for db, _ in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(
            f"saved {saved:.0%}, best {kept:.1%}, "
            + ("path kept" if diverges_at is None else f"path differs from #{diverges_at}")
            for saved, kept, diverges_at in cells) + " |")


if __name__ == "__main__":
    main()
