"""Opening a sweep's study: created or resumed in its storage, with the original defaults queued.

A new study records what the report needs (search/record.py) and gets the defaults as its
first trial, so every study has the baseline to beat; a stored one goes on only under the
resume policy (search/resume.py). With an RDB storage (SQLite included) running trials beat:
one whose worker died is failed and retried from its checkpoint (docs/distributed.md).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from caser.config import ModelConfig, TrainConfig, with_current_data_names
from search import interrupts, record
from search.errors import StudyError
from search.options import SweepOptions
from search.resume import check_resumable, data_identity, default_runs_to_queue, resumed_seed
from search.run_dirs import TRIAL_DIR_GLOB, study_dir
from search.seeding import PerTrialSeed
from search.storage import journal_path, open_storage, redact, sqlite_path, sqlite_url
from search.strategy import make_pruner, make_sampler, pruner_options, sampler_args
from search.studyfile import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
GRACE_INTERVALS = 4  # missed heartbeats before a running trial counts as dead
SQLITE_LOCK_TIMEOUT_S = 60  # several processes write one SQLite file; they queue, not fail
CREATOR_GRACE_S = 10  # a study found without trials: how long its creator may take to queue them
CREATOR_POLL_S = 0.2
RACE_MESSAGES = ("duplicate key", "already exists", "UNIQUE constraint failed")  # lost a table race


def open_study(spec: StudySpec, storage_url: str, options: SweepOptions,
               fingerprint: str | None = None) -> optuna.Study:
    """Create or resume the study; a study stored with another metric or direction is refused,
    and so is a new study whose runs_dir already holds trial runs under its name, and one run
    on data whose prepared split had another `fingerprint` (search/resume.py). Defaults
    stopped by Ctrl-C are queued again while the study has fewer than n_trials finished."""
    seed = options.sampler_seed(spec.seed)
    # Built now, so that their mistakes touch no storage (the wrapper builds its first sampler).
    sampler, pruner = _seeded_per_trial(spec, seed), make_pruner(spec)
    where = redact(storage_url)
    file = sqlite_path(storage_url) or journal_path(storage_url)
    new_file = file is not None and not file.exists()
    if new_file and file.parent.is_dir():  # before opening creates it
        refuse_earlier_runs(spec.name, options.runs_dir, where)
    storage = _open_racing(storage_url, _heartbeat_kwargs(storage_url, options.heartbeat))
    if not new_file and not _has_study(storage, spec.name):
        refuse_earlier_runs(spec.name, options.runs_dir, where)
    try:
        with interrupts.deferred():  # Ctrl-C waits until the new study has its defaults queued
            study, created = _create_or_load(spec, storage, sampler, pruner)
            if created:  # first of all, so that processes loading the study find them queued
                _enqueue_default(study, spec, range(min(spec.default_seeds, options.n_trials - 1) + 1))
    except ValueError as exc:  # e.g. an existing study with another direction
        raise StudyError(f"study {spec.name!r} in {where}: {exc}") from None
    stored = study.user_attrs
    if stored.get(record.METRIC, spec.metric) != spec.metric or study.direction.name.lower() != spec.direction:
        raise StudyError(
            f"study {spec.name!r} in {where} maximises/minimises "
            f"{stored.get(record.METRIC)} ({study.direction.name.lower()}), not {spec.metric} ({spec.direction}); "
            f"use another --storage or study name"
        )
    trials = study.get_trials(deepcopy=False)
    if not created and not trials and not stored:
        # Its creator queues the defaults before it records the study's attributes: it was
        # stopped in between, or is still there; wait for it a moment, then queue them here.
        trials = _wait_for_first_trial(study)
        if not trials:
            _enqueue_default(study, spec, range(min(spec.default_seeds, options.n_trials - 1) + 1))
        stored = study.user_attrs  # the creator's, when it got that far
    check_resumable(spec, stored, trials, where, fingerprint)
    if not stored:
        for key, value in study_attrs(spec, seed).items():
            study.set_user_attr(key, value)
    if fingerprint is not None:  # a new study, or one from before fingerprints
        if stored.get(record.DATA_FINGERPRINT) != fingerprint:
            study.set_user_attr(record.DATA_FINGERPRINT, fingerprint)
        now = data_identity(asdict(spec.data))
        if stored and data_identity(with_current_data_names(stored.get(record.DATA) or {})) != now:
            study.set_user_attr(record.DATA, now)  # its file moved: the study follows it
    if any(t.state.is_finished() for t in trials):
        study.sampler = _seeded_per_trial(spec, resumed_seed(seed, len(trials)))
    missing = default_runs_to_queue(trials, spec.default_seeds)
    # A RUNNING trial (a dead worker's, say, whose retry comes once it is stale) will make up
    # part of the target, as a WAITING one will.
    pending = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    left = options.n_trials - count_finished(study) - pending
    if trials and missing and left > 0:
        # Two processes resuming at the same instant may each queue a copy; the report reads the first.
        _enqueue_default(study, spec, missing[:left])
    return study


def _seeded_per_trial(spec: StudySpec, seed: int) -> PerTrialSeed:
    """The study's sampler, seeded anew for every trial (search/seeding.py says why)."""
    return PerTrialSeed(lambda trial_seed: make_sampler(spec, trial_seed), seed)


def _create_or_load(spec: StudySpec, storage: optuna.storages.BaseStorage, sampler: optuna.samplers.BaseSampler,
                    pruner: optuna.pruners.BasePruner) -> tuple[optuna.Study, bool]:
    """The study, and whether this process created it: only the creator queues the defaults,
    so that processes starting together do not each queue (and train) them."""
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, direction=spec.direction,
                                    sampler=sampler, pruner=pruner)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner), False


