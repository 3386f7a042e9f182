"""Turn a `DataConfig` into sequences and a train / validation / test split: read, filter, split.

    from caser.datasets import load_split
    split = load_split(DataConfig(spec="ml-100k", holdout="loo", min_user_interactions=5))

`cfg.spec` names the data:
- `synthetic`: the embedded generator with its default knobs and seed `cfg.seed`;
- `synthetic:users=6040,items=3706,interactions=1000000`: the same generator at a given size;
- `ml-100k`: MovieLens 100K `u.data`, taken from `$CASER_CACHE/ml-100k/u.data` (default cache
  `~/.cache/caser-sweep`); when absent it is downloaded once from GroupLens, checked against its
  published-content sha256 and stored there. Offline, a DataError says where to put it by hand;
- anything else: a file path, read with `read_interactions(path, cfg.format)`.

Why one entry point: the sweep, the tests and the benchmarks must see exactly the same data for a
config, so the read -> k-core -> split order lives here and nowhere else.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import urllib.request
import zipfile
from pathlib import Path

from caser.config import DataConfig
from caser.errors import DataError
from caser.filtering import kcore
from caser.readers import read_interactions
from caser.sequences import Sequences
from caser.splits import Split, split_sequences
from caser.synthetic import generate

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_MEMBER = "ml-100k/u.data"
ML100K_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
DOWNLOAD_TIMEOUT_S = 20
_SYNTHETIC_KEYS = {"users": "num_users", "items": "num_items", "interactions": "num_interactions"}


def load_sequences(cfg: DataConfig, cache_dir: Path | None = None) -> Sequences:
    """The sequences named by `cfg.spec`, k-core filtered with cfg's minimums."""
    if cfg.spec == "synthetic" or cfg.spec.startswith("synthetic:"):
        seqs = generate(**_synthetic_size(cfg.spec), seed=cfg.seed)
    elif cfg.spec == "ml-100k":
        seqs = read_interactions(ml100k_path(cache_dir), "movielens")
    else:
        path = Path(cfg.spec).expanduser()
        if not path.exists():
            raise DataError(
                f"data spec {cfg.spec!r}: no such file, and not a known dataset "
                "(synthetic, synthetic:users=..,items=..,interactions=.., ml-100k)"
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


def default_cache_dir() -> Path:
    """`$CASER_CACHE` if set, else `~/.cache/caser-sweep`."""
    env = os.environ.get("CASER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "caser-sweep"


def ml100k_path(cache_dir: Path | None = None) -> Path:
    """Path of the cached ml-100k `u.data`, downloading and verifying it first if missing."""
    target = Path(cache_dir or default_cache_dir()) / "ml-100k" / "u.data"
    if not target.is_file():
        _download_ml100k(target)
    return target


def _download_ml100k(target: Path) -> None:
    by_hand = (
        f"download {ML100K_URL} by hand and put its {ML100K_MEMBER} at {target} "
        "(or set CASER_CACHE to a folder holding ml-100k/u.data)"
    )
    try:
        with urllib.request.urlopen(ML100K_URL, timeout=DOWNLOAD_TIMEOUT_S) as response:
            archive = response.read()
        data = zipfile.ZipFile(io.BytesIO(archive)).read(ML100K_MEMBER)
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
        reason = " ".join(str(getattr(err, "reason", err)).split())
        raise DataError(
            f"ml-100k: {target} is missing and the download failed ({reason}); {by_hand}"
        ) from None
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(
            f"ml-100k: the downloaded archive is unusable ({err}); {by_hand}"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ML100K_SHA256:
        raise DataError(
            f"ml-100k: downloaded u.data has sha256 {digest[:12]}..., expected "
            f"{ML100K_SHA256[:12]}...; {by_hand}"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: a crash never leaves a truncated cache entry
    except OSError as err:
        raise DataError(f"ml-100k: cannot write the cache file {target} ({err})") from None


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
