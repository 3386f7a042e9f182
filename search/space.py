"""The search space: parsed from a study file, and the ONLY place `trial.suggest_*` appears.

An entry is `{ int = [lo, hi] }` (optionally `log = true`, `step = k`), `{ float = [lo, hi] }`
(optionally `log = true`), or `{ choices = [...] }`; a plain value fixes the parameter. Names
are the config field names, so `trial.params` rebuilds the config.

Constraints are pruned as infeasible before any training, not hidden in dynamic ranges
(Optuna's samplers model fixed ranges best). Feasibility follows the model, not the data's
sequence lengths: the original trains any L and T by left-padding short sequences, and so does
`caser.train`. A configuration is infeasible when Caser cannot be built (nv = nh = 0 leaves it no
features) or cannot be held in this machine's memory (`caser.memory`: the horizontal
convolutions grow as L^3). Infeasible trials never train and never count toward `--trials N`;
a space none of whose configurations could train is refused before the sweep starts
(`search.data.check_space_fits`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.distributions import IntDistribution

from caser.config import ModelConfig, TrainConfig, canonical_activation, configs_from_params, field_names
from caser.memory import available_memory, memory_needed
from search.errors import StudyError

if TYPE_CHECKING:
    from caser.data_module import PreparedData

SEARCHABLE = field_names(ModelConfig) + tuple(f for f in field_names(TrainConfig) if f not in ("epochs", "seed"))
FIELD_TYPES = {f.name: str(f.type) for f in fields(ModelConfig) + fields(TrainConfig)}  # "int", ...

class Infeasible(Exception):
    """A sampled configuration that cannot be trained (the reason is the message)."""


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: kind "int", "float" or "categorical"."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step or 1, log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution that `suggest` samples from."""
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=self.step or 1, log=self.log)
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, step=self.step, log=self.log)
        return CategoricalDistribution(list(self.choices))

    def smallest(self) -> Any:
        return self.low if self.kind != "categorical" else min(self.choices)

    def smallest_at_least(self, minimum: float) -> Any | None:
        """The smallest value the dimension can take that is >= minimum, or None."""
        if self.kind == "categorical":
            return min((c for c in self.choices if c >= minimum), default=None)
        value = self.low
        if value < minimum:
            step = self.step or (1 if self.kind == "int" else 0)
            value = self.low + math.ceil((minimum - self.low) / step) * step if step else minimum
        return value if value <= self.high else None

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return self.low <= value <= self.high


def parse_space(table: Mapping[str, Any], where: str) -> tuple[dict[str, Dimension], dict[str, Any]]:
    """(searched dimensions, fixed values) from a study file's [space] table.

    `where` names the file for messages; every problem raises StudyError naming the key.
    """
    space: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    for name, entry in table.items():
        key = f"{where}: space.{name}"
        if name not in SEARCHABLE:
            raise StudyError(f"{key}: unknown parameter; searchable: {', '.join(SEARCHABLE)}")
        if not isinstance(entry, Mapping):
            fixed[name] = _checked_value(name, entry, key)
            continue
        space[name] = _dimension(name, entry, key)
    return space, fixed


def _dimension(name: str, entry: Mapping[str, Any], key: str) -> Dimension:
    kinds = [k for k in ("int", "float", "choices") if k in entry]
    extra = set(entry) - {"int", "float", "choices", "log", "step"}
    if len(kinds) != 1 or extra:
        raise StudyError(f"{key}: write {{ int = [lo, hi] }}, {{ float = [lo, hi] }} or {{ choices = [...] }}")
    kind = kinds[0]
    if kind == "choices":
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices:
            raise StudyError(f"{key}: choices must be a non-empty list")
        return Dimension(name, "categorical", choices=tuple(_checked_value(name, c, key) for c in choices))
    bounds = entry[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(is_number(b) for b in bounds)):
        raise StudyError(f"{key}: {kind} needs [low, high] numbers")
    if not all(math.isfinite(b) for b in bounds):
        raise StudyError(f"{key}: {kind} bounds must be finite, got {bounds}")
    low, high = bounds
    log, step = entry.get("log", False), entry.get("step")
    if not isinstance(log, bool):
        raise StudyError(f"{key}: log must be true or false")
    whole = kind == "int"
    if step is not None and (log or not is_number(step) or step <= 0
                             or (whole and not isinstance(step, int))):
        raise StudyError(f"{key}: step must be a positive {'whole ' if whole else ''}number, without log")
    if kind == "int" and not all(isinstance(b, int) for b in bounds):
        raise StudyError(f"{key}: int bounds must be whole numbers")
    if low > high:
        raise StudyError(f"{key}: low {low} is above high {high}")
    if log and low <= 0:
        raise StudyError(f"{key}: a log range needs low > 0")
    for bound in (low, high):
        _checked_value(name, int(bound) if kind == "int" else float(bound), key)
    return Dimension(name, kind, low, high, log, step)


