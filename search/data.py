"""The sweep's data: read, filtered and split once for every trial, and checked against the space."""
from __future__ import annotations

from caser.config import ModelConfig
from caser.data_module import PreparedData
from caser.datasets import load_split
from search.errors import StudyError
from search.studyfile import StudySpec


def prepare_data(spec: StudySpec) -> PreparedData:
    """The study's data, refused when no user has a validation item (every trial would fail)."""
    data = PreparedData(load_split(spec.data))
    if not data.has_eval_users("validation"):
        raise StudyError(f"{spec.path}: no user has a validation item to evaluate trials on: the "
                         "data is too small for the split, or data.val_frac is 0")
    return data


def check_space_fits(spec: StudySpec, max_window: int) -> None:
    """Refuse a space whose smallest L + T already exceeds the data's window limit."""
    smallest = {name: dim.smallest() for name, dim in spec.space.items()}
    L = spec.fixed.get("L", smallest.get("L", ModelConfig.L))
    T = spec.fixed.get("T", smallest.get("T", ModelConfig.T))
    if L + T > max_window:
        raise StudyError(f"{spec.path}: the smallest L + T = {L + T} exceeds the data's limit "
                         f"{max_window} (median training sequence): lower space.L or space.T")
