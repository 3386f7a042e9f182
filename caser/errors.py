"""The one exception type for a user's own mistakes (bad file, bad option).

Command-line tools catch `DataError` and print its message as one line, never a
traceback: the message must name the file, line or option at fault.
"""
from __future__ import annotations


class DataError(Exception):
    """A user's input is wrong; the message says where and why, in one line."""
