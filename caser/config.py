"""The configuration objects that flow from CLI / study file / trial to model and trainer.

Field names match the paper (L, T, d, nv, nh) and are the Optuna parameter names too,
so `trial.params` rebuilds a config with no renaming layer (see `configs_from_params`).
Defaults are the original PyTorch implementation's, except epochs: 20, the budget behind
the paper-protocol figures quoted for ml-100k, where the original's script defaults to 50.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from caser.catalogue import preset_filter

ACTIVATIONS = ("iden", "relu", "tanh", "sigm")
MAX_TRAIN_SEED = 2**32 - 1  # numpy's and Lightning's seeds are 32-bit
ACTIVATION_ALIASES = {"identity": "iden", "sigmoid": "sigm", "none": "iden", "linear": "iden"}


def canonical_activation(name: str) -> str:
    """Map an activation name or alias to one of `ACTIVATIONS`; raise ValueError otherwise."""
    key = ACTIVATION_ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return key


@dataclass(frozen=True)
class ModelConfig:
    """Caser's architecture: L previous items, T targets, d dims, nv vertical / nh horizontal filters."""

    L: int = 5
    T: int = 3
    d: int = 50
    nv: int = 4
    nh: int = 16
    ac_conv: str = "relu"
    ac_fc: str = "relu"
    dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("L", "T", "d"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.nv < 0 or self.nh < 0:
            raise ValueError(f"nv and nh must be >= 0, got nv={self.nv}, nh={self.nh}")
        if self.nv == 0 and self.nh == 0:
            raise ValueError("nv = nh = 0 leaves Caser with no convolutional features")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "ac_conv", canonical_activation(self.ac_conv))
        object.__setattr__(self, "ac_fc", canonical_activation(self.ac_fc))


@dataclass(frozen=True)
class TrainConfig:
    """How one configuration is trained: Adam(lr, weight decay l2), BCE with neg_samples negatives."""

    lr: float = 1e-3
    l2: float = 1e-6
    neg_samples: int = 3
    batch_size: int = 512
    epochs: int = 20
    seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("lr", "l2"):  # nan passes every comparison below; inf trains nothing
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.neg_samples < 1:
            raise ValueError(f"neg_samples must be >= 1, got {self.neg_samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.seed <= MAX_TRAIN_SEED:
            raise ValueError(f"seed must be from 0 to {MAX_TRAIN_SEED}, got {self.seed}")


FILTER_FIELDS = ("min_user_interactions", "min_item_interactions")  # a dataset's preset sets them
# The formats `caser.readers` reads ("auto" looks at the file); here, so that a config with a
# format no reader knows is refused when it is built, whatever the data (synthetic included).
DATA_FORMATS = (
    "auto", "triplets", "quadruplets", "movielens", "ratings-dat", "pairs", "santander", "gowalla",
)


@dataclass(frozen=True)
class DataConfig:
    """Which data and how it is held out: a named dataset (`synthetic`, `ml-100k`, ...) or a file path.

    holdout: "ratio" (the paper: per user, time order, first train_frac train, next val_frac
    validation, the rest test) or "loo" (leave-one-out: last item test, the one before it
    validation). Users and items are k-core filtered first when the minimums are above zero.
    A minimum left as None takes the dataset's preset (`caser.catalogue`: the paper's cold-start
    filter for ml-1m and gowalla, else 0), so every built config holds the minimums applied and
    `asdict` names the data exactly; a minimum given, 0 included, is kept.
    """

    spec: str = "synthetic"
    format: str = "auto"
    holdout: str = "ratio"
    train_frac: float = 0.7
    val_frac: float = 0.1
    min_user_interactions: int | None = None
    min_item_interactions: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.format not in DATA_FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose from {', '.join(DATA_FORMATS)}")
        if self.holdout not in ("ratio", "loo"):
            raise ValueError(f"holdout must be 'ratio' or 'loo', got {self.holdout!r}")
        if not (0 < self.train_frac <= 1 and 0 <= self.val_frac and self.train_frac + self.val_frac <= 1):
            raise ValueError(
                f"need 0 < train_frac, 0 <= val_frac and train_frac + val_frac <= 1, "
                f"got {self.train_frac} and {self.val_frac}"
            )
        if self.seed < 0:
            raise ValueError(f"seed (of the synthetic data) must be from 0 up, got {self.seed}")
        for name in FILTER_FIELDS:
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be from 0 up (0: no filter), got {getattr(self, name)}")
        # Not a field: which minimums came from the preset, so that `with_spec` can renew them.
        from_preset = frozenset(name for name in FILTER_FIELDS if getattr(self, name) is None)
        object.__setattr__(self, "_from_preset", from_preset)
        for name, value in zip(FILTER_FIELDS, preset_filter(self.spec)):
            if name in from_preset:
                object.__setattr__(self, name, value)

    def with_spec(self, spec: str) -> "DataConfig":
        """The same settings on other data: minimums that were given stay, the others take the
        new dataset's preset (`dataclasses.replace` would freeze the old dataset's preset)."""
        from_preset = getattr(self, "_from_preset", frozenset())
        given = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in from_preset}
        return DataConfig(**{**given, "spec": spec})


# Earlier names of DataConfig fields, still read where users and stored studies wrote them.
RENAMED_DATA_FIELDS = {"split": "holdout"}


def with_current_data_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """DataConfig field values with every earlier name replaced by the current one."""
    out = dict(values)
    for old, new in RENAMED_DATA_FIELDS.items():
        if old in out:
            if new in out:
                raise ValueError(f"{old} is the earlier name of {new}: give only {new}")
            out[new] = out.pop(old)
    return out


def field_names(cls: type) -> tuple[str, ...]:
    """The field names of a config dataclass."""
    return tuple(f.name for f in fields(cls))


def configs_from_params(
    params: Mapping[str, Any],
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
) -> tuple[ModelConfig, TrainConfig]:
    """Override the configs (defaults: the original's) with every matching key of `params`.

    Keys are the field names; unknown keys raise, so a typo in a study file never passes silently.
    """
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    model_keys, train_keys = set(field_names(ModelConfig)), set(field_names(TrainConfig))
    unknown = set(params) - model_keys - train_keys
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    m = {k: v for k, v in params.items() if k in model_keys}
    t = {k: v for k, v in params.items() if k in train_keys}
    return ModelConfig(**{**_asdict(model_config), **m}), TrainConfig(**{**_asdict(train_config), **t})


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
