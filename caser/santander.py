"""Santander product recommendation (Kaggle `train_ver2.csv`) as product-acquisition sequences.

    from caser.santander import read_santander
    seqs = read_santander("train_ver2.csv")       # or read_interactions(path), auto-detected

The file holds one row per customer (`ncodpers`) and month (`fecha_dato`, YYYY-MM-DD) with 0/1
ownership flags for each product (`ind_*_ult1`, some NaN, read as not owned). An interaction is
a product the customer *acquires*: owned this month and not owned in the customer's previous
snapshot; what a customer owns in their first month counts as acquired in that month. Events are
ordered by month, then by product column order. Items are the product column names (dense ids in
column order, only products acquired at least once); users are customers with at least one event,
sorted by `ncodpers`, a token of digits (`015889` is not `15889`; numeric order when every number is
canonical, else text order, as `caser.remap.dense_tokens` says).

Why it is built like this: the real file is 2.3 GB and 13.6M rows, so it is read in chunks with
only the needed columns, each row kept as (customer int64, month int32, ownership bits packed in
one int32); one stable sort by (customer, month) and a vectorised XOR/AND against the previous
row of the same customer then yield every acquisition at once.
"""
from __future__ import annotations

import re
import tarfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from caser.errors import DataError, shown
from caser.file_lines import not_text_error
from caser.remap import build_sequences, dense_tokens, factorize_tokens, integer_tokens, stable_argsort
from caser.sequences import Sequences

PRODUCT_PATTERN = re.compile(r"^ind_.+_ult1$")
CHUNK_ROWS = 1_000_000


def read_santander(path: str | Path, chunksize: int = CHUNK_ROWS) -> Sequences:
    """Acquisition sequences from a Santander `train_ver2.csv`-style file (module docstring)."""
    path = Path(path)
    products = _product_columns(path)
    customers, months, bits = [], [], []
    # skip_blank_lines=False keeps one parser row per physical line, and chunks continue the
    # row index, so the row labelled r is line r + 2 (the header is line 1).
    # index_col=False: a trailing comma on every row must not turn the first column into the index.
    with _readable(path):
        reader = pd.read_csv(
            path, usecols=["fecha_dato", "ncodpers", *products], chunksize=chunksize,
            engine="c", skip_blank_lines=False, low_memory=False, index_col=False,
            dtype={"ncodpers": str},
        )  # fmt: skip
        for chunk in reader:
            # Blank lines come back as all-NaN rows; drop them, but keep the index for line numbers.
            chunk = chunk[chunk.notna().any(axis=1).to_numpy()]
            customers.append(_customer_ids(chunk["ncodpers"], path))
            months.append(_month_index(chunk["fecha_dato"], path))
            bits.append(_pack_ownership(chunk, products, path))
    if sum(len(c) for c in customers) == 0:
        raise DataError(f"{path}: line 2: no data rows after the header")
    keys, customer_ids = _customer_keys(customers)
    return acquisitions(keys, np.concatenate(months), np.concatenate(bits), products, customer_ids)


