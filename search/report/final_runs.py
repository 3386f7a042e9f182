"""The final evaluation's trainings: one run (to convergence on validation, or train+validation
then test) turned into its cached record, run here or in worker processes.

Every (configuration, seed) pair is independent of the others, so `--final-jobs J` trains J of
them at once, each in a process of its own with cores // J torch threads (`Workers`); one job
runs in this process (`InProcess`). Only this process writes to the study: a worker returns its
record and the caller stores it, so a worker killed with its parent loses one run, never the
study. Workers are started with `spawn` (torch's OpenMP threads do not survive a fork), ignore
Ctrl-C (the parent stops them) and, on Linux, die with their parent.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from caser.config import DataConfig, ModelConfig, TrainConfig

AP_DIGITS = 6  # per-user AP as cached: differences below 1e-6 mean nothing
# A convergence run also records its best value this share of its cap before it ended: how
# fast it was still gaining there says whether another configuration could overtake it beyond
# the cap (`search.report.convergence.overtaking`).
RECENT_SHARE = 0.2
POLL_S = 0.2  # how often the parent looks at its workers


@dataclass(frozen=True)
class Converged:
    """One seed's run to convergence on validation."""

    epoch: int  # the best validation epoch: the test run trains this many
    value: float  # the metric there
    epochs_run: int
    stop_reason: str  # caser.stopping: patience or budget
    # The best value up to `window` epochs before the run ended; None when the run was shorter
    # than that, or cached by a report that did not record it.
    value_before: float | None = None
    window: int | None = None


@dataclass(frozen=True)
class Tested:
    """One seed's test run: its metrics and every test user's AP."""

    epochs: int
    metrics: dict[str, float]
    users: tuple[int, ...] = ()
    user_ap: tuple[float, ...] = ()


@dataclass(frozen=True)
class Job:
    """One training: `converge` under `stopping` for `train_config.epochs` at most, or `test`."""

    kind: str
    key: str  # the configuration's cache key
    seed: int
    model_config: ModelConfig
    train_config: TrainConfig  # seed and epochs set
    data_config: DataConfig
    metric: str = "val/map"
    maximize: bool = True
    stopping: Any = None  # caser.stopping.StoppingRule for `converge`


def run_job(train_fn: Callable[..., Any], job: Job) -> Converged | Tested:
    """Train as the job says and return its record; ValueError when a convergence run logged
    no value of the metric."""
    if job.kind == "converge":
        fit = train_fn(job.model_config, job.train_config, job.data_config, protocol="validation",
                       stopping=job.stopping)
        rows = [r for r in fit.history if job.metric in r]
        if not rows:
            raise ValueError(f"no {job.metric} was logged while converging")
        sign = 1.0 if job.maximize else -1.0
        best = max(rows, key=lambda r: (sign * r[job.metric], -r["epoch"]))
        window = max(1, round(RECENT_SHARE * job.train_config.epochs))
        earlier = [r for r in rows if r["epoch"] <= len(fit.history) - window]
        before = (float(max(earlier, key=lambda r: sign * r[job.metric])[job.metric])
                  if earlier else None)
        return Converged(int(best["epoch"]), float(best[job.metric]), len(fit.history),
                         str(fit.stop_reason), before, window if earlier else None)
    fit = train_fn(job.model_config, job.train_config, job.data_config, protocol="test", stopping=None)
    users = tuple(int(u) for u in np.asarray(fit.eval_users).tolist())
    ap = tuple(round(float(a), AP_DIGITS) for a in np.asarray(fit.user_ap).tolist())
    return Tested(job.train_config.epochs, {k: float(v) for k, v in fit.metrics.items()}, users, ap)


def record_of(result: Converged | Tested) -> dict[str, Any]:
    """What the study caches of a run."""
    if isinstance(result, Converged):
        record = {"epoch": result.epoch, "value": result.value, "epochs_run": result.epochs_run,
                  "stop_reason": result.stop_reason}
        if result.value_before is not None:
            record |= {"value_before": result.value_before, "window": result.window}
        return record
    return {"metrics": result.metrics, "users": list(result.users), "user_ap": list(result.user_ap)}


def converged_from(entry: Any) -> Converged:
    """A cached convergence run; KeyError, TypeError or ValueError when it is not one. Its
    value before the end may be missing (an older report), not half there."""
    epoch, epochs_run = _whole(entry["epoch"]), _whole(entry["epochs_run"])
    if not 1 <= epoch <= epochs_run:
        raise ValueError(f"epoch {epoch} of {epochs_run} run")
    before = window = None
    if "value_before" in entry or "window" in entry:
        before, window = _number(entry["value_before"]), _whole(entry["window"])
        if not 1 <= window < epochs_run:
            raise ValueError(f"a window of {window} epochs in a run of {epochs_run}")
    return Converged(epoch, _number(entry["value"]), epochs_run, str(entry["stop_reason"]),
                     before, window)


