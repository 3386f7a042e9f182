"""Read an interaction file (MovieLens, triplets, quadruplets, pairs, Santander, Gowalla) as `Sequences`.

    from caser.readers import read_interactions
    seqs = read_interactions("u.data")            # format detected from the first line

Why this shape: every format ends as the same CSR `Sequences`, so the rest of the code never
asks where the data came from. Parsing goes through pandas' C engine and every later step is a
numpy array operation, so a 5M-line file loads in seconds. Ratings are dropped: Caser treats every
interaction as positive. Ids are tokens, compared as the file spells them (`07` and `7` are two
items), remapped densely (users 0..U-1, items 1..I, item 0 being padding) in the order of their
raw ids, which are kept in `user_ids` / `item_ids`: numeric (int64) when every id of the column
is a canonical non-negative integer, else by text (`caser.remap.dense_tokens`).

A malformed file raises `DataError` with one line naming the file and the 1-based line number.
Comment lines (`# ...`) are refused, not skipped: no format read here has them, and `#` may begin
an id, so skipping would quietly drop data. What is not a regular file is refused unopened.
The fast path never tracks line numbers; only once something is known to be wrong does a plain
Python scan of the file find the offending line, so errors are exact and success stays fast.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from caser.config import DATA_FORMATS
from caser.errors import DataError, shown
from caser.gowalla import looks_like_gowalla, read_gowalla
from caser.file_lines import (
    COMMENT_HINT, check_no_nul, column_count_error, comment_hint, first_data_lines,
    not_text_error, nth_data_line, open_text,
)
from caser.paths import not_a_regular_file
from caser.remap import build_sequences, dense_tokens, stable_argsort, user_time_order, with_padding
from caser.santander import read_santander
from caser.sequences import Sequences

FORMATS = DATA_FORMATS
_COLUMNS = {"pairs": 2, "triplets": 3, "quadruplets": 4, "movielens": 4, "ratings-dat": 4}
_TIMESTAMPED = ("quadruplets", "movielens", "ratings-dat")
_BY_COLUMN_COUNT = {2: "pairs", 3: "triplets", 4: "quadruplets"}


def read_interactions(path: str | Path, format: str = "auto") -> Sequences:
    """Read `path` in `format` (one of `FORMATS`; "auto" looks at the first line)."""
    path = Path(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}; choose from {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    odd = not_a_regular_file(path)
    if odd is not None:  # checked unopened: a FIFO would block, a device never end
        raise DataError(f"{path}: is {odd}, not a regular file")
    if format == "santander":  # pandas unzips a Santander file by its name
        return read_santander(path)
    try:
        kind = compression_of(path)
        if kind is not None and not (kind == "gzip" and format in ("auto", "gowalla")):
            raise _compressed_error(path, kind)
        detected = format == "auto"
        if detected:
            format = _detect_format_of_gzip(path) if kind == "gzip" else detect_format(path)
    except OSError as err:  # no permission to read, an I/O error
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if format == "santander":
        return read_santander(path)
    if format == "gowalla":
        return read_gowalla(path)
    return _read_columns(path, format, detected)


_MAGIC = {"gzip": re.compile(rb"\x1f\x8b"), "zip": re.compile(rb"PK\x03\x04"),
          "bzip2": re.compile(rb"BZh[1-9]1AY&SY"), "xz": re.compile(rb"\xfd7zXZ\x00"),
          "zstd": re.compile(rb"\(\xb5/\xfd")}
_HINTS = {"zip": " (a zipped Santander file reads as it is with format santander)",
          "gzip": " (a gzipped Gowalla check-ins file reads as it is)"}


def compression_of(path: Path) -> str | None:
    """The compression a file's first bytes announce ("gzip", "zip", ...), or None."""
    with open(path, "rb") as handle:
        start = handle.read(16)
    return next((kind for kind, magic in _MAGIC.items() if magic.match(start)), None)


def _compressed_error(path: Path, kind: str) -> DataError:
    """A compressed file, read as text, would fail with a column count that means nothing."""
    return DataError(f"{path}: is {kind}-compressed; decompress it first{_HINTS.get(kind, '')}")


def _detect_format_of_gzip(path: Path) -> str:
    """Gowalla, the one format read through gzip; any other gzip file is refused as compressed."""
    try:
        if detect_format(path) == "gowalla":
            return "gowalla"
    except (DataError, OSError, EOFError):  # not text inside, or a broken archive
        pass
    raise _compressed_error(path, "gzip")


def detect_format(path: Path) -> str:
    """The format of `path` judged from its first non-empty line (see the module docstring)."""
    first = first_data_lines(path, 1)
    if not first:
        raise DataError(f"{path}: line 1: empty file, no interactions")
    lineno, text = first[0]
    header = {name.strip().strip('"') for name in text.split(",")}
    if {"fecha_dato", "ncodpers"} <= header:
        return "santander"
    if looks_like_gowalla(text):
        return "gowalla"
    if "::" in text:
        return "ratings-dat"
    ncols = len(text.split())
    if ncols not in _BY_COLUMN_COUNT:
        raise DataError(
            f"{path}: line {lineno}: cannot detect the format from {ncols} column(s); "
            "expected 2 (user item), 3 (user item rating), 4 (user item rating timestamp) or 5 "
            "tab-separated (Gowalla: user, time as YYYY-MM-DDTHH:MM:SSZ, latitude, longitude, location)"
            + comment_hint(text)
        )
    return _BY_COLUMN_COUNT[ncols]


