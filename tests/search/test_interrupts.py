"""A Ctrl-C that lands while Python runs a finalizer is printed as "Exception ignored" and
dropped by Python: the sweep must still stop (it went on to finish its trials once, in CI)."""
from __future__ import annotations

import gc
import signal
import sys

import pytest

from search import interrupts


@pytest.fixture
def script_handlers():
    saved = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    hook = sys.unraisablehook
    interrupts._state["script"] = True
    yield
    interrupts._state["script"] = False
    interrupts._lost.clear()
    sys.unraisablehook = hook
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class RaisesWhenCollected:
    def __del__(self) -> None:
        raise KeyboardInterrupt  # as the signal handler does when it runs inside a finalizer


def test_a_ctrl_c_swallowed_by_a_finalizer_is_raised_at_the_next_check(script_handlers) -> None:
    interrupts.ready()
    interrupts.check()  # nothing received: no interrupt
    RaisesWhenCollected()  # collected at once: its KeyboardInterrupt goes to the unraisable hook
    gc.collect()
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    interrupts.check()  # raised once, not again


def test_other_unraisable_exceptions_still_reach_the_hook_before(script_handlers) -> None:
    seen: list[BaseException] = []
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_value)
    interrupts.ready()

    class Broken:
        def __del__(self) -> None:
            raise ValueError("broken finalizer")

    Broken()
    gc.collect()
    interrupts.check()
    assert [str(e) for e in seen] == ["broken finalizer"]
