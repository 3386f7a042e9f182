"""The sweep's command line as users run it: a real `python sweep.py` process."""
from __future__ import annotations

import subprocess
import sys
from typing import Any, Sequence

from tests.helpers import ROOT


def sweep_cli(*args: Any) -> subprocess.Popen:
    """`python sweep.py ARGS` from the repository root (started, not awaited); one process unless
    ARGS give --workers."""
    argv = [str(a) for a in args]
    return subprocess.Popen(
        [sys.executable, "sweep.py", *(argv if "--workers" in argv else ["--workers", "1", *argv])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(procs: Sequence[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str]]:
    """Wait for CLI runs started together (they overlap: ~4 s of imports each): (code, stderr)."""
    errs = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, err) for p, err in zip(procs, errs)]
