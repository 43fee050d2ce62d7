"""A private PostgreSQL server for the CRM tests (and bench/crm_lookup.py), and the
store fixtures that run every CRM test on SQLite and on PostgreSQL.

Loaded with ``pytest_plugins = ["_pg"]`` by the CRM test modules, so the server is
one per session whichever of them run: initdb in a temporary folder, listening on
127.0.0.1 only, on a free port, with its socket in that folder; stopped and
removed at the end of the session. PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` user (Debian's package creates it).

Each test gets its own schema (its own tables) in that server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LocalPostgres", "pg_bin_dir"]


def pg_bin_dir() -> str | None:
    """The newest Debian PostgreSQL bin folder (or the one holding initdb on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (a context manager).

    ``url`` is a libpq URL for the superuser ``agner`` (trust authentication, only
    from this machine); ``url_for_schema(name)`` one whose tables live in a schema.
    Durability is traded for speed (fsync off): it is for tests and benchmarks.
    """

    def __init__(self, bin_dir: str | None = None) -> None:
        found = bin_dir or pg_bin_dir()
        if found is None:
            raise RuntimeError(
                "PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)"
            )
        self.bin = found
        self.dir = ""
        self.port = 0
        self._as: list[str] = []

    @property
    def url(self) -> str:
        return f"postgresql://agner@127.0.0.1:{self.port}/postgres"

    def url_for_schema(self, schema: str) -> str:
        return f"{self.url}?options=-csearch_path%3D{schema}"

    def _run(self, *args: str) -> None:
        res = subprocess.run(
            [*self._as, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if res.returncode != 0:
            log = os.path.join(self.dir, "log")
            tail = Path(log).read_text()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{res.stdout}{tail}")

    def start(self) -> LocalPostgres:
        self.dir = tempfile.mkdtemp(prefix="agner-pg-")
        if os.geteuid() == 0:  # postgres will not run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        self._run(
            os.path.join(self.bin, "initdb"),
            "-D",
            data,
            "-U",
            "agner",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.port = _free_port()
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c shared_buffers=256MB"
        )
        self._run(
            os.path.join(self.bin, "pg_ctl"),
            "-D",
            data,
            "-o",
            opts,
            "-l",
            os.path.join(self.dir, "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        if not self.dir:
            return
        try:
            self._run(
                os.path.join(self.bin, "pg_ctl"),
                "-D",
                os.path.join(self.dir, "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """The session's PostgreSQL server. Skipped where PostgreSQL is not installed,
    except in CI (CI=true), where .ci/run installs it and its absence is a failure."""
    if pg_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run should have installed it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with LocalPostgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A URL for an empty store, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    import psycopg

    server: LocalPostgres = request.getfixturevalue("pg_server")
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield server.url_for_schema(schema)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def open_crm(store_url: str) -> Iterator[Callable[..., Any]]:
    """``open_crm(options=None, migrate=True)``: open the test's store (closed after)."""
    from agner.crm import open_store

    opened: list[Any] = []

    def make(options: Any = None, *, migrate: bool = True) -> Any:
        s = open_store(store_url, options, migrate=migrate)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(open_crm: Callable[..., Any]) -> Any:
    """An empty store with the default options, on each backend in turn."""
    return open_crm()
