"""The run loop: trials one at a time until the study has N finished (complete + pruned).

Several workers (processes here or on other machines) may share one study: each starts a trial
only while finished + running trials are below N, so together they stop at N (a few more only
when two workers start trials at the same instant). See docs/distributed.md.
"""
from __future__ import annotations

import time
from typing import Callable

import optuna
from optuna.trial import TrialState

from caser.data_module import PreparedData
from caser.module import Diverged
from search import interrupts, record
from search.errors import StudyError
from search.objective import make_objective
from search.options import SweepOptions
from search.progress import Progress
from search.study import FINISHED, count_finished, counts_toward_target
from search.studyfile import StudySpec

WAIT_POLL_S = 0.5  # how often a worker with nothing to start looks at the study again


def run_sweep(
    spec: StudySpec,
    study: optuna.Study,
    data: PreparedData,
    options: SweepOptions,
    say: Callable[[str], None],
) -> int:
    """Run trials until the study has options.n_trials finished ones; returns how many finished
    now. `say` prints a line (one per finished trial, and why the worker waits). Raises
    StudyError when the sweep gives up before N (too many failed or infeasible trials in a row).

    One trial per `optimize` call, so the count is checked before each trial starts: while
    other workers' running trials would make up the rest, wait for them instead (failing any
    whose heartbeat stopped, which queues its retry).
    """
    n_trials = options.n_trials
    progress = Progress(target=n_trials, say=say, done_at_start=count_finished(study))
    heartbeats = has_heartbeat(study)
    worker = options.worker_label()
    run_one = make_objective(spec, data, options, say)

    def objective(trial: optuna.Trial) -> float:
        try:
            with interrupts.allowed():  # Optuna has stored the trial's start: stop it here
                trial.set_user_attr(record.WORKER, worker)
                return run_one(trial)
        except KeyboardInterrupt:  # also when it came before the training started
            trial.set_user_attr(record.REASON, record.interrupted(interrupts.name()))
            raise

    deadline = time.monotonic() + options.timeout if options.timeout is not None else None
    waiting_for: list[int] = []
    while not progress.stopped and (deadline is None or time.monotonic() < deadline):
        interrupts.check()
        trials = [t for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
                  if t.state == TrialState.RUNNING or counts_toward_target(t)]
        finished = sum(t.state in FINISHED for t in trials)
        if finished >= n_trials:
            break
        # Without heartbeats a RUNNING trial may belong to a dead worker forever: don't wait.
        if heartbeats and len(trials) >= n_trials:
            running = sorted(t.number for t in trials if t.state == TrialState.RUNNING)
            if running != waiting_for:  # say why this worker idles, once per change
                say(f"waiting: running trials {running} would make {n_trials} finished")
                waiting_for = running
            with interrupts.deferred():  # a dead trial failed and its retry queued, or neither
                optuna.storages.fail_stale_trials(study)
            time.sleep(WAIT_POLL_S)
            continue
        try:
            # Ctrl-C and SIGTERM wait while Optuna creates or ends a trial (a trial left RUNNING
            # without a heartbeat would never be failed); inside the objective they stop it.
            with interrupts.deferred():
                study.optimize(
                    objective, n_trials=1, callbacks=[progress], catch=(Diverged,), gc_after_trial=False
                )
        except ValueError as exc:
            # Another worker took this worker's trial for dead (its heartbeat was late, as on an
            # overloaded machine) and failed it; the retry it queued will redo the trial.
            if not str(exc).startswith("Cannot tell a "):
                raise
            say(f"a trial of this worker was failed by another one as stale ({exc}); its retry runs it")
    finished = count_finished(study)
    if progress.gave_up:  # the study did not reach N: not a success
        raise StudyError(f"{progress.gave_up}; {finished} of {n_trials} finished trials are kept")
    return finished


def has_heartbeat(study: optuna.Study) -> bool:
    """RDB storages opened by open_study beat; Optuna's journal storage cannot (no heartbeat)."""
    interval = getattr(study._storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def stale_running(study: optuna.Study) -> list[int]:
    """Running trials a storage without heartbeats cannot tell from a dead worker's."""
    if has_heartbeat(study):
        return []
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
