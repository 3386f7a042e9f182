"""What a path names when it is not a regular file, so that data readers refuse it unopened;
and `~` expanded without a traceback.

    kind = not_a_regular_file(path)      # "a FIFO (named pipe)", "a directory", ... or None
    path = expand_user("~/data/u.data")

Why before opening: opening a FIFO blocks until someone writes to it (a run would hang with no
output), and a device such as /dev/zero never ends (one endless line would fill the memory).
`stat` follows symbolic links and opens nothing, so /dev/stdin is judged by what it is now: a
pipe, a terminal (a character device), or a regular file redirected into it.
"""
from __future__ import annotations

import stat
from pathlib import Path

from caser.errors import DataError

_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)  # fmt: skip


def not_a_regular_file(path: Path) -> str | None:
    """What `path` is ("a directory", "a FIFO (named pipe)", ...) when it exists and is not a
    regular file; None for a regular file and for a path that cannot be looked at (missing)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "not a regular file")


def expand_user(path: str, what: str) -> Path:
    """`path` with `~` and `~user` expanded. Where pathlib cannot (an unknown user, no home) it
    raises RuntimeError, a traceback; taken as typed, `~x` would become a folder in the current
    one. A DataError instead, starting with `what` (the flag or variable given)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        head = path.split("/", 1)[0]
        raise DataError(f"{what}: cannot expand {head}: no such user, or no home folder") from None
