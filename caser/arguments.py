"""Command-line flags for the config fields, and the command line that rebuilds a config.

Flag names are the field names (`--L`, `--neg-samples`), so a study, a trial and a command
line all speak the same names. Shared by `python -m caser.train` and the sweep.
"""
from __future__ import annotations

import argparse
import shlex
from dataclasses import MISSING, fields
from typing import Any, Mapping

from caser.config import MAX_TRAIN_SEED, DataConfig, ModelConfig, TrainConfig
from caser.errors import DataError


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
# Ranges the configs leave to the libraries (whose errors name no flag) or do not check:
# dest -> (lowest, highest or None). Training seeds are 32-bit in numpy and Lightning.
FLAG_RANGES = {
    "seed": (0, MAX_TRAIN_SEED), "data_seed": (0, None),
    "data_min_user_interactions": (0, None), "data_min_item_interactions": (0, None),
}  # fmt: skip


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
    """Build the three configs from parsed flags; an impossible value is a DataError naming its
    flag (`--L: L must be at least 1, got 0`)."""
    check_flag_ranges(args)
    model = build_config(ModelConfig, {f.name: getattr(args, f.name) for f in fields(ModelConfig)})
    train = build_config(TrainConfig, {f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    data_fields = {name: getattr(args, "data_" + name) for name in DATA_FLAGS}
    flags = {name: flag for name, (flag, _) in DATA_FLAGS.items()}
    data = build_config(DataConfig, {"spec": args.data, **data_fields}, flags)
    return model, train, data


def check_flag_ranges(args: argparse.Namespace) -> None:
    """Refuse a flag outside `FLAG_RANGES`, naming the flag and its range."""
    for dest, (low, high) in FLAG_RANGES.items():
        value = getattr(args, dest)
        if value is None or (low <= value and (high is None or value <= high)):
            continue
        flag = DATA_FLAGS[dest[len("data_") :]][0] if dest.startswith("data_") else _flag(dest)
        span = f"from {low} to {high}" if high is not None else f"from {low} up"
        raise DataError(f"{flag} must be {span}, got {value}")


def build_config(
    cls: type, values: Mapping[str, Any], flags: Mapping[str, str] | None = None
) -> Any:
    """`cls(**values)`, its ValueError turned into a DataError naming the flag(s) at fault:
    those whose value alone gives the same error, else the ones given other than the default
    (`--nv, --nh: nv = nh = 0 ...`). flags: field -> flag, default `--field-name`."""
    flags = flags or {name: _flag(name) for name in values}
    try:
        return cls(**values)
    except ValueError as err:
        message = str(err)
    named = [name for name in flags if _refusal(cls, {name: values[name]}) == message]
    if not named:
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        named = [name for name in flags if name in defaults and values[name] != defaults[name]]
    raise DataError(f"{', '.join(flags[name] for name in named)}: {message}") from None


def _refusal(cls: type, values: Mapping[str, Any]) -> str | None:
    """What `cls(**values)` raises as a ValueError, or None when it builds."""
    try:
        cls(**values)
    except ValueError as err:
        return str(err)
    return None


def command_line(
    model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig, protocol: str = "test"
) -> str:
    """The exact `python -m caser.train ...` command that retrains this configuration, every
    argument quoted for a POSIX shell (a stored value is data: it never becomes shell syntax)."""
    parts = ["python", "-m", "caser.train", "--data", data_config.spec]
    defaults = DataConfig()
    for f in fields(DataConfig):
        if f.name in DATA_FLAGS and getattr(data_config, f.name) != getattr(defaults, f.name):
            parts += [DATA_FLAGS[f.name][0], str(getattr(data_config, f.name))]
    for cfg in (model_config, train_config):
        for f in fields(cfg):
            parts += [_flag(f.name), str(getattr(cfg, f.name))]
    return shlex.join(parts + ["--protocol", protocol])
