"""A throwaway PostgreSQL server for tests of distributed sweeps.

Tests ask for the module-scoped fixture (tests/conftest.py registers it) and get a SQLAlchemy
URL of an empty database:

    def test_something(postgres_url):
        storage = optuna.storages.RDBStorage(postgres_url)

Outside pytest, `with postgres_server() as url: ...` does the same. The server is Debian's
`postgresql` package (binaries under /usr/lib/postgresql/<ver>/bin, the newest is used); when
it is missing the fixture skips. PostgreSQL refuses to run as root, so under root the cluster
belongs to the `postgres` system user and its commands go through `runuser`. It listens on
127.0.0.1 only, on a free port, with trust authentication, and is stopped and deleted on exit.

Run the tests that use it:  python -m pytest tests/search/test_postgres_storage.py tests/search/test_distributed.py
"""
from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")
CLUSTER_USER = "postgres"  # the system user Debian's package creates
DATABASE = "optuna_test"
START_TIMEOUT_S = 30
MISSING_REASON = "PostgreSQL server binaries not found; install Debian's postgresql"

# Durability is pointless for a database deleted after the test; without it writes are faster.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


class PostgresUnavailable(RuntimeError):
    """No server can be started here (binaries or the cluster user missing); tests skip."""


def find_pg_bin(root: Path = PG_ROOT) -> Path | None:
    """The `bin` folder of the newest PostgreSQL under `root` that has every tool we run."""
    found = []
    for bin_dir in root.glob("*/bin"):
        version = tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))
        if version and all((bin_dir / tool).is_file() for tool in PG_TOOLS):
            found.append((version, bin_dir))
    return max(found)[1] if found else None


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    """`cmd` run as the postgres user when we are root (the server refuses root), else as is."""
    if os.geteuid() == 0:
        return ["runuser", "-u", CLUSTER_USER, "--", *cmd]
    return cmd


def _run(cmd: list[str], cwd: Path, what: str, log: Path | None = None) -> None:
    """Run a setup command; on failure raise with its output (and the server log) attached."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip()
        if log is not None and log.is_file():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace").strip()
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{detail}")


def _kill_postmaster(data: Path) -> None:
    """Last resort when `pg_ctl stop` fails: SIGKILL the server we started, by its pid file."""
    pid_file = data / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)


@contextlib.contextmanager
def postgres_server(tmp_dir: str | Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL server with an empty database; yield its SQLAlchemy URL.

    The cluster lives in a new folder inside `tmp_dir` (default: the system temp folder). Under
    root that folder must be reachable by the postgres user, which pytest's `tmp_path` is not
    (its base is mode 0700), hence the default. Raises PostgresUnavailable when no server can
    be run here; any other failure raises with the tool's output and the server log.
    """
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise PostgresUnavailable(MISSING_REASON)
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and no {CLUSTER_USER!r} user to own the cluster; "
                "install Debian's postgresql"
            ) from None

    base = Path(tempfile.mkdtemp(prefix="caser-pg-", dir=tmp_dir))
    data, log = base / "data", base / "server.log"
    started = False
    try:
        if owner is not None:
            os.chmod(base, 0o700)
            os.chown(base, owner.pw_uid, owner.pw_gid)
        _run(
            _as_cluster_owner(
                [str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", CLUSTER_USER,
                 "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
            ),
            cwd=base, what="initdb",
        )
        port = free_port()
        settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{base}'"}
        with open(data / "postgresql.conf", "a") as conf:  # appending keeps the owner
            conf.write("\n# caser-sweep tests\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        started = True  # from here on a half-started server must still be stopped
        _run(
            _as_cluster_owner(
                [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                 "-t", str(START_TIMEOUT_S), "start"]
            ),
            cwd=base, what="pg_ctl start", log=log,
        )
        _run(
            [str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", CLUSTER_USER,
             DATABASE],
            cwd=base, what="createdb", log=log,
        )
        yield f"postgresql+psycopg2://{CLUSTER_USER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            stop = subprocess.run(
                _as_cluster_owner([str(pg_bin / "pg_ctl"), "-D", str(data), "-w", "-m", "fast",
                                   "stop"]),
                cwd=base, capture_output=True, timeout=60,
            )
            if stop.returncode != 0 and (data / "postmaster.pid").exists():
                _kill_postmaster(data)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """URL of an empty database on a fresh server shared by the tests of one module."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
