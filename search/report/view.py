"""One consistent snapshot of a study for every section of the report.

The sweep may still be running while the report is written; reading the trials once and
handing the same list to every section keeps the tables consistent with each other (a trial
finishing halfway through would otherwise appear in the summary but not in the best table).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from caser.config import DataConfig, ModelConfig, TrainConfig, configs_from_params, field_names
from caser.config import with_current_data_names
from caser.metric_names import metric_names
from search import record
from search.errors import StudyError
from search.retries import retried_numbers

# The validation metrics a trial stores (its own objective among them), in reading order.
VAL_METRICS = tuple(metric_names("val"))
SHORT = {
    "map": "MAP",
    "prec@1": "P@1",
    "prec@5": "P@5",
    "prec@10": "P@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "ndcg@10": "NDCG@10",
    "hit@10": "Hit@10",
}
CONFIG_ORDER = field_names(ModelConfig) + field_names(TrainConfig)
CONFIG_TYPES = {f.name: type(f.default) for cls in (ModelConfig, TrainConfig) for f in fields(cls)}
TYPE_WORDS = {int: "a whole number", float: "a number", str: "text"}
UNNAMED_METRIC = "value"  # a study from before the metric was recorded


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda x: _number(x) and x == int(x) and x >= low), f"a whole number of at least {low}"


SECONDS = (lambda x: _number(x) and x >= 0), "a number of seconds"
TABLE = (lambda x: isinstance(x, dict)), "a table"
TEXT = (lambda x: isinstance(x, str)), "text"
# What the report computes with, as the sweep writes it: (key, check, what it must be); a value
# that fails would end the report in a traceback or, worse, a wrong figure. None is "not
# recorded" (patience None: no early stopping).
STUDY_RECORDS = (
    (record.MAX_EPOCHS, *_whole(1)),
    (record.PATIENCE, *_whole(1)),
    (record.MIN_DELTA, lambda x: _number(x) and x >= 0, "a finite number of at least 0"),
    (record.FIXED, *TABLE),
    (record.DATA, *TABLE),
)
TRIAL_RECORDS = (
    (record.BEST_EPOCH, *_whole(1)),
    (record.EPOCHS_RUN, *_whole(0)),
    (record.SEED, *_whole(0)),
    (record.WALL_TIME_S, *SECONDS),
    (record.TRAIN_TIME_S, *SECONDS),
    (record.EVAL_TIME_S, *SECONDS),
    (record.STOP_REASON, *TEXT),
    (record.REASON, *TEXT),
)


def check_records(view: StudyView) -> None:
    """Raise StudyError naming the first study or trial attribute the sweep would never write."""
    where = [(f"study {view.name!r}", view.user_attrs, STUDY_RECORDS)]
    where += [(f"study {view.name!r} trial {t.number}", t.user_attrs, TRIAL_RECORDS)
              for t in view.trials]
    for who, attrs, records in where:
        for key, valid, what in records:
            value = attrs.get(key)
            if value is not None and not valid(value):
                raise StudyError(f"{who} records {key} {value!r}, not {what}")


def short_metric(name: str) -> str:
    """`val/prec@5` -> `P@5`: column headers stay narrow, the split is in the section title."""
    return SHORT.get(name.split("/", 1)[-1], name)


@dataclass
class StudyView:
    """A study's name, attributes and trials, read once; `storage` is the redacted URL."""

    name: str
    storage: str
    user_attrs: dict[str, Any]
    direction: optuna.study.StudyDirection
    trials: list[FrozenTrial]
    study: optuna.Study | None = field(default=None, repr=False)

    @classmethod
    def of(cls, study: optuna.Study, storage: str = "") -> StudyView:
        """The snapshot; a StudyError when the study records a metric or a setting the sweep
        never writes (another program's study, or an edited one): every section computes with
        them, and would fail on them with a traceback."""
        view = cls(
            name=study.study_name,
            storage=storage,
            user_attrs=dict(study.user_attrs),
            direction=study.direction,
            trials=study.get_trials(deepcopy=False),
            study=study,
        )
        # The metric is a lookup key and a column name in every section: only known names.
        if view.metric not in (*VAL_METRICS, UNNAMED_METRIC):
            raise StudyError(f"study {view.name!r} records the metric {view.metric!r}, not one of "
                             f"Caser's validation metrics ({', '.join(VAL_METRICS)})")
        check_records(view)
        return view

    @property
    def maximize(self) -> bool:
        return self.direction == optuna.study.StudyDirection.MAXIMIZE

    @property
    def metric(self) -> str:
        return str(self.user_attrs.get(record.METRIC, UNNAMED_METRIC))

    @property
    def fixed(self) -> dict[str, Any]:
        return dict(self.user_attrs.get(record.FIXED) or {})

    @property
    def max_epochs(self) -> int | None:
        value = self.user_attrs.get(record.MAX_EPOCHS)
        return int(value) if value is not None else None

    @property
    def data(self) -> dict[str, Any]:
        """The data attribute as stored (older studies say `split` for `holdout`)."""
        return dict(self.user_attrs.get(record.DATA) or {})

    def data_config(self) -> DataConfig:
        """The data the study ran on; a StudyError when its stored settings are not caser's."""
        try:
            return DataConfig(**with_current_data_names(self.data))
        except (TypeError, ValueError) as exc:
            raise StudyError(f"study {self.name!r} records data settings caser does not accept: "
                             f"{exc}") from None

    def by_state(self, state: TrialState) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == state]

    def ranked(self) -> list[FrozenTrial]:
        """Complete trials with a finite value, best first; ties keep the earlier trial first.
        The default's extra seeds are its noise floor (search/report/noise.py), not
        configurations of their own: they are left out."""
        done = [t for t in self.by_state(TrialState.COMPLETE) if _finite(t.value) and not record.is_replica(t)]
        sign = -1.0 if self.maximize else 1.0
        return sorted(done, key=lambda t: (sign * t.value, t.number))

    def require_complete(self) -> None:
        """Raise StudyError naming the trial states when no trial is complete yet."""
        if self.ranked():
            return
        states = ", ".join(
            f"{sum(t.state == s for t in self.trials)} {s.name.lower()}"
            for s in sorted({t.state for t in self.trials}, key=lambda s: s.value)
        )
        raise StudyError(
            f"study {self.name!r} has no complete trial yet ({states or 'no trials'})"
        )

    def retried(self) -> set[int]:
        """Numbers of the trials that a later trial retried after their worker died.

        The retry callback queues a copy with the same params and user attributes (`is_default`
        among them) that carries on the configuration, so the dead original is not one of its own.
        """
        return retried_numbers(self.trials)

    def default_trial(self) -> FrozenTrial | None:
        """The enqueued trial holding the original defaults: the latest retry of it when its
        worker died, the run after it when Ctrl-C stopped it (the first that did not fail)."""
        retried = self.retried()
        marked = [t for t in self.trials if record.is_default(t) and not record.is_replica(t)
                  and t.number not in retried]
        ran = [t for t in marked if t.state != TrialState.FAIL] or marked
        return min(ran, key=lambda t: t.number) if ran else None

    def is_default(self, trial: FrozenTrial) -> bool:
        default = self.default_trial()
        return default is not None and trial.number == default.number

    def train_seed(self, trial: FrozenTrial) -> int:
        """The seed a trial trained with: its own record, else the study's; 0, the study files'
        default, for trials stored before either was recorded."""
        return int(trial.user_attrs.get(record.SEED, self.user_attrs.get(record.SEED, 0)))

    def configs(self, trial: FrozenTrial) -> tuple[ModelConfig, TrainConfig]:
        """The full configuration a trial trained: its seed and the study's fixed values under its
        params. A parameter caser does not know (another program's study) is a StudyError."""
        return _configs({**self.fixed, **trial.params}, TrainConfig(seed=self.train_seed(trial)),
                        f"trial {trial.number}")

    def default_configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The original defaults under the study's fixed values (when no trial ran them)."""
        return _configs(self.fixed, TrainConfig(), "the study's fixed values")

    def param_names(self) -> list[str]:
        """Every sampled parameter, in config-field order (unknown names last, sorted)."""
        names = {n for t in self.trials for n in t.params}
        known = [n for n in CONFIG_ORDER if n in names]
        return known + sorted(names - set(known))

    def distributions(self) -> dict[str, BaseDistribution]:
        """Each parameter's distribution as the latest trial sampled it."""
        out: dict[str, BaseDistribution] = {}
        for trial in sorted(self.trials, key=lambda t: t.number):
            out.update(trial.distributions)
        return out



def _configs(params: dict[str, Any], train_config: TrainConfig,
             who: str) -> tuple[ModelConfig, TrainConfig]:
    """configs_from_params, with a value caser refuses, or one of the wrong type (a stored
    `"many"` for epochs), as a StudyError naming it."""
    try:
        return configs_from_params(params, train_config=train_config)
    except (TypeError, ValueError) as exc:
        wrong = [f"{k} {v!r} is not {TYPE_WORDS[CONFIG_TYPES[k]]}" for k, v in params.items()
                 if k in CONFIG_TYPES and not _of_type(v, CONFIG_TYPES[k])]
        raise StudyError(f"{who} is not a Caser configuration: "
                         f"{'; '.join(wrong) if wrong else exc}") from None


def _of_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
