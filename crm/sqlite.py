"""The SQLite backend: the embedded default, one file in WAL mode.

WAL lets readers (look-ups, screen pops) run while a writer commits; writes take
the write lock up front (``BEGIN IMMEDIATE``) so two writers queue on the busy
timeout instead of failing half-way. ``synchronous=NORMAL`` is WAL's usual
setting: a commit survives a crash of the process, and the database stays
consistent through a power loss (the last commits may be lost then).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from agner.crm.errors import InvalidInput
from agner.crm.models import StoreOptions
from agner.crm.store import Store

__all__ = ["SQLiteStore"]

_BUSY_TIMEOUT_MS = 10_000


class SQLiteStore(Store):
    """A store in one SQLite file (``sqlite:///relative/path.db`` or
    ``sqlite:////absolute/path.db``)."""

    backend = "sqlite"
    _ddl: ClassVar[dict[str, str]] = {"id": "INTEGER PRIMARY KEY", "json": "TEXT"}
    _integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, url: str, options: StoreOptions | None = None, *, migrate: bool = True):
        path = url.partition("://")[2][1:]
        if not path or path.startswith(":memory:") or path.startswith("file:"):
            raise InvalidInput(
                "url", f"{url!r}: give a file, as sqlite:///relative.db or sqlite:////abs.db"
            )
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise InvalidInput("url", f"{url!r}: the folder {parent} does not exist")
        super().__init__(url, options, migrate=migrate)

    def _connect(self) -> Any:
        # check_same_thread=False only so close() may run on another thread; each
        # connection is otherwise used by the thread that opened it.
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB per connection
        return conn

    @contextmanager
    def _transaction(self, conn: Any, write: bool) -> Iterator[Any]:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cur
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            cur.close()
