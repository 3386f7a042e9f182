"""Turn a `DataConfig` into sequences and a train / validation / test split: read, filter, split.

    from caser.datasets import load_split
    split = load_split(DataConfig(spec="ml-1m", holdout="loo"))

`cfg.spec` names the data:
- `synthetic`: the embedded generator with its default knobs and seed `cfg.seed`;
- `synthetic:users=6040,items=3706,interactions=1000000`: the same generator at a given size;
- a name in `caser.catalogue` (`ml-100k`, `ml-1m`, `gowalla`): the published file, fetched once
  into `$CASER_CACHE/<name>/` (default cache `~/.cache/caser-sweep`) and checked against its
  digest (`caser.downloads`); offline, a DataError says which URL to fetch and where to put it;
- anything else: a file path, read with `read_interactions(path, cfg.format)`.

Why one entry point: the sweep, the tests and the benchmarks must see exactly the same data for a
config, so the read -> k-core -> split order lives here and nowhere else. The k-core minimums are
cfg's, which hold the dataset's preset unless given (see `DataConfig`).
"""
from __future__ import annotations

from pathlib import Path

from caser.catalogue import CATALOGUE
from caser.config import DataConfig
from caser.downloads import default_cache_dir, fetch_once
from caser.errors import DataError
from caser.filtering import kcore
from caser.paths import expand_user
from caser.readers import read_interactions
from caser.sequences import Sequences
from caser.splits import Split, split_sequences
from caser.synthetic import generate

_SYNTHETIC_KEYS = {"users": "num_users", "items": "num_items", "interactions": "num_interactions"}


def load_sequences(cfg: DataConfig, cache_dir: Path | None = None) -> Sequences:
    """The sequences named by `cfg.spec`, k-core filtered with cfg's minimums."""
    if cfg.spec == "synthetic" or cfg.spec.startswith("synthetic:"):
        seqs = generate(**_synthetic_size(cfg.spec), seed=cfg.seed)
    elif cfg.spec in CATALOGUE:
        seqs = read_interactions(dataset_path(cfg.spec, cache_dir), CATALOGUE[cfg.spec].format)
    elif not cfg.spec.strip():  # Path("") is the current folder
        raise DataError(f"data spec {cfg.spec!r} is empty: give synthetic, a dataset name "
                        f"({', '.join(CATALOGUE)}) or a file")
    else:
        path = expand_user(cfg.spec, f"data spec {cfg.spec!r}")
        if not path.exists():
            raise DataError(
                f"data spec {cfg.spec!r}: no such file, and not a known dataset "
                f"(synthetic, synthetic:users=..,items=..,interactions=.., {', '.join(CATALOGUE)})"
            )
        seqs = read_interactions(path, cfg.format)
    seqs = kcore(seqs, cfg.min_user_interactions, cfg.min_item_interactions)
    if seqs.num_users == 0:
        raise DataError(
            f"{cfg.spec}: no user left after filtering with min_user_interactions="
            f"{cfg.min_user_interactions}, min_item_interactions={cfg.min_item_interactions}"
        )
    return seqs


def load_split(cfg: DataConfig, cache_dir: Path | None = None) -> Split:
    """Read, filter and split the data of `cfg` (see `load_sequences` and `split_sequences`)."""
    return split_sequences(load_sequences(cfg, cache_dir), cfg)


def dataset_path(name: str, cache_dir: Path | None = None) -> Path:
    """The cached file of the named dataset `name`, fetched and checked first if missing."""
    folder = Path(cache_dir or default_cache_dir()) / name
    return fetch_once(CATALOGUE[name].source, folder, name)


def _synthetic_size(spec: str) -> dict[str, int]:
    """Keyword arguments of `generate` from `synthetic:users=..,items=..,interactions=..`."""
    _, _, options = spec.partition(":")
    sizes: dict[str, int] = {}
    for option in filter(None, (part.strip() for part in options.split(","))):
        key, eq, value = (s.strip() for s in option.partition("="))
        if key not in _SYNTHETIC_KEYS or not eq:
            raise DataError(
                f"data spec {spec!r}: unknown option {option!r}; "
                f"use key=value with keys {', '.join(_SYNTHETIC_KEYS)}"
            )
        try:
            sizes[_SYNTHETIC_KEYS[key]] = int(value.replace("_", ""))
        except ValueError:
            raise DataError(f"data spec {spec!r}: {key}={value!r} is not an integer") from None
    return sizes
