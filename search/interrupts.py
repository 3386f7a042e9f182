"""Ctrl-C and a plain `kill` (SIGTERM) stop `sweep.py` and `report.py` the same way: one line,
exit 130 (SIGINT) or 143 (SIGTERM), never a traceback, nothing recorded half-way.

Three phases. While a script imports its libraries (seconds), nothing has started: the signal
prints one line and exits at once (`exit_at_once`). Once it is ready (`ready`), both signals
raise KeyboardInterrupt where the program is, so that a running trial is recorded as interrupted
and the report keeps the seeds it cached. Around the storage writes that must not be cut in
two (creating a study with its defaults, Optuna starting and ending a trial), the signal waits
(`deferred`) until they are done; a second signal does not wait.

A KeyboardInterrupt raised while Python runs a finalizer (a weakref callback of SQLAlchemy's,
say) is printed as "Exception ignored" and lost: the hook `ready` installs keeps it instead, and
`check`, called between trials and epochs, raises it.

Standard library only: the scripts import this before anything slow.
"""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"script": False, "deferring": False}
_received: list[int] = []  # the signals received, in order
_pending: list[int] = []  # received while deferring
_lost: list[int] = []  # raised inside a finalizer, which swallowed it


def exit_at_once(prog: str) -> None:
    """Until `ready`: Ctrl-C or SIGTERM prints one line and exits (nothing has started)."""
    _state["script"] = True

    def handler(signum: int, frame: object) -> None:
        os.write(2, f"{prog}: interrupted ({name(signum)}) while starting; nothing was run\n".encode())
        os._exit(128 + signum)

    for sig in SIGNALS:
        signal.signal(sig, handler)


def ready() -> None:
    """From now on both signals raise KeyboardInterrupt (in a script started with
    `exit_at_once`; a caller such as a test that imports `main` keeps its own handlers)."""
    if not _state["script"]:
        return
    for sig in SIGNALS:
        signal.signal(sig, _raise)
    sys.unraisablehook = _keep_lost(sys.unraisablehook)


def _keep_lost(default: Callable[..., None]) -> Callable[..., None]:
    def hook(unraisable: object) -> None:
        if isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            _lost.append(last())
        else:
            default(unraisable)

    return hook


def check() -> None:
    """Raise the KeyboardInterrupt that a finalizer swallowed, if one did."""
    if _lost:
        _lost.clear()
        raise KeyboardInterrupt


def _raise(signum: int, frame: object) -> None:
    _received.append(signum)
    if _state["deferring"] and not _pending:
        _pending.append(signum)
        return
    raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """A signal received inside waits until the block ends, then raises KeyboardInterrupt
    (unless the block raised already); a second one raises at once."""
    outer = _state["deferring"]
    _state["deferring"] = True
    try:
        yield
    finally:
        _state["deferring"] = outer
        pending = not outer and bool(_pending)
        _pending.clear() if pending else None
    if pending:
        raise KeyboardInterrupt


@contextmanager
def allowed() -> Iterator[None]:
    """Inside a `deferred` block: here a signal raises at once (a pending one on entry)."""
    outer = _state["deferring"]
    _state["deferring"] = False
    if _pending:
        _pending.clear()
        raise KeyboardInterrupt
    try:
        yield
    finally:
        _state["deferring"] = outer


def name(signum: int | None = None) -> str:
    """`Ctrl-C` for SIGINT, else the signal's name; by default the last signal received."""
    signum = signum if signum is not None else last()
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def last() -> int:
    """The last signal received (SIGINT when none was seen: a KeyboardInterrupt is Ctrl-C)."""
    return _received[-1] if _received else signal.SIGINT


def exit_code() -> int:
    """128 + the signal's number, as a shell reports a process ended by it: 130 or 143."""
    return 128 + last()


def run_script(prog: str, main: Callable[[], int]) -> int:
    """`main()`, with a KeyboardInterrupt that reaches this far printed as one line."""
    try:
        return main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted ({name()})", file=sys.stderr, flush=True)
        return exit_code()
