"""Study definitions: a small TOML file (data, budget, metric, sampler, pruner, space).

    [study]  metric, direction, max_epochs, patience, min_delta, sampler, pruner, seed
             (max_epochs is every trial's budget; patience evaluations without an improvement
             of more than min_delta end a trial sooner; patience 0 trains the whole budget)
    [pruners.<name>]  keyword arguments of that Optuna pruner (median, percentile,
                      successive_halving, hyperband)
    [data]   the DataConfig fields (spec, format, holdout, train_frac, ...; `split` is
             holdout's earlier name)
    [space]  see search/space.py

`load_study_spec("default")` reads studies/default.toml; a path reads that file; the study's
name is the file's stem. Every mistake raises StudyError naming the file and the key.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from caser.config import DataConfig, with_current_data_names
from caser.metric_names import metric_names
from search.errors import StudyError
from search.run_dirs import check_study_name
from search.space import Dimension, is_number, parse_space

if TYPE_CHECKING:
    from caser.stopping import StoppingRule

STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"
SAMPLERS = ("tpe", "random", "gp", "qmc")
PRUNERS = ("median", "percentile", "successive_halving", "hyperband", "none")
STUDY_KEYS = {"metric", "direction", "max_epochs", "patience", "min_delta", "rel_delta", "patience_growth",
              "warmup", "sampler", "pruner", "seed", "default_seeds"}
MAX_DEFAULT_SEEDS = 20  # extra seeds of the default: enough to measure its spread, not a sweep
MAX_SEED = 2**31  # the samplers take seeds below 2**32; room for a worker index on top


@dataclass(frozen=True)
class StudySpec:
    """Everything a sweep needs to know about its study, after CLI overrides; read-only, its
    mappings included."""

    name: str
    path: Path
    data: DataConfig
    space: Mapping[str, Dimension]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    metric: str = "val/map"
    direction: str = "maximize"
    max_epochs: int = 12
    patience: int = 0  # evaluations without improvement before a trial stops; 0: never early
    min_delta: float = 0.0  # the improvement of the metric that counts
    rel_delta: float = 0.0  # ... or, when larger, this share of the best so far
    patience_growth: float = 0.0  # patience grows to this share of the epoch of the best
    warmup: int = 0  # evaluations before patience may end a trial
    sampler: str = "tpe"
    pruner: str = "median"
    pruner_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per pruner name
    seed: int = 0
    default_seeds: int = 2  # the default trains again with seed + 1, + 2, ...: the noise floor

    def __post_init__(self) -> None:
        frozen = {name: MappingProxyType(dict(options)) for name, options in self.pruner_options.items()}
        object.__setattr__(self, "space", MappingProxyType(dict(self.space)))
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "pruner_options", MappingProxyType(frozen))

    def with_overrides(self, **overrides: Any) -> "StudySpec":
        """A copy with every non-None override applied (data_spec replaces the data's spec)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        data_spec = overrides.pop("data_spec", None)
        fractions = {k: overrides.pop(k) for k in ("train_frac", "val_frac") if k in overrides}
        spec = replace(self, **overrides)
        if data_spec is not None:
            spec = replace(spec, data=spec.data.with_spec(data_spec))  # presets follow the data
        if fractions:
            try:
                spec = replace(spec, data=replace(spec.data, **fractions))
            except ValueError as exc:
                flags = ", ".join("--" + k.replace("_", "-") for k in fractions)
                raise StudyError(f"{flags}: {exc}") from None
        spec.validate()
        return spec

    def validate(self) -> None:
        where = str(self.path)
        try:
            check_study_name(self.name)
        except StudyError as exc:
            raise StudyError(f"{where}: {exc}") from None
        if self.metric not in metric_names("val"):
            raise StudyError(f"{where}: study.metric {self.metric!r} is not a validation metric; "
                             f"choose from {', '.join(metric_names('val'))}")
        if self.direction not in ("maximize", "minimize"):
            raise StudyError(f"{where}: study.direction must be maximize or minimize")
        if self.sampler not in SAMPLERS:
            raise StudyError(f"{where}: study.sampler {self.sampler!r} unknown; choose from {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise StudyError(f"{where}: study.pruner {self.pruner!r} unknown; choose from {', '.join(PRUNERS)}")
        if not is_whole(self.max_epochs) or self.max_epochs < 1:
            raise StudyError(f"{where}: study.max_epochs must be a whole number >= 1")
        for key, ok, rule in SETTING_RULES:
            if not ok(getattr(self, key)):
                raise StudyError(f"{where}: study.{key} must be {rule}, got {getattr(self, key)!r}")
        if not is_whole(self.seed) or not 0 <= self.seed < MAX_SEED:
            raise StudyError(f"{where}: study.seed must be a whole number from 0 to {MAX_SEED - 1}, got {self.seed!r}")


    def stopping(self) -> "StoppingRule":
        """The rule that ends each trial's training before its budget (caser/stopping.py)."""
        from caser.stopping import StoppingRule  # imports Lightning: not for `sweep.py --help`

        return StoppingRule(monitor=self.metric, patience=self.patience or None,
                            min_delta=float(self.min_delta), mode="max" if self.direction == "maximize" else "min",
                            rel_delta=float(self.rel_delta), patience_growth=float(self.patience_growth),
                            warmup=self.warmup)


PATIENCE_RULE = "a whole number >= 0 (0: no early stopping)"
# Every validation metric lies in [0, 1]: an improvement of 1 or more never counts, and every
# trial would stop after `patience` evaluations (inf, and 1e300, did so).
MIN_DELTA_RULE = "a finite number from 0 to below 1 (an improvement of a metric in [0, 1])"


REL_DELTA_RULE = "a share from 0 to below 1 of the best value so far"
GROWTH_RULE = "a share from 0 to 1 of the epoch of the best"
WHOLE_RULE = "a whole number >= 0"
DEFAULT_SEEDS_RULE = f"a whole number from 0 to {MAX_DEFAULT_SEEDS} (extra seeds of the default)"


def _share(value: Any, below_one: bool = False) -> bool:
    return is_number(value) and math.isfinite(value) and 0 <= value and (value < 1 if below_one else value <= 1)


def patience_ok(value: Any) -> bool:
    return is_whole(value) and value >= 0


# (key, check, what it must be): the study file's [study] settings a flag can also give.
SETTING_RULES = (
    ("patience", patience_ok, PATIENCE_RULE),
    ("min_delta", lambda v: _share(v, below_one=True), MIN_DELTA_RULE),
    ("rel_delta", lambda v: _share(v, below_one=True), REL_DELTA_RULE),
    ("patience_growth", _share, GROWTH_RULE),
    ("warmup", patience_ok, WHOLE_RULE),
    ("default_seeds", lambda v: is_whole(v) and 0 <= v <= MAX_DEFAULT_SEEDS, DEFAULT_SEEDS_RULE),
)


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_study_path(name_or_path: str) -> Path:
    """studies/<name>.toml for a bare name, else the path itself; StudyError when missing."""
    candidate = Path(name_or_path)
    if candidate.suffix != ".toml" and "/" not in name_or_path:
        candidate = STUDIES_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in STUDIES_DIR.glob("*.toml")))
        raise StudyError(f"no study file {candidate}; built-in studies: {known}")
    return candidate


