"""Running a study: data prepared once, the study opened or resumed, trials run until N finish.

`--trials N` means N finished trials (complete + pruned): a re-run after an interruption runs
only what is missing, and a finished study says so. The original defaults are enqueued as the
first trial of a new study (and again when Ctrl-C stopped them), so every study has the
baseline to beat. A study is only resumed on its own data and a compatible space.

Several workers (processes here or on other machines) may share one study: each starts a trial
only while finished + running trials are below N, so together they stop at N (a few more only
when two workers start trials at the same instant). With an RDB storage (SQLite included), a
worker that dies leaves a trial whose heartbeat stops: the next worker marks it FAIL and runs
a retry that resumes from its checkpoint. See docs/distributed.md.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from caser.catalogue import CATALOGUE
from caser.config import ModelConfig, TrainConfig
from caser.data_module import PreparedData
from caser.datasets import load_split
from caser.module import Diverged
from search.errors import StudyError
from search.objective import INTERRUPTED, make_objective
from search.retries import retried_numbers
from search.storage import journal_path, open_storage, redact, sqlite_path
from search.studyfile import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_INTERVAL_S = 10
GRACE_INTERVALS = 4  # missed heartbeats before a running trial counts as dead
SQLITE_LOCK_TIMEOUT_S = 60  # several processes write one SQLite file; they queue, not fail
MAX_FAILURE_STREAK = 10
DEFAULT_PERCENTILE = 25.0  # percentile pruner: a trial goes on while in the top quarter
WAIT_POLL_S = 0.5  # how often a worker with nothing to start looks at the study again


def prepare_data(spec: StudySpec) -> tuple[PreparedData, int]:
    """Read, filter and split the data once; the window limit is the median training length."""
    split = load_split(spec.data)
    lengths = split.train.lengths
    max_window = max(int(np.median(lengths[lengths > 0])), 2)
    data = PreparedData(split)
    if not data.has_eval_users("validation"):  # else every trial would fail on it
        raise StudyError(f"{spec.path}: no user has a validation item to evaluate trials on: the "
                         "data is too small for the split, or data.val_frac is 0")
    return data, max_window


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    return samplers[spec.sampler]()


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner with its `[pruners.<name>]` options (Hyperband's budget defaults to
    the study's max_epochs)."""
    options = spec.pruner_options.get(spec.pruner, {})
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(**options),
        # Optuna's PercentilePruner has no default percentile; a study without the table gets
        # the default study's quarter, so that `--pruner percentile` works on any study.
        "percentile": lambda: optuna.pruners.PercentilePruner(**{"percentile": DEFAULT_PERCENTILE, **options}),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(**options),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(**{"max_resource": spec.max_epochs, **options}),
        "none": optuna.pruners.NopPruner,
    }
    try:
        return pruners[spec.pruner]()
    except (TypeError, ValueError) as exc:  # an unknown option; a value out of range
        raise StudyError(f"{spec.path}: pruners.{spec.pruner}: {exc}") from None


def default_params(spec: StudySpec) -> dict[str, Any]:
    """The original implementation's values for every searched parameter that can take them."""
    defaults = {**asdict(ModelConfig()), **asdict(TrainConfig())}
    return {name: defaults[name] for name, dim in spec.space.items() if dim.contains(defaults[name])}


def check_space_fits(spec: StudySpec, max_window: int) -> None:
    """Refuse a space whose smallest L + T already exceeds the data's window limit."""
    smallest = {name: dim.smallest() for name, dim in spec.space.items()}
    L = spec.fixed.get("L", smallest.get("L", ModelConfig.L))
    T = spec.fixed.get("T", smallest.get("T", ModelConfig.T))
    if L + T > max_window:
        raise StudyError(f"{spec.path}: the smallest L + T = {L + T} exceeds the data's limit "
                         f"{max_window} (median training sequence): lower space.L or space.T")


