"""Train and evaluate ONE Caser configuration.

    python -m caser.train --data synthetic --epochs 20
    python -m caser.train --data ../shared/data/ml-100k/u.data --epochs 20 --protocol test --json

`fit(...)` is the testable core that the sweep also calls; `main()` is a thin CLI over it.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import lightning.pytorch as pl
import numpy as np
import torch

from caser.arguments import add_config_arguments, add_data_arguments, build_config, configs_from_args
from caser.callbacks import EpochHistory, SaveLast, quiet_lightning
from caser.config import ModelConfig, TrainConfig
from caser.data_module import PROTOCOLS, CaserDataModule, PreparedData
from caser.errors import DataError
from caser.memory import check_memory, memory_needed
from caser.module import CaserModule, Diverged
from caser.stopping import StoppingRule, stop_reason

if TYPE_CHECKING:
    from caser.splits import Split

PREFIX = {"validation": "val", "test": "test"}


@dataclass
class FitResult:
    """What one training gives: final metrics, the per-epoch history and its best epoch."""

    metrics: dict[str, float]  # the last evaluation, e.g. {"val/map": ...}
    # per epoch: epoch, train/loss, its metrics when evaluated, time_s = train_time_s + eval_time_s
    history: list[dict[str, float]] = field(default_factory=list)
    num_params: int = 0
    wall_time_s: float = 0.0
    # The last evaluation per user: the evaluated user ids and each one's average precision.
    eval_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    user_ap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stop_reason: str = ""  # caser.stopping: patience, budget or stopped (by a callback such as a pruner)

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def best(self, monitor: str) -> dict[str, float] | None:
        """The history row with the highest `monitor` (first one on ties), or None."""
        rows = [r for r in self.history if monitor in r]
        return max(rows, key=lambda r: r[monitor]) if rows else None


ACCELERATORS = ("auto", "cpu", "gpu")


def check_accelerator(accelerator: str) -> None:
    """Refuse `gpu` where torch sees none, in one line, before Lightning would in a traceback."""
    if accelerator not in ACCELERATORS:
        raise DataError(f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {accelerator!r}")
    if accelerator == "gpu" and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        raise DataError("--accelerator gpu: torch sees no GPU on this machine; use cpu or auto")


def fit(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data: Split | PreparedData,
    protocol: str = "validation",
    *,
    callbacks: Sequence[pl.Callback] = (),
    logger: Any = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    accelerator: str = "cpu",
    ckpt_path: str | None = None,
    eval_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    stopping: StoppingRule | None = None,
) -> FitResult:
    """Train the model of `model_config` as `train_config` says on `data`, and evaluate it.

    protocol "validation": train on train, evaluate validation every epoch (the sweep's);
    protocol "test": train on train + validation, evaluate test after the last epoch (the
    final numbers; evaluating test every epoch would invite peeking). eval_every overrides.
    checkpoint_dir: write `last.ckpt` there after every epoch; ckpt_path resumes from one
    (the history then holds only the epochs trained now).
    stopping: end before the budget (train_config.epochs) when the evaluated metric stalls; it
    needs an evaluation every epoch, so the validation protocol.
    Raises `Diverged` when the loss becomes NaN or infinite, `DataError` when nobody has a
    held-out item to evaluate or the accelerator is not there, `caser.memory.TooLarge` (a
    DataError) when the configuration would need more memory than the machine has.
    """
    prepared = data if isinstance(data, PreparedData) else PreparedData(data)
    if protocol not in PREFIX:
        raise ValueError(f"protocol must be 'validation' or 'test', got {protocol!r}")
    check_accelerator(accelerator)
    if not prepared.has_eval_users(protocol):
        # Lightning would skip the evaluation with a warning and the run would "succeed" bare.
        raise DataError(f"no user has a {protocol} item to evaluate on: the data is too small "
                        "for the split, or the split holds nothing out (--val-frac, --train-frac)")
    needed = memory_needed(model_config, train_config, prepared, protocol)
    check_memory(needed)  # before allocating anything
    if accelerator in ("gpu", "auto") and torch.cuda.is_available():  # the model trains there
        check_memory(needed, torch.cuda.mem_get_info()[0], " on the GPU")
    early_stop = stopping.callback() if stopping is not None else None
    if early_stop is not None and protocol != "validation":
        raise ValueError("early stopping watches the validation metric: use the validation protocol")
    quiet_lightning()
    # A weight that only weight decay moves (a dead ReLU filter, say) shrinks geometrically into
    # float32's subnormal range, where a CPU multiply is far slower than a normal one and later
    # epochs slow down (docs/measurements.md). Flushing subnormals to zero alters only values
    # below 1.2e-38 (TensorFlow does the same on CPU).
    torch.set_flush_denormal(True)
    pl.seed_everything(train_config.seed, verbose=False)
    datamodule = CaserDataModule(
        prepared, model_config.L, model_config.T, train_config.neg_samples, train_config.batch_size,
        train_config.seed, protocol,
    )
    module = CaserModule(
        prepared.num_users, prepared.num_items, model_config, train_config, datamodule.eval_set,
        PREFIX[protocol],
    )
    every = eval_every or (1 if protocol == "validation" else train_config.epochs)
    history = EpochHistory(on_epoch)
    trainer = pl.Trainer(
        max_epochs=train_config.epochs,
        accelerator=accelerator,
        devices=1,
        logger=logger,
        callbacks=[history, *([early_stop] if early_stop else []), *callbacks,
                   *([SaveLast(checkpoint_dir)] if checkpoint_dir else [])],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=every,
    )
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as exc:
        # Lightning turns Ctrl-C into sys.exit(1) and ignores SIGINT from then on: give the
        # caller its KeyboardInterrupt back, and Ctrl-C its meaning.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from exc
    wall = time.perf_counter() - start
    return FitResult(
        metrics=dict(module.last_eval),
        history=history.rows,
        num_params=sum(p.numel() for p in module.parameters()),
        wall_time_s=wall,
        eval_users=datamodule.eval_set.users.numpy(),
        user_ap=module.last_user_ap,
        stop_reason=stop_reason(early_stop, trainer.current_epoch, train_config.epochs),
    )


def _format_row(row: dict[str, float], epochs: int) -> str:
    shown = [f"epoch {int(row['epoch']):>3}/{epochs}", f"loss {row['train/loss']:.4f}"]
    shown += [f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("/map", "/prec@10", "/recall@10"))]
    return "  ".join(shown + [f"({row['time_s']:.1f}s)"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caser.train",
        description="Train and evaluate one Caser configuration (Tang & Wang, WSDM 2018). "
        "Defaults are the original implementation's.",
    )
    add_data_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument("--protocol", "--split", choices=PROTOCOLS, default="validation",
                        help="validation: train on train, score validation every epoch; test: "
                        "train on train+validation, score test at the end (default %(default)s; "
                        "--split is its earlier name)")
    parser.add_argument("--accelerator", choices=ACCELERATORS, default="cpu",
                        help="where to train; auto uses a GPU when present (default %(default)s)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many evaluations without improvement of the "
                        "validation MAP; --epochs is then the budget (default: train every epoch)")
    parser.add_argument("--min-delta", type=float, default=0.0,
                        help="the improvement --patience counts as one (default %(default)s)")
    parser.add_argument("--rel-delta", type=float, default=0.0,
                        help="...or, when larger, this share of the best so far (default %(default)s)")
    parser.add_argument("--patience-growth", type=float, default=0.0,
                        help="patience grows to this share of the epoch of the best (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="evaluations before patience may end the training (default %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="make the last line one JSON object of the final metrics")
    args = parser.parse_args(argv)
    from caser.datasets import load_split  # data readers are only needed when running

    try:
        model_config, train_config, data_config = configs_from_args(args)
        stopping = None
        rule = ("patience", "min_delta", "rel_delta", "patience_growth", "warmup")
        if args.patience is not None or any(getattr(args, k) for k in rule[1:]):
            stopping = build_config(StoppingRule, {"monitor": "val/map", **{k: getattr(args, k) for k in rule}},
                                    {k: "--" + k.replace("_", "-") for k in rule})
        loaded_at = time.perf_counter()
        split = load_split(data_config)
        print(f"data {data_config.spec}: {split.train.num_users} users, {split.train.num_items} items, "
              f"loaded in {time.perf_counter() - loaded_at:.1f}s", file=sys.stderr)
        result = fit(model_config, train_config, split, args.protocol, accelerator=args.accelerator,
                     stopping=stopping,
                     on_epoch=lambda row: print(_format_row(row, train_config.epochs), file=sys.stderr,
                                                flush=True))
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Diverged as exc:
        print(f"error: {exc}; try a smaller --lr", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    for k, v in result.metrics.items():
        print(f"{k:<16} {v:.4f}")
    print(f"{result.num_params} parameters, {result.epochs_run} epochs in {result.wall_time_s:.1f}s "
          f"(ended by {result.stop_reason})")
    if args.json:
        print(json.dumps(result.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
