"""Where studies live: a storage URL from a study name, and opening it with clear errors.

Accepted storages (`--storage`):
  * nothing: an SQLite file per study, `runs/<study>.db`;
  * any SQLAlchemy URL (`sqlite:///x.db`, `postgresql://user:pass@host/db`);
  * an Optuna journal file: a path ending in `.journal`, or `journal:PATH`.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote, unquote

import optuna

from search.errors import StudyError
from search.run_dirs import check_study_name

DEFAULT_RUNS_DIR = Path("runs")


def storage_url(study_name: str, storage: str | None = None, runs_dir: Path = DEFAULT_RUNS_DIR) -> str:
    """The storage a study uses: `storage` when given, else `sqlite:///<runs_dir>/<study>.db`,
    the path percent-quoted: SQLAlchemy reads `%`, `?` and `#` in a URL as its own syntax, and
    would put `exp#1.toml`'s study in another file. A name that is no file name is refused."""
    if storage:
        return storage
    check_study_name(study_name)
    return sqlite_url(Path(runs_dir) / f"{study_name}.db")


def sqlite_url(path: Path) -> str:
    """The `sqlite:///` URL of a file, its path percent-quoted as SQLAlchemy reads it."""
    return f"sqlite:///{quote(str(path), safe='/')}"


def journal_path(url: str) -> Path | None:
    """The journal file a storage string names, or None when it is an RDB URL."""
    if url.startswith("journal:"):
        return Path(url[len("journal:") :])
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def sqlite_path(url: str) -> Path | None:
    """The file of an `sqlite:///...` URL (percent-quoted as SQLAlchemy reads it; an SQLite URI
    `sqlite:///file:PATH?mode=ro&uri=true` too), or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///") or in_memory(url):
        return None
    path, _, query = url[len("sqlite:///") :].partition("?")
    if "uri=true" in query.split("&") and path.startswith("file:"):
        path = path[len("file:") :]
    path = unquote(path)
    return Path(path) if path else None


def in_memory(url: str) -> bool:
    """An SQLite database that lives and dies with the process (`sqlite://`, `sqlite:///:memory:`)."""
    if not url.startswith("sqlite:"):
        return False
    path, _, query = url[len("sqlite:") :].removeprefix("///").partition("?")
    return path in ("", "//", ":memory:", "file::memory:") or "mode=memory" in query


def check_sweep_storage(url: str) -> None:
    """Refuse a storage a sweep cannot use: an in-memory database ends with the process (the
    study would be lost and the report could never read it), and its heartbeat threads and
    worker processes would each see another, empty database."""
    if in_memory(url):
        raise StudyError(f"--storage {url} is an in-memory database, lost when the sweep ends: "
                         "give a file (sqlite:///runs/x.db) or a server")


def check_writable(url: str) -> None:
    """Refuse an existing SQLite file that cannot be written (a read-only file, folder or
    `mode=ro`), before the sweep changes anything, in one line: the study there is intact."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    check_sqlite_file(path)
    target, _, query = url[len("sqlite:///") :].partition("?")
    uri = target if "uri=true" in query.split("&") else f"file:{quote(str(path))}"
    options = "&".join(o for o in query.split("&") if o and o != "uri=true")
    try:
        conn = sqlite3.connect(f"{uri}?{options}" if options else uri, uri=True, isolation_level=None,
                               timeout=60)
        try:  # rewrite a header field with its own value, and take it back
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc) or "unable to open" in str(exc):
            raise StudyError(f"{path}: cannot write to this database ({exc}); the study there is intact: "
                             "make the file and its folder writable, or pass a copy with --storage") from None
        raise StudyError(f"{path}: cannot write to this database ({exc})") from None


def check_sqlite_file(path: Path) -> None:
    """Raise StudyError when an existing file is not an SQLite database."""
    try:
        with sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True) as conn:
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


def storage_failure(url: str, exc: BaseException) -> str | None:
    """One line for an error whose chain holds a database error: a server that went away (a
    PostgreSQL stopped mid-sweep), a file that can no longer be written (a full disk). Optuna
    chains its own errors on top of it (StorageInternalError, then an UnboundLocalError while
    it tries to record the trial as failed: about 300 lines). None for any other error."""
    cause = _database_error(exc)
    if cause is None:
        return None
    reason = (str(getattr(cause, "orig", None) or cause).strip().splitlines() or [type(cause).__name__])[0]
    local = sqlite_path(url) is not None or journal_path(url) is not None
    what = "cannot be written" if local else "went away"
    return (f"error: the storage {redact(url)} {what} ({reason}); finished trials are kept: "
            f"{'once it is back, ' if not local else ''}run the same command again to resume")


def _database_error(exc: BaseException | None) -> BaseException | None:
    import sqlalchemy.exc  # Optuna's RDB storage has imported it by now

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                            sqlalchemy.exc.DisconnectionError, sqlite3.OperationalError)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def quiet_storage_threads() -> None:
    """A trial's heartbeat thread whose storage went away would print its own traceback, and
    so would SQLAlchemy's pool and TensorBoard's writer thread on a full disk: the main thread
    says it in one line (`storage_failure`, or the sweep's line for an OSError)."""
    default = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if _database_error(args.exc_value) is None and not isinstance(args.exc_value, OSError):
            default(args)

    threading.excepthook = hook
    logging.getLogger("sqlalchemy").setLevel(logging.CRITICAL)


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages (one rule for every URL the
    project prints: `caser.urls`, which caser/ can reach and search/ imports)."""
    from caser.urls import redact_url

    return redact_url(url)