def open_study(
    spec: StudySpec,
    storage_url: str,
    seed: int,
    heartbeat: int = HEARTBEAT_INTERVAL_S,
    runs_dir: Path | None = None,
    target: int | None = None,
) -> optuna.Study:
    """Create or resume the study; a study stored with another metric or direction is refused,
    and so is a new study whose runs_dir already holds trial runs under its name. Defaults
    stopped by Ctrl-C are queued again while the study has fewer than `target` finished trials."""
    sampler, pruner = make_sampler(spec, seed), make_pruner(spec)  # their mistakes touch no storage
    rdb_kwargs: dict[str, Any] = {}
    if "://" in storage_url:
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=1, inherit_intermediate_values=True  # so a resumed trial keeps its curve
        )
        rdb_kwargs = {
            "heartbeat_interval": heartbeat,
            "grace_period": GRACE_INTERVALS * heartbeat,
            "heartbeat_stale_trial_callback": retry,
        }
        if storage_url.startswith("sqlite:"):
            rdb_kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    file = sqlite_path(storage_url) or journal_path(storage_url)
    new_file = file is not None and not file.exists()
    if runs_dir is not None and new_file and file.parent.is_dir():  # before opening creates it
        refuse_earlier_runs(spec.name, runs_dir, redact(storage_url))
    storage = _open_racing(storage_url, rdb_kwargs)
    if runs_dir is not None and not new_file and not _has_study(storage, spec.name):
        refuse_earlier_runs(spec.name, runs_dir, redact(storage_url))
    try:
        study = optuna.create_study(
            study_name=spec.name, storage=storage, direction=spec.direction, load_if_exists=True,
            sampler=sampler, pruner=pruner,
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
    trials = study.get_trials(deepcopy=False)
    check_resumable(spec, stored, trials, redact(storage_url))
    if any(t.state.is_finished() for t in trials):
        # Resuming: a sampler seeded as in the first run would replay that run's draws.
        resumed = np.random.SeedSequence([seed % 2**32, len(trials)]).generate_state(1)[0]
        study.sampler = make_sampler(spec, int(resumed))
    if not trials:
        study.enqueue_trial(default_params(spec), user_attrs={"is_default": True}, skip_if_exists=True)
    elif default_was_interrupted(trials) and (target is None or count_finished(study) < target):
        # Machines starting together may each queue a copy; the report reads the first.
        study.enqueue_trial(default_params(spec), user_attrs={"is_default": True})
    return study


def refuse_earlier_runs(name: str, runs_dir: Path, where: str) -> None:
    """Refuse to start a new study over the trial runs of an earlier one of the same name (a
    deleted database, another storage): their TensorBoard curves would mix with the new ones
    and a retried trial could resume from the other study's checkpoint."""
    earlier = sorted(p.name for p in (Path(runs_dir) / name).glob("trial_*"))
    if earlier:
        raise StudyError(f"{Path(runs_dir) / name} holds the runs of another study named {name!r} "
                         f"({earlier[0]}..{earlier[-1]}), not one in {where}; move it away or use "
                         "another --runs-dir")


def _has_study(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def check_resumable(spec: StudySpec, stored: Mapping[str, Any], trials: list[FrozenTrial], where: str) -> None:
    """Refuse to resume a study on other data, or with a parameter whose kind or choices
    changed (Optuna would fail every trial on it); a wider or narrower range is fine."""
    data = stored.get("data")
    before, now = data_identity(data or {}), data_identity(asdict(spec.data))
    if data is not None and before != now:
        changed = ", ".join(f"{k} {data.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v)
        raise StudyError(f"study {spec.name!r} in {where} was run on other data ({changed}); "
                         "use another --storage or study name, or the study's own data")
    latest: dict[str, BaseDistribution] = {}
    for trial in trials:
        latest.update(trial.distributions)
    for name, dimension in spec.space.items():
        if name not in latest:
            continue
        try:
            check_distribution_compatibility(latest[name], dimension.distribution())
        except ValueError as exc:
            raise StudyError(f"{spec.path}: space.{name} cannot change this way in the existing study "
                             f"{spec.name!r} in {where} ({exc}); use another --storage or study name") from None


def data_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data attributes with a file spec as its absolute path: the same file named from
    another directory is the same data, and the same name from another directory is not.
    (A study stored with a relative path is taken relative to the current directory.)"""
    out = dict(data)
    spec = str(out.get("spec", ""))
    if spec and not spec.startswith("synthetic") and spec not in CATALOGUE:  # a named dataset is no path
        out["spec"] = str(Path(spec).expanduser().resolve())
    return out


def default_was_interrupted(trials: list[FrozenTrial]) -> bool:
    """True when the defaults' trial was stopped by Ctrl-C and nothing has run them since, so
    that the study keeps its baseline. A default that failed for another reason (diverged)
    is not run again."""
    retried = retried_numbers(trials)  # a dead worker's trial stands for its retry
    defaults = [t for t in trials if t.user_attrs.get("is_default") and t.number not in retried]
    return bool(defaults) and all(
        t.state == TrialState.FAIL and t.user_attrs.get("reason") == INTERRUPTED for t in defaults
    )


def _open_racing(storage_url: str, rdb_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    """Open the storage; machines starting together on an empty database race to create
    Optuna's tables, and the losers see a duplicate-key error: by then the tables exist."""
    for attempt in range(3):
        try:
            return open_storage(storage_url, **rdb_kwargs)
        except StudyError as exc:
            if attempt == 2 or not any(m in str(exc) for m in ("duplicate key", "already exists")):
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def study_attrs(spec: StudySpec) -> dict[str, Any]:
    """What report.py needs to know about the study (see search/report)."""
    return {
        "metric": spec.metric,
        "direction": spec.direction,
        "data": data_identity(asdict(spec.data)),  # a file by its absolute path
        "max_epochs": spec.max_epochs,
        "seed": spec.seed,  # every trial's training seed, for the report's reproduce command
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
    stopped: bool = False  # set when the sweep should start no more trials

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
            self.stopped = True
        if finished >= self.target:
            self.stopped = True
        if self.stopped:
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
    keep_checkpoints: bool = False,
    worker: str | None = None,
) -> int:
    """Run trials until the study has n_trials finished ones; returns how many finished now.

    One trial per `optimize` call, so the count is checked before each trial starts: while
    other workers' running trials would make up the rest, wait for them instead (failing any
    whose heartbeat stopped, which queues its retry).
    """
    progress = Progress(target=n_trials, report=report, done_at_start=count_finished(study))
    heartbeats = has_heartbeat(study)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    run_one = make_objective(spec, data, runs_dir, max_window, accelerator, keep_checkpoints)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)  # who ran what, across processes and machines
        return run_one(trial)

    deadline = time.monotonic() + timeout if timeout is not None else None
    waiting_for: list[int] = []
    while not progress.stopped and (deadline is None or time.monotonic() < deadline):
        trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        finished = sum(t.state in FINISHED for t in trials)
        if finished >= n_trials:
            break
        # Without heartbeats a RUNNING trial may belong to a dead worker forever: don't wait.
        if heartbeats and len(trials) >= n_trials:
            running = sorted(t.number for t in trials if t.state == TrialState.RUNNING)
            if running != waiting_for:  # say why this worker idles, once per change
                report(f"waiting: running trials {running} would make {n_trials} finished")
                waiting_for = running
            optuna.storages.fail_stale_trials(study)
            time.sleep(WAIT_POLL_S)
            continue
        try:
            study.optimize(
                objective, n_trials=1, callbacks=[progress], catch=(Diverged,), gc_after_trial=False
            )
        except ValueError as exc:
            # Another worker took this worker's trial for dead (its heartbeat was late, as on an
            # overloaded machine) and failed it; the retry it queued will redo the trial.
            if not str(exc).startswith("Cannot tell a "):
                raise
            report(f"a trial of this worker was failed by another one as stale ({exc}); its retry runs it")
    return count_finished(study)


def has_heartbeat(study: optuna.Study) -> bool:
    """RDB storages opened by open_study beat; Optuna's journal storage cannot (no heartbeat)."""
    interval = getattr(study._storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def stale_running(study: optuna.Study) -> list[int]:
    """Running trials a storage without heartbeats cannot tell from a dead worker's."""
    if has_heartbeat(study):
        return []
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
