"""Formatting shared by the report's sections: numbers as people read them, valid markdown tables.

Cells are formatted here, once, and handed to tabulate as strings (numparse off), so every
section rounds the same way and `lr = 1e-3` never comes out as `0.001` in one table and
`1e-03` in another.

Text the report did not write (a study name, a path, a stored attribute, an exception's message)
goes into the markdown through `text`, so that it renders as the literal text it is on GitHub;
shell commands through `code_block`, whose fence no content can close.
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable, Sequence

import pandas as pd

# Parameters that span orders of magnitude read best in scientific notation.
SCIENTIFIC_PARAMS = frozenset({"lr", "l2"})


# What GitHub markdown reads as syntax inside a line: backslash escapes, code spans, emphasis,
# links, strikethrough, math; an underscore only where it can open or close emphasis (not
# between two letters or digits, so `ac_conv` stays as it is).
MARKDOWN_SYNTAX = re.compile(r"[\\`*\[\]~$]|(?<![^\W_])_|_(?![^\W_])")
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # all three end a line (and a table row) in markdown


def text(x: Any) -> str:
    """Text from outside the report as literal markdown on one line: `<`, `>` and `&` as HTML
    entities (no tag, no entity, no autolink), markdown syntax backslash-escaped, line breaks as
    spaces. For inline places (a heading's text, a cell, a sentence), never inside a code span."""
    one_line = LINE_BREAK.sub(" ", str(x))
    return MARKDOWN_SYNTAX.sub(lambda m: "\\" + m.group(0), html.escape(one_line, quote=False))


def code_block(content: str, info: str = "") -> str:
    """A fenced code block that ends where `content` ends: its fence has more backticks than any
    run inside, so no line of the content (a newline in a quoted argument) can close it."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{content}\n{fence}"


def number(x: Any, digits: int = 4) -> str:
    """A metric-like number: `digits` decimals, scientific when tiny; blanks for missing."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x != 0 and abs(x) < 10 ** (-digits + 1):
            return f"{x:.2e}"
        return f"{x:.{digits}f}"
    return text(x)  # a stored attribute that is not a number


def param(name: str, value: Any) -> str:
    """A hyperparameter value: lr/l2 as 1.0e-03, other floats to 3 significant digits."""
    if isinstance(value, float):
        if name in SCIENTIFIC_PARAMS:
            return f"{value:.1e}"
        return f"{value:.3g}"
    return text(value)  # a categorical choice or a stored value: text from the study


def seconds(x: float | None) -> str:
    """A duration: seconds below two minutes, then minutes, then hours."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if x < 120:
        return f"{x:.1f} s"
    if x < 7200:
        return f"{x / 60:.1f} min"
    return f"{x / 3600:.2f} h"


def count(n: int, noun: str) -> str:
    """`1 epoch`, `3 epochs`: the noun's plural is its singular and an s."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def _cell(x: Any) -> str:
    # A literal pipe would split the cell; a line break would end the row.
    return LINE_BREAK.sub(" ", str(x)).replace("|", "\\|")


def table(
    rows: Sequence[dict[str, Any]] | pd.DataFrame, columns: Iterable[str] | None = None
) -> str:
    """A GitHub markdown table from already-formatted rows (dicts keyed by column name)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
    frame = frame.fillna("").astype(object).map(_cell)
    frame.columns = [_cell(c) for c in frame.columns]
    return frame.to_markdown(index=False, disable_numparse=True)
