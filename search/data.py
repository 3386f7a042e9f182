"""The sweep's data: read, filtered and split once for every trial, and checked against the space."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from caser.config import configs_from_params
from caser.data_module import PreparedData
from caser.datasets import load_split
from caser.memory import available_memory, memory_needed
from search.errors import StudyError
from search.space import space_key
from search.studyfile import StudySpec


def prepare_data(spec: StudySpec) -> PreparedData:
    """The study's data, refused when no user has a validation item (every trial would fail)."""
    data = PreparedData(load_split(spec.data))
    if not data.has_eval_users("validation"):
        raise StudyError(f"{spec.path}: no user has a validation item to evaluate trials on: the "
                         "data is too small for the split, or data.val_frac is 0")
    return data


def data_fingerprint(data: PreparedData) -> str:
    """The sha256 of the split every trial trains and is validated on (the sequences of train,
    validation and test, after filtering): the data by its content, so that a file changed in
    place is told from the one a study ran on, and a moved one is not."""
    digest = hashlib.sha256()
    for part in (data.split.train, data.split.val, data.split.test):
        digest.update(np.int64(part.num_items).tobytes())
        for array in (part.indptr, part.items):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()


def check_space_fits(spec: StudySpec, data: PreparedData, available: int | None = None) -> None:
    """Refuse a space none of whose configurations could train: nv = nh = 0 in all of them, or
    even the smallest one needing more memory than the machine has (search/space.py)."""
    smallest = {name: dim.smallest() for name, dim in spec.space.items()}
    smallest.update(spec.fixed)
    candidates = [smallest]
    if smallest.get("nv", 1) == 0 and smallest.get("nh", 1) == 0:
        candidates = [c for c in (_with_positive(spec, smallest, "nv"), _with_positive(spec, smallest, "nh")) if c]
        if not candidates:
            raise StudyError(f"{spec.path}: nv = nh = 0 in every configuration of the space, which "
                             "leaves Caser no features: let space.nv or space.nh reach 1")
    available = available_memory() if available is None else available
    if available is None:
        return
    needs = [memory_needed(*configs_from_params(c), data, "validation") for c in candidates]
    least = min(needs, key=lambda n: n.total)
    if least.total > available:
        raise StudyError(f"{spec.path}: even the smallest configuration of the space ({least.describe()}) "
                         f"{least.shortfall(available, space_key)}")


def _with_positive(spec: StudySpec, params: dict[str, Any], name: str) -> dict[str, Any] | None:
    """`params` with `name` at its smallest value >= 1, or None when it cannot reach 1."""
    if name in spec.fixed:
        return None
    dim = spec.space.get(name)
    value = dim.smallest_at_least(1) if dim is not None else 1  # not in the space: the default
    return None if value is None else {**params, name: value}
