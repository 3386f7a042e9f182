"""Gowalla check-ins (SNAP `loc-gowalla_totalCheckins.txt`, plain or gzip) as location sequences.

    from caser.gowalla import read_gowalla
    seqs = read_gowalla("loc-gowalla_totalCheckins.txt.gz")   # or read_interactions(path)

Each line is `user<TAB>check-in time<TAB>latitude<TAB>longitude<TAB>location id`, the time in
UTC as `2010-10-19T23:55:27Z`. An interaction is a check-in: the user is the user, the item the
location id; latitude and longitude are not used. The file lists each user's check-ins newest
first, so events are sorted by time within each user, stably (check-ins in the same second keep
their file order). Users and locations get dense ids sorted by raw id, as in `caser.readers`.

Why it is built like this: the real file has 6.4M lines. pandas' C engine reads the time as
fixed-width bytes (no Python string per line) and the coordinates as one byte each (they are
only counted, so that a line with another number of fields is refused); numpy checks the
layout of every time at once and parses them to seconds in C. See bench/read_gowalla.py.
"""
from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from caser.errors import DataError, shown
from caser.file_lines import check_no_nul, column_count_error, is_gzip, not_text_error, nth_data_line
from caser.remap import build_sequences, dense_tokens, user_time_order, with_padding
from caser.sequences import Sequences

TIME_FORMAT = "YYYY-MM-DDTHH:MM:SSZ"
TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
FIELDS = 5
_TIME_BYTES = 21  # 20 for the time, one more to see a longer field instead of cutting it
_LAYOUT = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b"Z", 20: b"\0"}


def looks_like_gowalla(line: str) -> bool:
    """Whether a line has Gowalla's five tab-separated fields with an ISO time second."""
    fields = line.strip().split("\t")
    return len(fields) == FIELDS and TIME_PATTERN.match(fields[1].strip()) is not None


def read_gowalla(path: str | Path) -> Sequences:
    """Check-in sequences from a Gowalla file, plain or gzip (see the module docstring)."""
    path = Path(path)
    try:
        frame = pd.read_csv(
            path, sep="\t", header=None, engine="c", quoting=csv.QUOTE_NONE,
            compression="gzip" if is_gzip(path) else None, keep_default_na=False,
            na_values=[""], skip_blank_lines=True,
            dtype={0: str, 1: f"S{_TIME_BYTES}", 2: "S1", 3: "S1", 4: str},  # ids are tokens
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: line 1: empty file, no check-ins") from None
    except UnicodeDecodeError:  # before ValueError, of which it is one
        raise not_text_error(path) from None
    except (pd.errors.ParserError, ValueError):  # too many fields, or too few for the dtypes
        raise column_count_error(path, FIELDS, _tab_fields) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({err})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: line 1: empty file, no check-ins")
    if frame.shape[1] != FIELDS or frame[0].isna().any() or frame[4].isna().any():
        raise column_count_error(path, FIELDS, _tab_fields)  # short rows are padded with NaN

    seconds = check_in_seconds(frame[1].to_numpy(), path)
    users, user_ids = dense_tokens(frame[0].to_numpy())
    items, item_ids = dense_tokens(frame[4].to_numpy())
    check_no_nul(path, user_ids, item_ids)
    order = user_time_order(users, seconds)
    return build_sequences(users[order], items[order] + 1, user_ids, with_padding(item_ids))


def check_in_seconds(raw: np.ndarray, path: Path) -> np.ndarray:
    """Seconds since 1970 of `YYYY-MM-DDTHH:MM:SSZ` byte strings; DataError naming a bad line."""
    raw = np.ascontiguousarray(raw, dtype=f"S{_TIME_BYTES}")
    chars = raw.view(np.uint8).reshape(len(raw), _TIME_BYTES)  # (events, 21)
    layout = np.ones(len(raw), dtype=bool)
    for column, char in _LAYOUT.items():
        layout &= chars[:, column] == char[0]
    bad = np.flatnonzero(~layout)
    if len(bad):
        raise _time_error(path, int(bad[0]))
    stamps = np.ascontiguousarray(chars[:, :19]).view("S19").reshape(-1)
    try:
        return stamps.astype("datetime64[s]").astype(np.int64)
    except ValueError:  # a digit out of place or out of range: numpy does not say which
        raise _time_error(path, _first_unparsable(stamps)) from None


def _first_unparsable(stamps: np.ndarray, block: int = 1 << 16) -> int:
    for start in range(0, len(stamps), block):
        try:
            stamps[start : start + block].astype("datetime64[s]")
        except ValueError:
            for row in range(start, min(start + block, len(stamps))):
                try:
                    np.datetime64(stamps[row].decode("ascii", "replace"), "s")
                except ValueError:
                    return row
    return 0


def _time_error(path: Path, row: int) -> DataError:
    lineno, text = nth_data_line(path, row)
    fields = _tab_fields(text)
    value = fields[1] if len(fields) > 1 else ""
    return DataError(f"{path}: line {lineno}: check-in time {shown(value)} is not {TIME_FORMAT}")


def _tab_fields(text: str) -> list[str]:
    return text.rstrip("\r\n").split("\t")

