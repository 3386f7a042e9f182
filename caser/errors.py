"""The one exception type for a user's own mistakes (bad file, bad option).

Command-line tools catch `DataError` and print its message as one line, never a
traceback: the message must name the file, line or option at fault.
"""
from __future__ import annotations


class DataError(Exception):
    """A user's input is wrong; the message says where and why, in one line."""


SHOWN_CHARACTERS = 80  # what a message quotes of a value taken from a file


def shown(text: str, quote: bool = True, limit: int = SHOWN_CHARACTERS) -> str:
    """`text` as a message quotes it (repr, or as it is with quote=False), cut to `limit`
    characters with its length after an ellipsis: a 5 MB field must not become a 5 MB line."""
    text = str(text)
    head = text if len(text) <= limit else text[:limit]
    head = repr(head) if quote else head
    return head if len(text) <= limit else f"{head}... ({len(text):,} characters)"
