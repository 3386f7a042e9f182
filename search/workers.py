"""K worker processes on this machine sharing one study: `python sweep.py --workers 3`.

The parent, the study already open, starts K copies of its command with `--worker-index i`
(sampler seed = seed + i, torch threads = cores // K) and relays their lines as `[w1] ...`.
Workers run in their own sessions, so Ctrl-C (or SIGTERM) reaches only the parent, which passes
the same signal to each: every worker records its running trial as interrupted and exits. A
second one kills them. A worker that dies on its own (killed, crashed) leaves the others going;
the parent then says what became of its trial (`worker_ended`).
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from search import interrupts

if TYPE_CHECKING:
    import optuna

SWEEP = Path(__file__).resolve().parent.parent / "sweep.py"
STOP_TIMEOUT_S = 60  # a worker finishing its interrupted trial's bookkeeping
# A worker process with torch, Lightning and Optuna imported, before any data: about 120 MB
# each in issue 24's run of 1,000 workers on a 24 GB machine.
WORKER_FLOOR_BYTES = 120 * 2**20


def worker_label(index: int) -> str:
    """`w1` for worker index 0: the prefix of its lines."""
    return f"w{index + 1}"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, a batch scheduler's
    allocation), which os.cpu_count ignores, else every core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


def process_size() -> int:
    """This process's peak resident memory in bytes (what a worker doing the same work reaches)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def worker_memory() -> int:
    """What one worker process needs at least: as much as this process at its peak, which has
    imported torch, Lightning and Optuna and prepared the data, as each worker will; never less
    than WORKER_FLOOR_BYTES. A trial's training needs more on top (caser/memory.py checks that
    before it allocates): this bound only keeps K workers from exhausting the machine at start."""
    return max(WORKER_FLOOR_BYTES, process_size())


def plan_workers(requested: int, left: int, available: int | None, per_worker: int, cores: int,
                 say: Callable[[str], None]) -> int:
    """How many worker processes to start for `requested`: never more than the trials `left` to
    run, nor than the `available` memory holds at `per_worker` bytes each (at least one: this
    process already runs); a line says so, and a warning when they outnumber the usable
    `cores`. (`--workers 1000 --trials 2` started 1,000 processes, and the kernel's
    out-of-memory killer ended processes that had nothing to do with the sweep.)"""
    count = min(requested, max(left, 1))
    if count < requested:
        say(f"starting {_workers(count)}, not {requested}: only {left} trials are left to run")
    if available is not None and count > max(1, available // per_worker):
        fitting = max(1, available // per_worker)
        say(f"starting {_workers(fitting)}, not {count}: each needs about {per_worker / 2**20:.0f} MB (the "
            f"size of this process, which holds the data as each worker will) and {available / 2**30:.1f} GB "
            "is available")
        count = fitting
    if count > cores:
        say(f"warning: {count} workers on {cores} usable cores: each trains with 1 torch thread and they "
            "take turns on the cores, so each trial is slower")
    return count


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count != 1 else ''}"


def torch_threads(workers: int) -> int:
    """Each worker's share of the cores, so K workers do not oversubscribe the machine."""
    return max(1, usable_cores() // workers)


@dataclass(frozen=True)
class Pool:
    """How the workers ended: their exit statuses by label, and whether the parent stopped them."""

    codes: dict[str, int]
    interrupted: bool  # the parent was interrupted and passed the signal on

    def ended_early(self) -> list[tuple[str, int]]:
        """(label, status) of the workers that did not end normally."""
        return [(label, code) for label, code in self.codes.items() if code != 0]


def run_workers(argv: Sequence[str], workers: int, say: Callable[[str], None], first_index: int = 0) -> Pool:
    """Run `sweep.py argv --worker-index i` for first_index <= i < first_index + workers (a
    machine's own --worker-index is its first) until all have ended."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    indexes = range(first_index, first_index + workers)
    procs = [
        subprocess.Popen(
            # The last --workers and --worker-index win over argv's: the count started, and its place.
            [sys.executable, str(SWEEP), *argv, "--workers", str(workers), "--worker-index", str(i), "--pool-worker"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,  # Ctrl-C goes to the parent only; it passes the signal on
        )
        for i in indexes
    ]
    readers = [
        threading.Thread(target=_relay, args=(proc, worker_label(i), say), daemon=True)
        for i, proc in zip(indexes, procs)
    ]
    for reader in readers:
        reader.start()
    interrupted = False
    try:
        codes = [proc.wait() for proc in procs]
    except KeyboardInterrupt:
        interrupted = True
        codes = _stop(procs, say)
    for reader in readers:
        reader.join(timeout=5)
    return Pool({worker_label(i): code for i, code in zip(indexes, codes)}, interrupted)


def ended_how(code: int) -> str:
    """'was stopped by SIGKILL' for a process's exit code -9 (or 137), else 'exited with status N'."""
    signum = -code if code < 0 else code - 128 if code in (130, 137, 143) else None
    return f"was stopped by {signal.Signals(signum).name}" if signum else f"exited with status {code}"


def worker_ended(study: optuna.Study, label: str, code: int) -> str:
    """One line on a worker that ended early: by which signal (or status), and what became of
    the trial it was running, as the study records it now."""
    how = ended_how(code)
    from optuna.trial import TrialState  # here: sweep.py imports this module before optuna

    from search.record import REASON, WORKER, was_interrupted
    from search.retries import retry_history

    trials = study.get_trials(deepcopy=False)
    own = [t for t in trials if t.user_attrs.get(WORKER) == label and t.state != TrialState.WAITING]
    last = own[-1] if own else None
    if last is None or last.state.is_finished() and last.state != TrialState.FAIL:
        return f"{label} {how} between trials (its lines above say why)"
    line = f"{label} {how} during trial {last.number}: "
    retries = [t for t in trials if last.number in retry_history(t)]
    if last.state == TrialState.RUNNING:
        return line + "it is still RUNNING; once its heartbeat is stale a worker fails it and retries it"
    if retries:
        return line + f"trial {last.number} is retried as trial {retries[0].number} ({retries[0].state.name})"
    reason = str(last.user_attrs.get(REASON, "failed"))
    if was_interrupted(reason):
        return line + f"trial {last.number} is recorded as interrupted and not retried"
    return line + f"trial {last.number} ended {last.state.name} ({reason})"


def _relay(proc: subprocess.Popen, label: str, say: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        say(f"[{label}] {line.rstrip()}")


def _stop(procs: list[subprocess.Popen], say: Callable[[str], None]) -> list[int]:
    """The signal the parent got (SIGINT or SIGTERM) to every live worker, then wait; a second
    one kills them."""
    sig = interrupts.last()
    say(f"stopping {sum(p.poll() is None for p in procs)} workers ({interrupts.name(sig)} again to kill them)")
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    try:
        for proc in procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
    except KeyboardInterrupt:
        for proc in procs:
            proc.kill()
    return [proc.wait() for proc in procs]
