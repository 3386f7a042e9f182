"""The report's files written whole or not at all: a full disk mid-write leaves the previous
report and plots as they were, and no temporary file or folder behind.

Each file goes to a temporary file beside it (the same folder, so the rename cannot cross file
systems) and is renamed over its name only once every file of the set is written.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

Writer = Callable[[BinaryIO], None]


def missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first: what a failed write
    removes again."""
    return [p for p in [path, *path.parents] if not p.exists()]


def remove_folders(folders: list[Path]) -> None:
    """Remove the given folders, deepest first, where they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else's file) or already gone: leave it
            pass


def write_files(writers: Mapping[Path, Writer]) -> None:
    """Write each path with its writer into a temporary file beside it, then rename them all
    into place. On any failure (Ctrl-C included) the temporaries and the folders made here are
    removed and the files that were there stay as they were; an OSError names the file."""
    made: list[Path] = []
    staged: dict[Path, str] = {}
    try:
        for path, write in writers.items():
            path = path.resolve() if path.is_symlink() else path  # the file it names, not the link
            made += [p for p in missing_folders(path.parent) if p not in made]
            path.parent.mkdir(parents=True, exist_ok=True)
            staged[path] = _stage(path, write)
        for path, temporary in staged.items():
            os.replace(temporary, path)
    except BaseException:
        for temporary in staged.values():
            Path(temporary).unlink(missing_ok=True)
        remove_folders(sorted(made, key=lambda p: len(p.parts), reverse=True))
        raise


def _stage(path: Path, write: Writer) -> str:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # a full disk shows here at the latest, not after the rename
        os.chmod(temporary, _mode(path))
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _mode(path: Path) -> int:
    """The file's own permissions when it exists, else those a new file gets (mkstemp's are
    0600, which would hide a shared report from its readers)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
