"""Schema versions and migrations, on both backends."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from agner.crm import SchemaError, latest_version, open_store, schema

pytest_plugins = ["_pg"]


def raw(url: str, sql: str) -> list[Any]:
    """Run SQL on the store's database behind its back."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.partition(":///")[2]) as conn:
            return list(conn.execute(sql).fetchall())
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def columns(url: str) -> set[str]:
    if url.startswith("sqlite"):
        return {r[1] for r in raw(url, "PRAGMA table_info(customers)")}
    return {
        r[0]
        for r in raw(
            url,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' "
            "AND table_schema = current_schema()",
        )
    }


def test_new_store_is_at_the_latest_version(store_url: str) -> None:
    with open_store(store_url) as s:
        assert s.schema_version() == latest_version() == schema.MIGRATIONS[-1].version
    with open_store(store_url, migrate=False) as s:  # nothing pending: fine
        assert s.schema_version() == latest_version()
    assert raw(store_url, "SELECT version FROM agner_schema") == [(latest_version(),)]


def test_pending_migration_is_applied_once(store_url: str, monkeypatch: Any) -> None:
    open_store(store_url).close()
    v = latest_version() + 1
    step = schema.Migration(v, "test: a note", ("ALTER TABLE customers ADD note TEXT",))
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    with pytest.raises(SchemaError, match=f"needs {v}"):
        open_store(store_url, migrate=False)
    assert "note" not in columns(store_url)
    with open_store(store_url) as s:
        assert s.schema_version() == v
        s.create_customer("acme", name="Ann", emails=["ann@example.com"])
    assert "note" in columns(store_url)
    with open_store(store_url) as s:  # reopening applies nothing twice
        assert s.schema_version() == v


def test_failed_migration_changes_nothing(store_url: str, monkeypatch: Any) -> None:
    open_store(store_url).close()
    v = latest_version() + 1
    broken = schema.Migration(v, "test", ("ALTER TABLE customers ADD note TEXT", "NOT SQL AT ALL"))
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(Exception, match=r"(?i)syntax"):
        open_store(store_url)
    assert "note" not in columns(store_url)
    assert raw(store_url, "SELECT MAX(version) FROM agner_schema") == [(v - 1,)]


def test_store_from_a_newer_agner_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    raw(store_url, f"INSERT INTO agner_schema VALUES ({latest_version() + 1}, 'future', 0)")
    with pytest.raises(SchemaError, match="upgrade agner"):
        open_store(store_url)