def is_number(value: Any) -> bool:
    """An int or float from TOML, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked_value(name: str, value: Any, key: str) -> Any:
    """Check one value against the config's own validation (e.g. dropout in [0, 1))."""
    if FIELD_TYPES[name] in ("int", "float") and not is_number(value):
        raise StudyError(f"{key}: {value!r} is not possible ({name} is a number)")
    if FIELD_TYPES[name] == "int" and not isinstance(value, int):
        raise StudyError(f"{key}: {value!r} is not possible ({name} is a whole number)")
    try:
        if name in ("ac_conv", "ac_fc"):
            return canonical_activation(str(value))
        probe = {name: value}
        if name in ("nv", "nh"):
            probe = {"nv": value, "nh": 1} if name == "nv" else {"nv": 1, "nh": value}
        ModelConfig(**{k: v for k, v in probe.items() if k in field_names(ModelConfig)})
        TrainConfig(**{k: v for k, v in probe.items() if k in field_names(TrainConfig)})
    except (TypeError, ValueError) as exc:
        raise StudyError(f"{key}: {value!r} is not possible ({exc})") from None
    return value


def suggest(trial: optuna.Trial, space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Sample every searched parameter, in the space's order."""
    return {name: dim.suggest(trial) for name, dim in space.items()}


def check_feasible(params: Mapping[str, Any], data: PreparedData | None, available: int | None = None) -> None:
    """Raise Infeasible for a configuration that cannot train (see the module docstring); the
    memory is checked when `data` is given, against `available` bytes (default: the machine's)."""
    if params.get("nv", 1) == 0 and params.get("nh", 1) == 0:
        raise Infeasible("infeasible: nv = nh = 0 leaves no convolutional features")
    if data is None:
        return
    needed = memory_needed(*configs_from_params(params), data, "validation")
    available = available_memory() if available is None else available
    if available is not None and needed.total > available:
        raise Infeasible(f"infeasible: {needed.refusal(available, space_key)}")


def space_key(name: str) -> str:
    """How a message names a parameter of the study file."""
    return f"space.{name}"


def space_size(space: Mapping[str, Dimension]) -> int | None:
    """How many distinct configurations the space holds; None when a float range makes it endless."""
    size = 1
    for dim in space.values():
        if dim.kind == "categorical":
            size *= len(set(dim.choices))
        elif dim.kind == "int":
            size *= (int(dim.high) - int(dim.low)) // (dim.step or 1) + 1
        elif dim.low == dim.high:
            continue
        elif dim.step:
            size *= int(math.floor((dim.high - dim.low) / dim.step + 1e-9)) + 1
        else:
            return None
    return size


def check_space_size(space: Mapping[str, Dimension], n_trials: int, where: str) -> None:
    """Refuse `--trials N` over a space of fewer than N configurations: the samplers would train
    the same configurations again (an empty space: N copies of one)."""
    size = space_size(space)
    if size is None or size >= n_trials:
        return
    if size == 1:
        raise StudyError(f"{where}: [space] searches nothing (every parameter is fixed), so all "
                         f"{n_trials} trials would train one configuration: add a range to [space], "
                         "or run it once with --trials 1")
    raise StudyError(f"{where}: [space] holds only {size} configurations, fewer than --trials "
                     f"{n_trials}: ask for at most {size} trials, or widen the space")