def load_study_spec(name_or_path: str = "default") -> StudySpec:
    """Parse and validate a study file."""
    path = resolve_study_path(name_or_path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read ({exc})") from None
    unknown = set(doc) - {"study", "pruners", "data", "space"}
    if unknown:
        raise StudyError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
    study = _table(doc, "study", path)
    bad = set(study) - STUDY_KEYS
    if bad:
        raise StudyError(f"{path}: unknown key study.{sorted(bad)[0]}; known: {', '.join(sorted(STUDY_KEYS))}")
    data = _data_config(_table(doc, "data", path), path)
    space, fixed = parse_space(_table(doc, "space", path), str(path))
    spec = StudySpec(name=path.stem, path=path, data=data, space=space, fixed=fixed,
                     pruner_options=_pruner_options(doc, path), **study)
    spec.validate()
    return spec


def _pruner_options(doc: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    table = _table(doc, "pruners", path)
    for name, options in table.items():
        if name not in PRUNERS or not isinstance(options, Mapping):
            raise StudyError(f"{path}: pruners.{name}: expected a table named after a pruner ({', '.join(PRUNERS)})")
    return {name: dict(options) for name, options in table.items()}


def _table(doc: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, Mapping):
        raise StudyError(f"{path}: {name} must be a table")
    return value


def _data_config(table: Mapping[str, Any], path: Path) -> DataConfig:
    types = {f.name: f.type.removesuffix(" | None") for f in fields(DataConfig)}  # "str", "int", "float"
    try:
        table = with_current_data_names(table)
    except ValueError as exc:
        raise StudyError(f"{path}: data: {exc}") from None
    for key, value in table.items():
        if key not in types:
            raise StudyError(f"{path}: unknown key data.{key}; known: {', '.join(sorted(types))}")
        if not _of_type(value, types[key]):
            raise StudyError(f"{path}: data.{key} must be a {_TYPE_WORDS[types[key]]}, got {value!r}")
    try:
        return DataConfig(**table)
    except (TypeError, ValueError) as exc:
        raise StudyError(f"{path}: data: {exc}") from None


_TYPE_WORDS = {"str": "string", "int": "whole number", "float": "number"}


def _of_type(value: Any, type_name: str) -> bool:
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "int":
        return is_whole(value)
    return is_number(value)
