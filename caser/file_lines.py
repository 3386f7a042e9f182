"""Find the line of a text file (plain or gzip) that a fast parser refused, to name it in an error.

    lineno, text = nth_data_line(path, row)        # the row-th non-blank line, as pandas counts
    raise column_count_error(path, 4, str.split)   # the first line without 4 fields
    raise not_text_error(path)                     # the first line not UTF-8, or with a NUL

Why apart from the parsers: pandas' C engine is fast because it tracks no line numbers, so the
readers never count lines on success; only once something is known to be wrong does a plain
Python scan find the offending line. Every reader (`caser.readers`, `caser.gowalla`) uses these.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO, Callable

import numpy as np

from caser.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether the file starts with gzip's magic number (its name does not matter)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def open_text(path: Path) -> IO[str]:
    """The file as text lines, decompressing it when it is gzip; undecodable bytes replaced, and
    a byte-order mark at the start dropped, as pandas drops it (else a BOM-led Santander header
    or `#` line would not be recognised)."""
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def first_data_lines(path: Path, count: int) -> list[tuple[int, str]]:
    """Line number and stripped text of the first `count` non-blank lines (fewer if the file
    has fewer; none for a blank file)."""
    found: list[tuple[int, str]] = []
    with open_text(path) as handle:
        for lineno, text in enumerate(handle, start=1):
            if text.strip():
                found.append((lineno, text.strip()))
                if len(found) == count:
                    break
    return found


def nth_data_line(path: Path, row: int) -> tuple[int, str]:
    """Line number and text of the row-th (0-based) non-blank line, as the parser counts rows."""
    seen = -1
    with open_text(path) as handle:
        for lineno, text in enumerate(handle, start=1):
            if text.strip():
                seen += 1
                if seen == row:
                    return lineno, text.strip()
    raise DataError(f"{path}: row {row + 1} not found while locating an error")


COMMENT_HINT = "no format has comment lines: remove it"


def comment_hint(text: str) -> str:
    """The advice a refused line that looks like a comment gets. Comments are refused, never
    skipped: no format read here has them, and `#` may begin an id."""
    return f"; {COMMENT_HINT}" if text.lstrip().startswith("#") else ""


def first_column_mismatch(
    path: Path, ncols: int, split: Callable[[str], list[str]]
) -> tuple[int, str, int] | None:
    """(line number, text, column count) of the first non-blank line without `ncols` columns."""
    with open_text(path) as handle:
        for lineno, text in enumerate(handle, start=1):
            if text.strip() and len(split(text)) != ncols:
                return lineno, text.strip(), len(split(text))
    return None


def column_count_error(
    path: Path, ncols: int, split: Callable[[str], list[str]], note: str = ""
) -> DataError:
    """The first line whose column count differs from `ncols`, as a DataError; `note` follows
    the counts (" (format pairs, detected from line 1)")."""
    mismatch = first_column_mismatch(path, ncols, split)
    if mismatch is None:
        return DataError(f"{path}: could not parse the file as {ncols} columns per line{note}")
    lineno, text, found = mismatch
    return DataError(
        f"{path}: line {lineno}: expected {ncols} columns, found {found}{note}{comment_hint(text)}"
    )


def not_text_error(path: Path) -> DataError:
    """The first line that is not UTF-8 text or holds a NUL byte (a binary or corrupted file),
    as a DataError naming the line and the byte; lines count as text mode counts them (a line
    ends at a newline, a carriage return, or both)."""
    lineno = 0
    with open_bytes(path) as handle:
        for chunk in handle:
            for raw in chunk.splitlines() or [b""]:
                lineno += 1
                try:
                    raw.decode("utf-8")
                    at, what = raw.find(b"\0"), "not text"
                except UnicodeDecodeError as err:
                    at, what = err.start, "not UTF-8 text"
                if at >= 0:
                    byte = f"byte {at + 1} of the line is 0x{raw[at]:02x}"
                    return DataError(f"{path}: line {lineno}: {what} ({byte})")
    return DataError(f"{path}: not UTF-8 text")


def check_no_nul(path: Path, *ids: np.ndarray) -> None:
    """Refuse ids holding a NUL byte (a binary or corrupted file: pandas reads one into a token),
    naming the line. Integer ids hold none, so only text ids are looked at, distinct ones."""
    for column in ids:
        if column.dtype == object and any("\0" in token for token in column if token is not None):
            raise not_text_error(path)
