"""Where studies live: a storage URL from a study name, and opening it with clear errors.

Accepted storages (`--storage`):
  * nothing: an SQLite file per study, `runs/<study>.db`;
  * any SQLAlchemy URL (`sqlite:///x.db`, `postgresql://user:pass@host/db`);
  * an Optuna journal file: a path ending in `.journal`, or `journal:PATH`.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna

from search.errors import StudyError

DEFAULT_RUNS_DIR = Path("runs")


def storage_url(study_name: str, storage: str | None = None, runs_dir: Path = DEFAULT_RUNS_DIR) -> str:
    """The storage a study uses: `storage` when given, else `sqlite:///<runs_dir>/<study>.db`."""
    if storage:
        return storage
    return f"sqlite:///{Path(runs_dir) / f'{study_name}.db'}"


def journal_path(url: str) -> Path | None:
    """The journal file a storage string names, or None when it is an RDB URL."""
    if url.startswith("journal:"):
        return Path(url[len("journal:") :])
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def sqlite_path(url: str) -> Path | None:
    """The file of an `sqlite:///...` URL, or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    return Path(path) if path and path != ":memory:" else None


def check_sqlite_file(path: Path) -> None:
    """Raise StudyError when an existing file is not an SQLite database."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StudyError(f"{path}: not an SQLite database ({exc})") from None


def open_storage(url: str, *, must_exist: bool = False, **rdb_kwargs) -> optuna.storages.BaseStorage:
    """Open a storage; with must_exist, a missing file is an error instead of a new empty study.

    Extra keyword arguments (heartbeat_interval, ...) go to `optuna.storages.RDBStorage`.
    """
    journal = journal_path(url)
    if journal is not None:
        if must_exist and not journal.is_file():
            raise StudyError(f"no journal storage at {journal}")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            return JournalStorage(JournalFileBackend(str(journal)))
        except OSError as exc:  # a missing folder, no permission
            raise StudyError(f"cannot open journal storage {journal}: {exc.strerror or exc}") from None
    sqlite = sqlite_path(url)
    if sqlite is not None:
        if sqlite.exists():
            check_sqlite_file(sqlite)
        elif must_exist:
            raise StudyError(f"no storage at {sqlite} (has the sweep run yet?)")
    try:
        return optuna.storages.RDBStorage(url, **rdb_kwargs)
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or server
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(f"cannot open storage {redact(url)}: {reason}") from None


def load_existing_study(name: str, url: str) -> optuna.Study:
    """Load a study that must already exist; an unknown name lists the names that do."""
    storage = open_storage(url, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyError(f"no study {name!r} in {redact(url)}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url