def tested_from(entry: Any, epochs: int, metrics_needed: tuple[str, ...]) -> Tested:
    """A cached test run with every needed test metric; its per-user AP may be missing (an older
    report), not cut short."""
    metrics = {str(name): _number(value) for name, value in entry["metrics"].items()}
    for name in metrics_needed:
        if name not in metrics:
            raise KeyError(name)
    users = tuple(_whole(u) for u in entry.get("users", ()))
    user_ap = tuple(_number(a) for a in entry.get("user_ap", ()))
    if len(users) != len(user_ap):
        raise ValueError(f"{len(users)} users but {len(user_ap)} AP values")
    return Tested(epochs, metrics, users, user_ap)


def _whole(x: Any) -> int:
    if not math.isfinite(_number(x)) or x != math.floor(x):
        raise ValueError(f"{x!r} is not a whole number")
    return int(x)


def _number(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{x!r} is not a number")
    return float(x)


class CaserTrain:
    """`caser.train.fit` on the job's data, each data split loaded once per process; picklable,
    so that workers get it without the data (each loads its own)."""

    def __init__(self, config: DataConfig | None = None, prepared: Any = None) -> None:
        self._prepared: dict[DataConfig, Any] = {config: prepared} if prepared is not None else {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_prepared": {}}

    def __call__(self, model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig,
                 protocol: str = "test", stopping: Any = None) -> Any:
        from caser.data_module import PreparedData
        from caser.datasets import load_split
        from caser.train import fit

        if data_config not in self._prepared:
            self._prepared[data_config] = PreparedData(load_split(data_config))
        return fit(model_config, train_config, self._prepared[data_config], protocol=protocol,
                   stopping=stopping)


class _Done:
    """A job already run (in this process)."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def ready(self) -> bool:
        return True

    def get(self) -> Any:
        return self.result


class InProcess:
    """Runs each job as it is submitted, in this process, with this process's torch threads."""

    slots = 1

    def __init__(self, train_fn: Callable[..., Any]) -> None:
        self.train_fn = train_fn

    def submit(self, job: Job) -> _Done:
        return _Done(run_job(self.train_fn, job))

    def close(self, *, cancel: bool = False) -> None:
        pass


class Workers:
    """`jobs` worker processes with `threads` torch threads each.

    A process pool executor rather than `multiprocessing.Pool`: a Pool replaces a worker that
    died (killed, out of memory) and loses its job, so its result never comes; and its
    `terminate` can wait forever on a queue lock that a dead worker held. The executor marks
    itself broken instead, and every job it had fails at once."""

    def __init__(self, train_fn: Callable[..., Any], jobs: int, threads: int) -> None:
        self.slots = jobs
        self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker, initargs=(train_fn, threads))
        self._seen: dict[int, Any] = {}  # pid: process, every worker this executor started

    def dead(self) -> int | None:
        """The exit code of a worker that died (killed, out of memory), or None. The executor
        ends the others with SIGTERM once one is gone (they exit 143, `_start_worker`): another
        code, where there is one, is the cause."""
        codes = [p.exitcode for p in self._seen.values() if p.exitcode is not None]
        return next((c for c in codes if c not in (-signal.SIGTERM, 128 + signal.SIGTERM)),
                    codes[0] if codes else None)

    def submit(self, job: Job) -> _Pending:
        future = self.pool.submit(_run_in_worker, job)
        self._seen.update(self.pool._processes or {})  # started as jobs come (spawn)
        return _Pending(future, self)

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            self.pool.shutdown(wait=False, cancel_futures=True)
            for process in self._seen.values():
                if process.exitcode is None:
                    process.kill()
            for process in self._seen.values():
                process.join()
        self.pool.shutdown(wait=True)


class WorkerDied(RuntimeError):
    """A worker process ended before returning its run."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class _Pending:
    """A job submitted to `Workers`: ready when it ran or its worker died."""

    def __init__(self, future: Future, workers: Workers) -> None:
        self.future, self.workers = future, workers

    def ready(self) -> bool:
        return self.future.done()

    def get(self) -> Any:
        try:
            return self.future.result()
        except BrokenProcessPool:
            raise WorkerDied(self.workers.dead()) from None


_WORKER: dict[str, Any] = {}


def _start_worker(train_fn: Callable[..., Any], threads: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers
    # ... with SIGTERM, when it was stopped itself: end without a word (Lightning's own
    # SIGTERM handler calls this one after its own, which would raise a traceback).
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
    _die_with_parent()
    torch.set_num_threads(threads)
    _WORKER["train_fn"] = train_fn


def _run_in_worker(job: Job) -> Converged | Tested:
    return run_job(_WORKER["train_fn"], job)


def _die_with_parent() -> None:
    """Linux: SIGKILL when the parent dies, so a killed report leaves no training behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: a worker finishes its run, then exits
        pass