def acquisitions(
    customers: np.ndarray, months: np.ndarray, bits: np.ndarray, products: list[str],
    customer_ids: np.ndarray | None = None,
) -> Sequences:
    """Sequences of acquired products from per-row (customer, month, packed ownership bits).
    customers: int64 keys in customer order; `customer_ids[key]` is the customer's number as
    the file spells it (None: the keys are the numbers)."""
    span = int(months.max() - months.min()) + 1
    key = (customers - customers.min()) * span + (months - months.min())
    order = stable_argsort(key)  # by (customer, month); duplicates keep file order
    customers, bits = customers[order], bits[order]
    first = np.ones(len(customers), dtype=bool)
    first[1:] = customers[1:] != customers[:-1]
    previous = np.zeros_like(bits)
    previous[1:] = bits[:-1]
    previous[first] = 0  # a customer's first snapshot: everything owned counts as acquired
    gained = bits & ~previous

    rows = np.flatnonzero(gained)
    # (row, product) pairs in row-major order: customer, then month, then product column order.
    flags = (gained[rows, None] >> np.arange(len(products), dtype=np.int32)) & 1
    row_of, product_of = np.nonzero(flags)
    event_customer = customers[rows[row_of]]

    user_ids, users = np.unique(event_customer, return_inverse=True)
    if customer_ids is not None:
        user_ids = customer_ids[user_ids]
    used = np.unique(product_of)
    item_of_product = np.zeros(len(products), dtype=np.int64)
    item_of_product[used] = np.arange(1, len(used) + 1)
    item_ids = np.array([None, *(products[p] for p in used)], dtype=object)
    return build_sequences(users.astype(np.int64), item_of_product[product_of], user_ids, item_ids)


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """What the parser or the decompressor (Kaggle ships the file zipped; pandas unzips by
    name) says of a broken file, as one DataError line naming the file."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: line 1: empty file, no Santander header") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: cannot parse as CSV ({' '.join(str(err).split())})") from None
    except UnicodeDecodeError:
        raise not_text_error(path) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({err})") from None
    except tarfile.TarError:  # its message lists every method tried, over several lines
        raise DataError(f"{path}: cannot read (not a usable tar archive)") from None
    except ValueError as err:  # a zip of several files or none (after ParserError and
        # UnicodeDecodeError, which are ValueErrors too)
        raise DataError(f"{path}: cannot read ({' '.join(str(err).split())})") from None


def _product_columns(path: Path) -> list[str]:
    with _readable(path):
        header = pd.read_csv(path, nrows=0, engine="c").columns.tolist()
    missing = [name for name in ("fecha_dato", "ncodpers") if name not in header]
    if missing:
        raise DataError(f"{path}: line 1: Santander header lacks {', '.join(missing)}")
    products = [name for name in header if PRODUCT_PATTERN.match(name)]
    if not products:
        raise DataError(f"{path}: line 1: no product columns (ind_*_ult1) in the header")
    if len(products) > 31:
        raise DataError(f"{path}: line 1: {len(products)} product columns; at most 31 supported")
    return products


def _first_bad(mask: np.ndarray, path: Path, what: str, values: pd.Series) -> None:
    """Raise naming the line of the first row where `mask` holds, quoting its value."""
    bad = np.flatnonzero(mask)
    if len(bad):
        row = int(bad[0])
        raw = values.iloc[row]
        value = shown(raw) if isinstance(raw, str) else "an empty field"  # NaN: nothing there
        raise DataError(f"{path}: line {int(values.index[row]) + 2}: {what} {value}")


def _customer_ids(column: pd.Series, path: Path) -> np.ndarray:
    """A chunk's customer numbers: int64 when all are canonical integers (the real file), else
    the tokens as spelled (`015889` is not `15889`); digits only, anything else is refused."""
    _first_bad(column.isna().to_numpy(), path, "ncodpers is not a customer number:", column)
    codes, tokens = factorize_tokens(column.to_numpy())
    digits = np.array([token.isascii() and token.isdigit() for token in tokens], dtype=bool)
    _first_bad(~digits[codes], path, "ncodpers is not a customer number:", column)
    numbers = integer_tokens(tokens)
    return numbers[codes] if numbers is not None else tokens[codes]


def _customer_keys(chunks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """int64 keys in customer order over all chunks, and the numbers as spelled (None: the keys
    are the numbers). A chunk of tokens makes every chunk tokens: a canonical integer's token
    is its decimal text, so the grouping stays the file's."""
    if all(chunk.dtype.kind == "i" for chunk in chunks):
        return np.concatenate(chunks), None
    tokens = np.concatenate([chunk.astype(str).astype(object) for chunk in chunks])
    return dense_tokens(tokens)


def _month_index(column: pd.Series, path: Path) -> np.ndarray:
    dates = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    _first_bad(dates.isna().to_numpy(), path, "fecha_dato is not YYYY-MM-DD:", column)
    return (dates.dt.year.to_numpy() * 12 + dates.dt.month.to_numpy() - 1).astype(np.int32)


def _pack_ownership(chunk: pd.DataFrame, products: list[str], path: Path) -> np.ndarray:
    packed = np.zeros(len(chunk), dtype=np.int32)
    for bit, name in enumerate(products):
        raw = chunk[name]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        # NaN from an empty cell means "not owned"; NaN from text is a broken file.
        _first_bad(np.isnan(values) & raw.notna().to_numpy(), path, f"{name} is", raw)
        packed |= (np.nan_to_num(values) > 0).astype(np.int32) << bit
    return packed