def _enqueue_default(study: optuna.Study, spec: StudySpec, runs: Iterable[int]) -> None:
    """Queue these runs of the defaults: 0, the default, and k, its k-th extra seed, trained with
    the study's seed + k (the noise floor). They count toward --trials like any trial."""
    for k in runs:
        attrs = {record.IS_DEFAULT: True, **({record.DEFAULT_REPLICA: k} if k else {})}
        study.enqueue_trial(default_params(spec), user_attrs=attrs)


def _wait_for_first_trial(study: optuna.Study) -> list[FrozenTrial]:
    deadline = time.monotonic() + CREATOR_GRACE_S
    while time.monotonic() < deadline:
        time.sleep(CREATOR_POLL_S)
        trials = study.get_trials(deepcopy=False)
        if trials:
            return trials
    return []


def _heartbeat_kwargs(storage_url: str, heartbeat: int) -> dict[str, Any]:
    """RDB storages: heartbeats, and a dead worker's trial retried once with its curve."""
    if "://" not in storage_url:
        return {}
    kwargs: dict[str, Any] = {
        "heartbeat_interval": heartbeat,
        "grace_period": GRACE_INTERVALS * heartbeat,
        "heartbeat_stale_trial_callback": stale_trial_retry(),
    }
    if storage_url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    return kwargs


def stale_trial_retry() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """What a dead worker's trial becomes: a queued copy of it, retried once. The copy starts
    without the dead trial's curve: a retry that starts over reports its own epochs, and one
    that resumes reports those its checkpoint holds (search/trial_run.py), which may be fewer
    than the dead trial reported, since checkpoints are written every few seconds."""
    return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1, inherit_intermediate_values=False)


def refuse_earlier_runs(name: str, runs_dir: Path, where: str) -> None:
    """Refuse to start a new study over the trial runs of an earlier one of the same name (a
    deleted database, another storage): their TensorBoard curves would mix with the new ones
    and a retried trial could resume from the other study's checkpoint."""
    folder = study_dir(runs_dir, name)
    earlier = sorted(p.name for p in folder.glob(TRIAL_DIR_GLOB))
    if earlier:
        raise StudyError(f"{folder} holds the runs of another study named {name!r} "
                         f"({earlier[0]}..{earlier[-1]}), not one in {where}; move it away or use "
                         "another --runs-dir")


def _has_study(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _open_racing(storage_url: str, rdb_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    """Open the storage; processes starting together on an empty database race to create
    Optuna's tables, and the losers see a duplicate-key error (PostgreSQL) or a failed UNIQUE
    constraint (SQLite): by then the tables exist."""
    file = sqlite_path(storage_url)
    if file is not None and not file.exists() and file.parent.is_dir():
        _create_sqlite_file(file)
    for attempt in range(3):
        try:
            return open_storage(storage_url, **rdb_kwargs)
        except StudyError as exc:
            if attempt == 2 or not any(m in str(exc) for m in RACE_MESSAGES):
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def _create_sqlite_file(path: Path) -> None:
    """Optuna creates its tables and indexes one statement at a time, and SQLite commits each:
    a sweep killed meanwhile left a file without, say, the unique index on study names, and
    every later process then created a study of the same name of its own. So the tables are
    built in a file of this process and linked into place, which happens whole or not at all;
    a process that loses that race to another uses the other's file. Any failure here is left
    to the ordinary opening to report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with interrupts.deferred():
            storage = open_storage(sqlite_url(tmp))
            storage.engine.dispose()
            os.link(tmp, path)
    except (StudyError, OSError):  # FileExistsError: another process's file is there
        pass
    finally:
        tmp.unlink(missing_ok=True)


def study_attrs(spec: StudySpec, sampler_seed: int | None = None) -> dict[str, Any]:
    """What the report and a resuming sweep need to know about the study: among it the
    stopping rule, the budget and the sampler and pruner as built (sampler_seed: the creating
    worker's; default the study's seed)."""
    seed = spec.seed if sampler_seed is None else sampler_seed
    return {
        record.METRIC: spec.metric,
        record.DIRECTION: spec.direction,
        record.DATA: data_identity(asdict(spec.data)),  # a file by its absolute path
        record.MAX_EPOCHS: spec.max_epochs,
        record.SEED: spec.seed,  # every trial's training seed, for the report's reproduce command
        record.FIXED: dict(spec.fixed),
        record.STUDY_FILE: str(spec.path),
        record.PATIENCE: spec.patience or None,  # None: trials train their whole budget
        record.MIN_DELTA: float(spec.min_delta),
        record.REL_DELTA: float(spec.rel_delta),
        record.PATIENCE_GROWTH: float(spec.patience_growth),
        record.WARMUP: spec.warmup,
        record.DEFAULT_SEEDS: spec.default_seeds,
        record.SAMPLER: {"name": spec.sampler, "args": sampler_args(spec, seed)},
        record.PRUNER: {"name": spec.pruner, "options": pruner_options(spec)},
    }


def default_params(spec: StudySpec) -> dict[str, Any]:
    """The original implementation's values for every searched parameter that can take them."""
    defaults = {**asdict(ModelConfig()), **asdict(TrainConfig())}
    return {name: defaults[name] for name, dim in spec.space.items() if dim.contains(defaults[name])}


def counts_toward_target(trial: optuna.trial.FrozenTrial) -> bool:
    """A finished trial (complete or pruned) that trained: an infeasible one never counts
    toward `--trials N`, so that a space with infeasible corners still trains N trials."""
    return trial.state in FINISHED and not record.is_infeasible(trial)


def count_finished(study: optuna.Study) -> int:
    """The finished trials that count toward `--trials N` (`counts_toward_target`)."""
    return sum(map(counts_toward_target, study.get_trials(deepcopy=False, states=FINISHED)))
