"""Running a study: data prepared once, the study opened or resumed, trials run until N finish.

`--trials N` means N finished trials (complete + pruned): a re-run after an interruption runs
only what is missing, and a finished study says so. The original defaults are enqueued as the
first trial of a new study, so every study has the baseline to beat.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from caser.config import ModelConfig, TrainConfig
from caser.data_module import PreparedData
from caser.datasets import load_split
from caser.module import Diverged
from search.errors import StudyError
from search.objective import make_objective
from search.storage import open_storage, redact
from search.studyfile import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 40
MAX_FAILURE_STREAK = 10


def prepare_data(spec: StudySpec) -> tuple[PreparedData, int]:
    """Read, filter and split the data once; the window limit is the median training length."""
    split = load_split(spec.data)
    lengths = split.train.lengths
    max_window = max(int(np.median(lengths[lengths > 0])), 2)
    return PreparedData(split), max_window


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    return samplers[spec.sampler]()


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    options = spec.pruner_options.get(spec.pruner, {})
    try:
        if spec.pruner == "median":
            return optuna.pruners.MedianPruner(**options)
        if spec.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(**{"max_resource": spec.max_epochs, **options})
    except TypeError as exc:
        raise StudyError(f"{spec.path}: pruners.{spec.pruner}: {exc}") from None
    return optuna.pruners.NopPruner()


def default_params(spec: StudySpec) -> dict[str, Any]:
    """The original implementation's values for every searched parameter that can take them."""
    defaults = {**asdict(ModelConfig()), **asdict(TrainConfig())}
    return {name: defaults[name] for name, dim in spec.space.items() if dim.contains(defaults[name])}


def open_study(spec: StudySpec, storage_url: str, seed: int) -> optuna.Study:
    """Create or resume the study; a study stored with another metric or direction is refused."""
    rdb_kwargs: dict[str, Any] = {}
    if "://" in storage_url:
        rdb_kwargs = {
            "heartbeat_interval": HEARTBEAT_INTERVAL_S,
            "grace_period": HEARTBEAT_GRACE_S,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        }
    storage = open_storage(storage_url, **rdb_kwargs)
    try:
        study = optuna.create_study(
            study_name=spec.name, storage=storage, direction=spec.direction, load_if_exists=True,
            sampler=make_sampler(spec, seed), pruner=make_pruner(spec),
        )
    except ValueError as exc:  # e.g. an existing study with another direction
        raise StudyError(f"study {spec.name!r} in {redact(storage_url)}: {exc}") from None
    stored = study.user_attrs
    if stored.get("metric", spec.metric) != spec.metric or study.direction.name.lower() != spec.direction:
        raise StudyError(
            f"study {spec.name!r} in {redact(storage_url)} maximises/minimises "
            f"{stored.get('metric')} ({study.direction.name.lower()}), not {spec.metric} ({spec.direction}); "
            f"use another --storage or study name"
        )
    if not stored:
        for key, value in study_attrs(spec).items():
            study.set_user_attr(key, value)
    if not study.trials:
        study.enqueue_trial(default_params(spec), user_attrs={"is_default": True}, skip_if_exists=True)
    return study


def study_attrs(spec: StudySpec) -> dict[str, Any]:
    """What report.py needs to know about the study (see search/report)."""
    return {
        "metric": spec.metric,
        "direction": spec.direction,
        "data": asdict(spec.data),
        "max_epochs": spec.max_epochs,
        "fixed": dict(spec.fixed),
        "study_file": str(spec.path),
    }


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


@dataclass
class Progress:
    """Sweep-level progress, one line per finished trial (printed by `report`)."""

    target: int
    report: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)
    done_at_start: int = 0
    failure_streak: int = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        elapsed = time.perf_counter() - self.started
        ran = max(finished - self.done_at_start, 1)
        eta = elapsed / ran * max(self.target - finished, 0)
        best = _best(study)
        best_text = f"best {best.value:.4f} (#{best.number})" if best else "best -"
        value = f"{trial.value:.4f}" if trial.value is not None else trial.user_attrs.get("reason", "-")
        attrs = trial.user_attrs
        self.report(
            f"[{finished}/{self.target}] trial {trial.number:>3} {trial.state.name:<8} {value:<24} "
            f"epochs {attrs.get('epochs_run', 0):>2}  {attrs.get('wall_time_s', 0):6.1f}s  "
            f"params {attrs.get('num_params', 0):>8}  | {best_text}  "
            f"complete {counts[TrialState.COMPLETE]} pruned {counts[TrialState.PRUNED]} "
            f"failed {counts[TrialState.FAIL]}  elapsed {_clock(elapsed)} eta {_clock(eta)}"
        )
        self.failure_streak = self.failure_streak + 1 if trial.state == TrialState.FAIL else 0
        if self.failure_streak >= MAX_FAILURE_STREAK:
            self.report(f"stopping: {self.failure_streak} trials in a row failed (last: {value})")
            study.stop()
        if finished >= self.target:
            study.stop()


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_sweep(
    spec: StudySpec,
    study: optuna.Study,
    data: PreparedData,
    max_window: int,
    n_trials: int,
    runs_dir: Path,
    report: Callable[[str], None],
    timeout: float | None = None,
    accelerator: str = "cpu",
) -> int:
    """Run trials until the study has n_trials finished ones; returns how many finished now."""
    progress = Progress(target=n_trials, report=report, done_at_start=count_finished(study))
    if progress.done_at_start >= n_trials:
        return progress.done_at_start
    objective = make_objective(spec, data, runs_dir, max_window, accelerator)
    study.optimize(objective, callbacks=[progress], timeout=timeout, catch=(Diverged,), gc_after_trial=False)
    return count_finished(study)
