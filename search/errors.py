"""The one exception type for a user's mistakes about studies, storages and search spaces."""
from __future__ import annotations


class StudyError(Exception):
    """A study file, search space or storage is wrong; the message says where, in one line."""
