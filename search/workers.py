"""K worker processes on this machine sharing one study: `python sweep.py --workers 3`.

The parent, the study already open, starts K copies of its command with `--worker-index i`
(sampler seed = seed + i, torch threads = cores // K) and relays their lines as `[w1] ...`.
Workers run in their own sessions, so Ctrl-C reaches only the parent, which passes one SIGINT
to each: every worker records its running trial as failed and exits. A second Ctrl-C kills them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

SWEEP = Path(__file__).resolve().parent.parent / "sweep.py"
STOP_TIMEOUT_S = 60  # a worker finishing its interrupted trial's bookkeeping


def worker_label(index: int) -> str:
    """`w1` for worker index 0: the prefix of its lines."""
    return f"w{index + 1}"


def torch_threads(workers: int) -> int:
    """Each worker's share of the cores, so K workers do not oversubscribe the machine."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_workers(argv: Sequence[str], workers: int, say: Callable[[str], None], first_index: int = 0) -> int:
    """Run `sweep.py argv --worker-index i` for first_index <= i < first_index + workers (a
    machine's own --worker-index is its first); the worst exit status wins."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    indexes = range(first_index, first_index + workers)
    procs = [
        subprocess.Popen(
            # The last --worker-index wins over the machine's own in argv.
            [sys.executable, str(SWEEP), *argv, "--worker-index", str(i), "--pool-worker"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,  # Ctrl-C goes to the parent only; it forwards one SIGINT
        )
        for i in indexes
    ]
    readers = [
        threading.Thread(target=_relay, args=(proc, worker_label(i), say), daemon=True)
        for i, proc in zip(indexes, procs)
    ]
    for reader in readers:
        reader.start()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        codes = [proc.wait() for proc in procs]
    except KeyboardInterrupt:
        codes = _stop(procs, say)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for reader in readers:
        reader.join(timeout=5)
    failed = [c for c in codes if c != 0]
    return 130 if 130 in failed else max(failed, default=0)


def _relay(proc: subprocess.Popen, label: str, say: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        say(f"[{label}] {line.rstrip()}")


def _stop(procs: list[subprocess.Popen], say: Callable[[str], None]) -> list[int]:
    """One SIGINT to every live worker, then wait; a second Ctrl-C kills them."""
    say(f"stopping {sum(p.poll() is None for p in procs)} workers (Ctrl-C again to kill them)")
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    try:
        for proc in procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
    except KeyboardInterrupt:
        for proc in procs:
            proc.kill()
    return [130 if proc.wait() != 0 else 0 for proc in procs]
