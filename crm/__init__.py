"""agner.crm: the CRM store (customers, leads, interactions) behind one interface,
on SQLite (the embedded default) or PostgreSQL.

    from agner.crm import open_store

    store = open_store("sqlite:///crm.db")          # or "postgresql://user@host/db"
    hints = store.lookup("acme", "+33142685300")    # what the router uses
    pop = store.screen_pop("acme", "+33142685300")  # what the agent sees
    store.record_interaction("acme", Interaction(...))

Models (msgspec Structs): :class:`Customer`, :class:`Lead`, :class:`Interaction`,
:class:`RoutingHints`, :class:`ScreenPop`, :class:`Report`. Times are int64
microseconds since the epoch (UTC), as in the routing core. The store is
synchronous and thread-safe (a connection per thread): from asyncio, call it in
a worker thread. docs/CRM.md describes the models, URLs and report definitions.
"""

from __future__ import annotations

import os

from agner.crm.errors import Conflict, CrmError, InvalidInput, NotFound, SchemaError
from agner.crm.models import (
    CHANNELS,
    OUTCOMES,
    Customer,
    ImportResult,
    Interaction,
    Lead,
    LeadForm,
    RoutingHints,
    ScreenPop,
    StoreOptions,
)
from agner.crm.report import Report, ReportRow
from agner.crm.schema import latest_version
from agner.crm.store import Store

__all__ = [
    "CHANNELS",
    "DEFAULT_URL",
    "OUTCOMES",
    "Conflict",
    "CrmError",
    "Customer",
    "ImportResult",
    "Interaction",
    "InvalidInput",
    "Lead",
    "LeadForm",
    "NotFound",
    "Report",
    "ReportRow",
    "RoutingHints",
    "SchemaError",
    "ScreenPop",
    "Store",
    "StoreOptions",
    "default_url",
    "latest_version",
    "open_store",
]

#: The store used when none is named: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///agner-crm.db"


def default_url() -> str:
    """``$AGNER_CRM_STORE`` if set, else :data:`DEFAULT_URL`."""
    return os.environ.get("AGNER_CRM_STORE") or DEFAULT_URL


def open_store(
    url: str | None = None, options: StoreOptions | None = None, *, migrate: bool = True
) -> Store:
    """Open (creating if need be) the store at ``url``:

    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: a SQLite
      file in WAL mode (created, with its tables, on first use);
    - ``postgresql://user:password@host:port/database`` (or ``postgres://``): a
      PostgreSQL database, through psycopg 3 (``pip install 'agner[postgres]'``).

    ``None`` means :func:`default_url`. Missing schema migrations are applied
    (``migrate=False`` refuses instead). Raises :class:`InvalidInput` for a URL of
    another kind or bad ``options``, :class:`SchemaError` for a store written by a
    newer agner, and the driver's error when the database cannot be reached.
    Close the store (or use it as a context manager) when done.
    """
    url = url or default_url()
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from agner.crm.sqlite import SQLiteStore

        return SQLiteStore(url, options, migrate=migrate)
    if scheme in ("postgresql", "postgres"):
        from agner.crm.postgres import PostgresStore

        return PostgresStore(url, options, migrate=migrate)
    raise InvalidInput(
        "url", f"{url!r}: a store URL is sqlite:///path.db or postgresql://user@host/db"
    )
