"""How much memory one training needs, estimated from its shapes before anything is allocated.

    needed = memory_needed(model_config, train_config, prepared, "validation")
    check_memory(needed)        # TooLarge (a DataError) when the machine cannot hold it

Why: the horizontal convolutions gather, for every batch row and every height h = 1..L, the
(L - h + 1) windows of h x d embeddings, and keep them for the backward pass: B x d x
L(L+1)(L+2)/6 floats, cubic in L. `--L 500` on a small synthetic set asked for over a terabyte,
and the kernel's out-of-memory killer ended it (and could have taken other processes with it).
The estimate is an upper bound of the large terms (`caser/model.py`, `caser/evaluation.py`),
not of the interpreter and its libraries; it is checked against the memory available now.
"""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from caser.config import ModelConfig, TrainConfig
from caser.eval_batch import EVAL_RANGE_USERS, eval_batch_users
from caser.errors import DataError

if TYPE_CHECKING:
    from caser.data_module import PreparedData

GB = 1024**3
FLOAT, INDEX = 4, 8  # bytes of a float32 parameter or activation, of an int64 item id
EVAL_CELL_FLOATS = 6  # a score, its sorted copy and index, masks: per (user, item) cell
DENSE_MAX_ENTRIES = 1_000_000  # caser.model.Caser.DENSE_MAX_ENTRIES (torch-free here)

# What to lower when a part dominates, as config field names.
REMEDIES = {
    "horizontal convolutions": ("L", "nh", "batch_size"),
    "vertical convolutions": ("nv", "d", "batch_size"),
    "output layer": ("neg_samples", "T", "batch_size"),
    "parameters and Adam state": ("d",),
    "training windows": ("L", "T", "neg_samples"),
    "evaluation": ("L", "d"),
}


class TooLarge(DataError):
    """A configuration whose estimated memory exceeds what the machine has available."""


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes of each large part of one training, and what sets them."""

    parts: dict[str, int]
    model_config: ModelConfig
    train_config: TrainConfig

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def largest(self) -> str:
        return max(self.parts, key=self.parts.__getitem__)

    def describe(self) -> str:
        m, t = self.model_config, self.train_config
        return f"L={m.L}, T={m.T}, d={m.d}, nv={m.nv}, nh={m.nh}, batch_size={t.batch_size}"

    def refusal(self, available: int, name: Callable[[str], str] = lambda f: "--" + f.replace("_", "-")) -> str:
        """One line: the configuration, what it needs, what is there, and the settings to lower
        (as `name` writes a field: a flag by default, `space.L` for a study)."""
        return f"{self.describe()} {self.shortfall(available, name)}"

    def shortfall(self, available: int, name: Callable[[str], str]) -> str:
        names = [name(field) for field in REMEDIES[self.largest]]
        remedies = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        return (f"needs about {_gb(self.total)} of memory ({self.largest} "
                f"{_gb(self.parts[self.largest])}), {_gb(available)} available: lower {remedies}")


def estimate_memory(
    model_config: ModelConfig,
    train_config: TrainConfig,
    num_users: int,
    num_items: int,
    num_windows: int,
    num_eval_users: int,
) -> MemoryEstimate:
    """The estimate from the data's shape: users, items, training windows, evaluated users."""
    L, T, d, nv, nh = (model_config.L, model_config.T, model_config.d, model_config.nv, model_config.nh)
    rows = num_items + 1  # item 0 pads
    positions = L * (L + 1) // 2  # (L - h + 1) summed over the heights h
    gathered = L * (L + 1) * (L + 2) // 6  # (L - h + 1) * h summed over the heights h
    num_params = (num_users * d + rows * d + rows * (2 * d + 1) + nv * (L + 1)
                  + nh * (d * positions + L) + (nv * d + nh * L + 1) * d)
    B = max(min(train_config.batch_size, num_windows), 1)
    k = T + train_config.neg_samples
    dense = nh and L * d * nh * positions <= DENSE_MAX_ENTRIES
    if dense:  # one product; its output and gradient
        horizontal = (B * nh * positions * 2 + L * d * nh * positions) * FLOAT
    else:  # every height's gathered windows, kept for the backward pass, and their outputs
        horizontal = (B * d * gathered + B * nh * positions * 2) * FLOAT if nh else 0
    widest = max(((L + 1) // 2) * (L + 1 - (L + 1) // 2), 1)  # one height's windows at a time
    Be = max(min(eval_batch_users(num_items), num_eval_users), 1)  # users scored at once
    Br = max(min(EVAL_RANGE_USERS, num_eval_users), 1)  # users whose vectors one pass makes
    horizontal_eval = (nh * positions if dense else d * widest * 2) if nh else 0
    eval_features = Br * (horizontal_eval + nv * d + 2 * (2 * d + 1)) * FLOAT
    parts = {
        "parameters and Adam state": 4 * num_params * FLOAT,  # weights, gradients, two moments
        "training windows": 2 * num_windows * (1 + L + T + train_config.neg_samples) * INDEX,
        "horizontal convolutions": horizontal + B * L * d * 2 * FLOAT,
        "vertical convolutions": B * nv * d * 3 * FLOAT,
        "output layer": B * k * (2 * d + 1) * 3 * FLOAT,
        "evaluation": Be * rows * EVAL_CELL_FLOATS * FLOAT + eval_features + num_eval_users * L * INDEX,
    }
    return MemoryEstimate(parts, model_config, train_config)


def memory_needed(model_config: ModelConfig, train_config: TrainConfig, data: PreparedData,
                  protocol: str = "validation") -> MemoryEstimate:
    """The estimate for training `model_config` on `data` under `protocol` (nothing is built)."""
    lengths = data.history(protocol).lengths
    windows = np.maximum(lengths - model_config.L - model_config.T + 1, 1)
    num_windows = int(windows[lengths > 0].sum())  # short sequences give one padded window
    num_eval_users = int((data.held_out(protocol).lengths > 0).sum())
    return estimate_memory(model_config, train_config, data.num_users, data.num_items, num_windows,
                           num_eval_users)


def check_memory(needed: MemoryEstimate, available: int | None = None, where: str = "") -> None:
    """Raise TooLarge when `needed` exceeds `available` (default: this machine's, now); `where`
    names another memory in the message (" on the GPU")."""
    available = available_memory() if available is None else available
    if available is not None and needed.total > available:
        raise TooLarge(needed.refusal(available).replace(" available:", f" available{where}:", 1))


def available_memory() -> int | None:
    """Bytes this process may still allocate: the least of the system's available memory, its
    control group's room and its address-space limit (`ulimit -v`); None when none is known."""
    candidates = [_meminfo_available(), _cgroup_room(), _address_space_room()]
    known = [c for c in candidates if c is not None]
    if not known:
        try:
            known = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError, AttributeError):
            return None
    return max(min(known), 0)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """cgroup v2 (memory.max) or v1 (memory.limit_in_bytes) limit minus current usage."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap = Path(limit).read_text().strip()
            if cap == "max" or int(cap) >= 2**60:
                return None
            return int(cap) - int(Path(usage).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def _address_space_room() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        status = Path("/proc/self/status").read_text().splitlines()
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return soft - size


def _gb(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= 0.1 * GB else f"{n / 2**20:.0f} MB"
