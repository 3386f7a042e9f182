"""Distributed sweeps against a real PostgreSQL server: worker processes sharing one study.

Each test starts worker PROCESSES (this file run as a script, see `worker` below) on a study in
a throwaway server from tests/helpers/postgres.py, the way `sweep.py` workers on several machines would.
The storage uses Optuna's heartbeat, so a worker killed mid-trial leaves a trial that the next
worker fails and, through RetryHeartbeatStaleTrialCallback, queues again as a WAITING trial.

Run:  python -m pytest tests/search/test_postgres_storage.py     (skips without Debian's postgresql)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from tests.helpers import ROOT

HEARTBEAT_INTERVAL_S = 1
GRACE_PERIOD_S = 2
MAX_RETRY = 1
N_TRIALS = 12
N_WORKERS = 2
WORKER_TIMEOUT_S = 60
RECOVER_TIMEOUT_S = 15  # staleness takes GRACE_PERIOD_S plus a trial or two
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# Heartbeats and the retry callback are experimental in Optuna 5; the warning is known.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def heartbeat_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage every worker opens: heartbeats, and stale trials retried once."""
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=HEARTBEAT_INTERVAL_S,
        grace_period=GRACE_PERIOD_S,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
    )


# ---------------------------------------------------------------- the worker (a child process)


def worker(role: str, url: str, study_name: str, name: str, ready_dir: str) -> None:
    """One worker process. Roles:

    sweep    optimise until the study holds N_TRIALS finished trials (MaxTrialsCallback);
    crash    start one trial whose objective sleeps until the test SIGKILLs the process;
    recover  run short trials until a retried trial has completed.
    """
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=heartbeat_storage(url))
    seconds = {"sweep": 0.05, "crash": 3600.0, "recover": 0.1}[role]

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        trial.set_user_attr("worker", name)
        time.sleep(seconds)
        return x**2

    def stop_after_a_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if any(RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
               for t in completed):
            study.stop()

    # A start line, so that one fast worker cannot finish the sweep before the other has begun.
    Path(ready_dir, name).touch()
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while role == "sweep" and len(os.listdir(ready_dir)) < N_WORKERS:
        if time.monotonic() > deadline:
            sys.exit(f"{name}: the other workers never started")
        time.sleep(0.02)

    if role == "sweep":
        study.optimize(objective, callbacks=[MaxTrialsCallback(N_TRIALS, states=FINISHED)])
    elif role == "crash":
        study.optimize(objective, n_trials=1)
    else:
        study.optimize(objective, callbacks=[stop_after_a_retry], timeout=RECOVER_TIMEOUT_S)


def start_worker(
    role: str, url: str, study_name: str, name: str, ready_dir: Path
) -> subprocess.Popen:
    """This file run as a worker script, with the repository importable as in the tests."""
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    cmd = [sys.executable, __file__, role, url, study_name, name, str(ready_dir)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    """Wait for a worker; fail with its output when it did not exit cleanly."""
    try:
        output, _ = proc.communicate(timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"worker hung for {WORKER_TIMEOUT_S} s:\n{output}") from None
    assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{output}"


def new_study(url: str) -> str:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=url)
    return name


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------- the tests


def test_two_worker_processes_finish_the_sweep_without_duplicate_trials(postgres_url, tmp_path):
    study_name = new_study(postgres_url)
    workers = [start_worker("sweep", postgres_url, study_name, f"w{i}", tmp_path)
               for i in range(N_WORKERS)]
    try:
        for proc in workers:
            finish(proc)
    finally:
        for proc in workers:  # a failed worker must not leave its sibling running
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    trials = optuna.load_study(study_name=study_name, storage=postgres_url).get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    # MaxTrialsCallback stops a worker after its trial; each other worker may be one trial in.
    assert N_TRIALS <= len(finished) <= N_TRIALS + N_WORKERS - 1, [t.state for t in trials]
    assert len(finished) == len(trials), "no trial may be left running, waiting or failed"
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), f"numbers not distinct: {numbers}"
    assert all(t.value == t.params["x"] ** 2 for t in finished)
    assert {t.user_attrs["worker"] for t in finished} == {f"w{i}" for i in range(N_WORKERS)}


def test_killed_worker_trial_fails_and_is_retried_by_the_next_worker(postgres_url, tmp_path):
    study_name = new_study(postgres_url)
    study = optuna.load_study(study_name=study_name, storage=postgres_url)

    crasher = start_worker("crash", postgres_url, study_name, "crasher", tmp_path)
    try:
        wait_for(lambda: any(t.user_attrs.get("worker") == "crasher"
                             for t in study.get_trials(states=(TrialState.RUNNING,))),
                 "the crashing worker to start its trial")
        time.sleep(HEARTBEAT_INTERVAL_S)  # its heartbeat thread has written at least once
    finally:
        os.kill(crasher.pid, signal.SIGKILL)
        crasher.communicate()
    assert crasher.returncode == -signal.SIGKILL
    (dead,) = study.get_trials()
    assert dead.state == TrialState.RUNNING, "nothing but staleness may end the killed trial"

    finish(start_worker("recover", postgres_url, study_name, "recoverer", tmp_path))

    trials = study.get_trials()
    dead = trials[dead.number]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials
               if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == dead.number]
    assert len(retries) == 1, f"expected one retry of trial {dead.number}, got {retries}"
    (retry,) = retries
    assert retry.state == TrialState.COMPLETE
    assert retry.params == dead.params
    assert retry.value == dead.params["x"] ** 2
    assert retry.system_attrs["failed_trial"] == dead.number
    assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [dead.number]
    assert retry.user_attrs["worker"] == "recoverer"
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != dead.number)


if __name__ == "__main__":
    worker(*sys.argv[1:])
