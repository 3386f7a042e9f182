"""Command-line flags for the config fields, and the command line that rebuilds a config.

Flag names are the field names (`--L`, `--neg-samples`), so a study, a trial and a command
line all speak the same names. Shared by `python -m caser.train` and the sweep.
"""
from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from typing import Any

from caser.config import DataConfig, ModelConfig, TrainConfig


HELP = {
    "L": "L, the number of previous items the convolutions see (default %(default)s)",
    "T": "T, the number of next items each window trains on (default %(default)s)",
    "d": "d, the embedding size of items and users (default %(default)s)",
    "nv": "nv, vertical filters (L x 1); 0 switches the branch off (default %(default)s)",
    "nh": "nh, horizontal filters per height 1..L; 0 switches the branch off (default %(default)s)",
    "ac_conv": "activation of the horizontal convolutions (default %(default)s)",
    "ac_fc": "activation of the fully connected layer (default %(default)s)",
    "dropout": "dropout on the convolutional features (default %(default)s)",
    "lr": "Adam learning rate (default %(default)s)",
    "l2": "Adam weight decay (default %(default)s)",
    "neg_samples": "negatives per window, resampled every epoch (default %(default)s)",
    "batch_size": "windows per batch (default %(default)s)",
    "epochs": "training epochs (default %(default)s)",
    "seed": "random seed: the same seed gives the same metrics on CPU (default %(default)s)",
}
DATA_FLAGS = {
    "format": ("--format", "input format: auto, triplets, quadruplets, movielens, ratings-dat, "
               "pairs, santander, gowalla (default %(default)s)"),
    "holdout": ("--holdout", "ratio: the paper's per-user 70/10/20 time split; loo: "
              "leave-one-out (default %(default)s)"),
    "train_frac": ("--train-frac", "ratio holdout: training fraction (default %(default)s)"),
    "val_frac": ("--val-frac", "ratio holdout: validation fraction (default %(default)s)"),
    "min_user_interactions": ("--min-user-interactions",
                              "k-core: drop users with fewer events, recursively (default: the "
                              "dataset's preset, 5 for ml-1m, 15 for gowalla, else 0)"),
    "min_item_interactions": ("--min-item-interactions",
                              "k-core: drop items with fewer events, recursively (default: the "
                              "dataset's preset, as above)"),
    "seed": ("--data-seed", "seed of the synthetic generator (default %(default)s)"),
}


_TYPES = {"str": str, "int": int, "float": float}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every ModelConfig and TrainConfig field, named after the field."""
    for cls in (ModelConfig, TrainConfig):
        group = parser.add_argument_group(cls.__name__)
        for f in fields(cls):
            kwargs: dict[str, Any] = {
                "type": type(f.default), "default": f.default, "help": HELP[f.name],
                "metavar": f.name.upper() if len(f.name) > 2 else f.name,
            }
            if f.name in ("ac_conv", "ac_fc"):
                kwargs["type"] = str
            group.add_argument(_flag(f.name), dest=f.name, **kwargs)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data and the flags for every other DataConfig field."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="synthetic", help="`synthetic` (embedded default), "
                       "`synthetic:users=U,items=I,interactions=N`, `ml-100k`, `ml-1m`, `gowalla`, "
                       "or a file path (default %(default)s)")
    for f in fields(DataConfig):
        if f.name in DATA_FLAGS:
            flag, text = DATA_FLAGS[f.name]
            kind = _TYPES[str(f.type).removesuffix(" | None")]  # None: the dataset's preset
            group.add_argument(flag, dest="data_" + f.name, type=kind, default=f.default,
                               help=text, metavar=f.name.upper())


def configs_from_args(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """Build the three configs from parsed flags (ValueError for impossible values)."""
    model = ModelConfig(**{f.name: getattr(args, f.name) for f in fields(ModelConfig)})
    train = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    data_fields = {name: getattr(args, "data_" + name) for name in DATA_FLAGS}
    data = DataConfig(spec=args.data, **data_fields)
    return model, train, data


def command_line(
    model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig, protocol: str = "test"
) -> str:
    """The exact `python -m caser.train ...` command that retrains this configuration."""
    parts = ["python -m caser.train", "--data", shlex.quote(data_config.spec)]
    defaults = DataConfig()
    for f in fields(DataConfig):
        if f.name in DATA_FLAGS and getattr(data_config, f.name) != getattr(defaults, f.name):
            parts += [DATA_FLAGS[f.name][0], str(getattr(data_config, f.name))]
    for cfg in (model_config, train_config):
        for f in fields(cfg):
            parts += [_flag(f.name), str(getattr(cfg, f.name))]
    return " ".join(parts + ["--protocol", protocol])
