"""Section 7, reproduce: the exact `python -m caser.train ...` command that retrains the best
trial on train+validation for its best epoch and evaluates it on test."""
from __future__ import annotations

import shlex
from dataclasses import replace

from caser.config import DataConfig, ModelConfig, TrainConfig
from search.errors import StudyError
from search.report.view import StudyView

# Flag order of `python -m caser.train`, used only when caser.arguments.command_line is missing.
MODEL_FLAGS = ("L", "T", "d", "nv", "nh", "ac_conv", "ac_fc", "dropout")
TRAIN_FLAGS = ("lr", "l2", "neg_samples", "batch_size", "epochs", "seed")


def command_line(model: ModelConfig, train: TrainConfig, data: DataConfig) -> str:
    """caser's own command line (caser.arguments) when it has one, else the flags built here."""
    try:
        # caser.arguments, not caser.train: the same function without importing torch.
        from caser.arguments import command_line as caser_command_line
    except ImportError:
        return fallback_command_line(model, train, data)
    return caser_command_line(model, train, data, split="test")


def fallback_command_line(model: ModelConfig, train: TrainConfig, data: DataConfig) -> str:
    args = ["python", "-m", "caser.train", "--data", data.spec]
    for name in MODEL_FLAGS:
        args += [f"--{name.replace('_', '-')}", str(getattr(model, name))]
    for name in TRAIN_FLAGS:
        args += [f"--{name.replace('_', '-')}", str(getattr(train, name))]
    args += ["--split", "test"]
    return shlex.join(args)


def reproduce_section(view: StudyView) -> str:
    ranked = view.ranked()
    head = "## Reproduce the best trial"
    if not ranked:
        return f"{head}\n\nNo complete trial."
    best = ranked[0]
    try:
        model, train = view.configs(best)
    except StudyError as exc:
        return f"{head}\n\nNo command: {exc}."
    epochs = int(best.user_attrs.get("best_epoch") or train.epochs)
    train = replace(train, epochs=epochs)
    command = command_line(model, train, view.data_config())
    lead = (
        f"Trial {best.number} ({view.metric} {best.value:.4f} at epoch {epochs}), retrained on "
        "train+validation and evaluated on test:"
    )
    return "\n\n".join([head, lead, f"```bash\n{command}\n```"])
