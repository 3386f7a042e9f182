"""Which pruner suits a study: replay unpruned sweeps' learning curves through every pruner.

    python sweep.py --trials 30 --pruner none --seed 0 --runs-dir /tmp/none0   # one per seed
    python bench/pruner_replay.py /tmp/none0/default.db /tmp/none1/default.db

Each finished trial of the recorded sweep is replayed in order into an in-memory study with
the candidate pruner (built from the study file's `[pruners.*]` tables), reporting its curve
epoch by epoch until the pruner stops it. Printed per sweep: the share of the epochs saved
and the replayed best as a share of the recorded best. The trials' order and configurations
are the recorded ones: in a real pruned sweep the sampler sees pruned values and may then
propose other configurations, so this measures the pruner's decisions, not the sampler's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.runner import make_pruner  # noqa: E402
from search.studyfile import PRUNERS, load_study_spec  # noqa: E402


def recorded_curves(db: str, study_name: str) -> list[list[float]]:
    """The per-epoch values of every completed trial, in trial order."""
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{db}")
    return [[t.intermediate_values[step] for step in sorted(t.intermediate_values)]
            for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def replay(curves: list[list[float]], pruner: optuna.pruners.BasePruner, direction: str) -> tuple[int, float]:
    """(epochs trained, best completed value) when `pruner` decides after every epoch."""
    study = optuna.create_study(direction=direction, pruner=pruner, study_name="replay")  # Hyperband hashes the name
    epochs = 0
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
            epochs += 1
            if step < len(curve) - 1 and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
    return epochs, study.best_value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dbs", nargs="+", help="SQLite files of unpruned sweeps (--pruner none)")
    p.add_argument("--study", default="default", help="study file whose pruner tables are used")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_study_spec(args.study)
    runs = [(db, recorded_curves(db, spec.name)) for db in args.dbs]
    print("| pruner | " + " | ".join(Path(db).parent.name for db, _ in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    best_of = min if spec.direction == "minimize" else max
    for name in PRUNERS:
        cells = []
        for _, curves in runs:
            full, best = sum(map(len, curves)), best_of(c[-1] for c in curves)
            epochs, replayed = replay(curves, make_pruner(spec.with_overrides(pruner=name)), spec.direction)
            cells.append(f"saved {1 - epochs / full:.0%}, best {replayed / best:.1%}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