def _read_columns(path: Path, format: str, detected: bool = False) -> Sequences:
    """Read a column format; `detected`: the format was judged from the first line."""
    ncols = _COLUMNS[format]
    _reject_first_comment(path, format, detected)
    split = _split_ratings_dat if format == "ratings-dat" else str.split
    source: Path | io.BytesIO = path
    try:
        if format == "ratings-dat":
            # The C engine takes no multi-character separator; '::' -> tab keeps it (and lines).
            source = io.BytesIO(path.read_bytes().replace(b"::", b"\t"))
        # No names: given fewer names than fields, pandas would quietly make the first column
        # the index. No quoting and no decompression by file name; ids read as text: they are
        # tokens (a number would make `07` and `7` one id).
        frame = pd.read_csv(
            source, sep=r"\s+", header=None, engine="c", quoting=csv.QUOTE_NONE,
            compression=None, keep_default_na=False, na_values=[""], skip_blank_lines=True,
            dtype={0: str, 1: str},
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: line 1: empty file, no interactions") from None
    except pd.errors.ParserError:
        raise _columns_error(path, format, split, detected) from None
    except UnicodeDecodeError:
        raise not_text_error(path) from None
    except OSError as err:  # an I/O error while reading
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: line 1: empty file, no interactions")
    if frame.shape[1] != ncols or frame.isna().to_numpy().any():
        # Short rows are padded with NaN by the parser.
        raise _columns_error(path, format, split, detected)

    timestamps = None
    if format in _TIMESTAMPED:
        timestamps = pd.to_numeric(frame[3], errors="coerce").to_numpy()
        bad = np.flatnonzero(np.isnan(timestamps.astype(np.float64, copy=False)))
        if len(bad):
            lineno, text = nth_data_line(path, int(bad[0]))
            field = split(text)[3]
            raise DataError(f"{path}: line {lineno}: timestamp {shown(field)} is not a number"
                            + comment_hint(text))

    users, user_ids = dense_tokens(frame[0].to_numpy())
    items, item_ids = dense_tokens(frame[1].to_numpy())
    check_no_nul(path, user_ids, item_ids)
    _reject_comments(path, user_ids)
    for codes, ids in ((users, user_ids), (items, item_ids)):
        _reject_header(path, codes, ids)
    order = stable_argsort(users) if timestamps is None else user_time_order(users, timestamps)
    return build_sequences(users[order], items[order] + 1, user_ids, with_padding(item_ids))


def _columns_error(
    path: Path, format: str, split: Callable[[str], list[str]], detected: bool
) -> DataError:
    """The first line without the format's column count, and the format it was read as. When
    the format was detected from a line that is the odd one out (the next two lines agree with
    each other and not with it: a header, a stray line), that line is named instead, with what
    it was taken for."""
    ncols = _COLUMNS[format]
    if not detected:
        return column_count_error(path, ncols, split)
    lines = first_data_lines(path, 3)
    (lineno, text), counts = lines[0], [len(split(line)) for _, line in lines]
    if len(counts) == 3 and counts[1] == counts[2] != counts[0]:
        return DataError(
            f"{path}: line {lineno}: {shown(text)} read as {format} (format detected from line "
            f"{lineno}: {counts[0]} columns), but line {lines[1][0]} has {counts[1]}; fix or "
            f"remove line {lineno}"
        )
    note = f" (format {format}, detected from line {lineno})"
    return column_count_error(path, ncols, split, note)


def _reject_first_comment(path: Path, format: str, detected: bool) -> None:
    """A first line beginning with '#' is a comment: refused before it is parsed as an event
    or misread as the format, saying what it was taken for."""
    first = first_data_lines(path, 1)
    if first and first[0][1].startswith("#"):
        lineno, text = first[0]
        taken = (f"read as {format}, the format detected from it: {_COLUMNS[format]} columns"
                 if detected else f"in a {format} file")
        raise DataError(f"{path}: line {lineno}: {shown(text)} looks like a comment ({taken}); "
                        f"{COMMENT_HINT}")


def _reject_comments(path: Path, user_ids: np.ndarray) -> None:
    """A line whose first token begins with '#' is a comment (read, it would be a user '#...').
    Only text ids are looked at, distinct ones; the scan for the line runs only on a find."""
    if user_ids.dtype != object or not any(str(token).startswith("#") for token in user_ids):
        return
    with open_text(path) as handle:
        for lineno, text in enumerate(handle, start=1):
            if text.lstrip().startswith("#"):
                raise DataError(f"{path}: line {lineno}: {shown(text.strip())} looks like a "
                                f"comment; {COMMENT_HINT}")


def _reject_header(path: Path, codes: np.ndarray, ids: np.ndarray) -> None:
    """A text first row above numeric ids is a header: read as data it would be a fake event.
    `codes`, `ids`: one id column as `dense_tokens` gives it (integer ids hold no header)."""
    if ids.dtype.kind in "iu" or len(codes) < 2:
        return
    first = codes[0]
    others = np.delete(ids, first)
    numeric = pd.to_numeric(pd.Series(others, dtype=object), errors="coerce").notna().all()
    text_first = pd.isna(pd.to_numeric(ids[first], errors="coerce"))
    if numeric and text_first and (codes == first).sum() == 1:
        lineno, text = nth_data_line(path, 0)
        raise DataError(f"{path}: line {lineno}: looks like a header ({shown(text)}); remove it")


def _split_ratings_dat(text: str) -> list[str]:
    """A ratings.dat line's fields as the parser sees them: '::' as a tab, then whitespace."""
    return text.replace("::", "\t").split()
