"""Why a selection made on validation does not hold on test: learning curves of the study's top
configurations and the default, under each validation protocol and on test, replayed offline.

    python bench/selection.py --storage sqlite:///runs/default.db --top 4 --seeds 3 --out runs/selection
    python bench/selection.py --out runs/selection --analyse       # the tables again, no training

For every configuration (the study's top K complete trials and the default) and seed 0..S-1,
three trainings record a metric every epoch, each until `--budget` epochs or `--record-patience`
epochs without a new best (generous, so that every stopping rule replayed afterwards ends
inside the recorded curve):

- `paper`: trains on the first 70% of each user, scores the next 10% (the paper's validation,
  `train_frac` 0.7, `val_frac` 0.1) and, from the same train-only model, the last 20% given the
  first 80% as history (test without retraining);
- `forward`: trains on the first 60%, scores the next 20% (forward chaining at equal horizons:
  validation scores a window as long as test's; `train_frac` 0.6, `val_frac` 0.2);
- `test`: trains on the first 80% and scores the last 20% every epoch. Its value after e
  epochs is what the final evaluation's retraining for e epochs scores (the same seed draws the
  same batches, negatives and dropout; evaluation draws nothing), so one run gives every
  epoch count, the best one on test included.

The curves go to `--out/curves.json` (a run already there is not trained again). The analysis
replays stopping rules on them (`bench/selection_analysis.py`) and prints, per factor of the
reversal (validation horizon, retraining, the epoch count picked, the stopping rule's
min_delta), each configuration's test MAP against the default's and Kendall's tau between the
validation ranking and the test ranking.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARMS = ("paper", "forward", "test")
FRACTIONS = {"paper": (0.7, 0.1), "forward": (0.6, 0.2), "test": (0.7, 0.1)}  # test: any 80% split


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/selection.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--storage", help="the study whose top configurations to take (an Optuna storage URL)")
    p.add_argument("--data", help="without --storage: record only the original defaults, on this data")
    p.add_argument("--arms", default=",".join(ARMS), help="which trainings to record (default %(default)s)")
    p.add_argument("--study", default="default", help="its name (default %(default)s)")
    p.add_argument("--top", type=int, default=4, help="top complete trials, besides the default (default %(default)s)")
    p.add_argument("--trials", help="comma-separated trial numbers to take instead of the top K")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1 (default %(default)s)")
    p.add_argument("--budget", type=int, default=300, help="epochs at most per run (default %(default)s)")
    p.add_argument("--record-patience", type=int, default=30,
                   help="a run ends after this many epochs without a new best (default %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/selection"), help="output folder (default %(default)s)")
    p.add_argument("--analyse", action="store_true", help="only print the tables of the curves in --out")
    return p.parse_args(argv)


def configurations(storage: str, name: str, top: int, numbers: str | None) -> list[dict[str, Any]]:
    """The configurations to record: label, model and train fields, data fields, and the
    trial's value at the study's budget."""
    import optuna

    from search.report.final import candidates
    from search.report.view import StudyView

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    view = StudyView.of(optuna.load_study(study_name=name, storage=storage))
    chosen = candidates(view, top)
    if numbers:
        wanted = {f"trial_{int(n):04d}" for n in numbers.split(",")}
        everyone = candidates(view, len(view.ranked()))
        chosen = [c for c in everyone if c.key in wanted or c.is_default]
    return [{"key": c.key, "label": c.label, "is_default": c.is_default, "budget_value": c.budget_value,
             "model": asdict(c.model_config), "train": asdict(c.train_config),
             "data": asdict(view.data_config())} for c in chosen]


def defaults_on(data: str) -> dict[str, Any]:
    """The original defaults as the one configuration, on `data` (the paper's fractions)."""
    from caser.config import DataConfig, ModelConfig, TrainConfig

    return {"key": "default", "label": "defaults", "is_default": True, "budget_value": None,
            "model": asdict(ModelConfig()), "train": asdict(TrainConfig()), "data": asdict(DataConfig(spec=data))}


_PREPARED: dict[Any, Any] = {}


def record(config: dict[str, Any], arm: str, seed: int, budget: int, patience: int) -> dict[str, Any]:
    """One training of `config` under `arm` with `seed` (see the module docstring)."""
    import logging
    import time

    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    from caser.config import DataConfig, ModelConfig, TrainConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.evaluation import evaluate
    from caser.stopping import StoppingRule
    from caser.train import fit

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    train_frac, val_frac = FRACTIONS[arm]
    data = replace(DataConfig(**config["data"]), train_frac=train_frac, val_frac=val_frac)
    if data not in _PREPARED:
        _PREPARED[data] = PreparedData(load_split(data))
    prepared = _PREPARED[data]
    model = ModelConfig(**config["model"])
    train = TrainConfig(**{**config["train"], "seed": seed, "epochs": budget})
    extra: list[float] = []

    class TestFromTrainOnly(pl.Callback):
        """The train-only model's test MAP, every epoch (history: the first 80%)."""

        def __init__(self) -> None:
            self.eval_set = prepared.eval_set("test", model.L)

        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            extra.append(evaluate(module.net, self.eval_set, "test")["test/map"])

    started = time.perf_counter()
    if arm == "test":
        # Twice the patience: the epoch counts validation picks must lie inside this curve.
        stop = EarlyStopping(monitor="test/map", patience=2 * patience, mode="max", check_on_train_epoch_end=False)
        result = fit(model, train, prepared, "test", eval_every=1, callbacks=[stop])
        curve = [row["test/map"] for row in result.history]
    else:
        result = fit(model, train, prepared, "validation", callbacks=[TestFromTrainOnly()],
                     stopping=StoppingRule(monitor="val/map", patience=patience, min_delta=0.0))
        curve = [row["val/map"] for row in result.history]
    return {"key": config["key"], "arm": arm, "seed": seed, "curve": curve, "test_from_train_only": extra,
            "seconds": time.perf_counter() - started}


def run_key(key: str, arm: str, seed: int) -> str:
    return f"{key}/{arm}/seed_{seed}"


def train_missing(args: argparse.Namespace) -> dict[str, Any]:
    path = args.out / "curves.json"
    stored = json.loads(path.read_text()) if path.is_file() else {"configs": [], "runs": {}}
    known = {c["key"] for c in stored["configs"]}
    new = configurations(args.storage, args.study, args.top, args.trials) if args.storage else []
    if args.data and not stored["configs"]:
        new = [defaults_on(args.data)]
    stored["configs"] += [c for c in new if c["key"] not in known]
    arms = args.arms.split(",")
    todo = [(c, arm, seed) for c in stored["configs"] for seed in range(args.seeds) for arm in arms
            if run_key(c["key"], arm, seed) not in stored["runs"]]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} runs to train, {len(stored['runs'])} stored", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(record, c, arm, seed, args.budget, args.record_patience) for c, arm, seed in todo]
        for future in futures:
            run = future.result()
            stored["runs"][run_key(run["key"], run["arm"], run["seed"])] = run
            path.write_text(json.dumps(stored))  # after every run: an interrupted bench loses one
            print(f"{run['key']} {run['arm']} seed {run['seed']}: {len(run['curve'])} epochs, best "
                  f"{max(run['curve']):.4f} ({run['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return stored


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyse:
        stored = json.loads((args.out / "curves.json").read_text())
    else:
        stored = train_missing(args)
    from bench.selection_analysis import analyse

    print(analyse(stored, seeds=args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
