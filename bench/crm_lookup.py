"""The CRM store's cost at scale: import N customers, record interactions, then time
routing look-ups (by number, by e-mail address, unknown callers) and screen pops,
one call at a time, on SQLite and on PostgreSQL.

    python bench/crm_lookup.py --customers 1000000            # both backends
    python bench/crm_lookup.py --customers 100000 --backend sqlite --json

PostgreSQL: a private server on 127.0.0.1 (tests/_pg.py: initdb in a temporary
folder, fsync off) unless --pg-url names one; the store's tables go in a fresh
schema. Not part of the test run; figures are in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from agner.crm import Interaction, Store, open_store

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

TENANT = "bench"
TIERS = ("standard", "standard", "standard", "silver", "gold", "platinum")
LANGS = ("en", "fr", "de", "es", "pt-BR")
AGENTS = 500
NOW = 1_700_000_000_000_000


def phone(k: int) -> str:
    return f"+336{10_000_000 + k}"  # French mobiles: valid, distinct


def email(k: int) -> str:
    return f"customer{k}@example.com"


def write_csv(path: str, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("name,phone,email,tier,language,account\n")
        for k in range(n):
            f.write(f"Customer {k},{phone(k)},{email(k)},{TIERS[k % 6]},{LANGS[k % 5]},A{k}\n")


def interactions(n_customers: int, n: int, rng: random.Random) -> list[Interaction]:
    out = []
    for j in range(n):
        at = NOW - rng.randrange(1, 60 * 86400) * 1_000_000
        answered = rng.random() < 0.9
        wait = rng.randrange(0, 60_000_000)
        out.append(
            Interaction(
                arrived_us=at,
                answered_us=at + wait if answered else None,
                ended_us=at + wait + (rng.randrange(30, 600) * 1_000_000 if answered else 0),
                outcome="answered" if answered else "abandoned",
                caller=phone(rng.randrange(n_customers)),
                queue=f"q{j % 20}",
                agent=f"agent{rng.randrange(AGENTS)}" if answered else None,
                satisfaction=rng.randint(1, 5) if answered and rng.random() < 0.5 else None,
            )
        )
    return out


def timed(calls: list[Callable[[], Any]]) -> dict[str, float]:
    """Mean, median and p99 of each call's wall time, in microseconds."""
    samples = []
    for call in calls:
        t = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t)
    samples.sort()
    return {
        "calls": len(samples),
        "mean_us": sum(samples) / len(samples) / 1000,
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    }


def run(store: Store, n: int, n_interactions: int, lookups: int, csv_path: str) -> dict[str, Any]:
    rng = random.Random(1)
    res: dict[str, Any] = {"backend": store.backend, "customers": n}
    t = time.perf_counter()
    imp = store.import_customers(TENANT, csv_path)
    res["import_s"] = time.perf_counter() - t
    assert imp.created == n, imp
    recs = interactions(n, n_interactions, rng)
    t = time.perf_counter()
    for k in range(0, len(recs), 1000):
        store.record_interactions(TENANT, recs[k : k + 1000])
    res["interactions"] = n_interactions
    res["record_s"] = time.perf_counter() - t
    # Warm-up: connections, prepared statements, the hot part of the indexes.
    for _ in range(2000):
        store.lookup(TENANT, phone(rng.randrange(n)), now_us=NOW)
    ks = [rng.randrange(n) for _ in range(lookups)]
    res["lookup_phone"] = timed(
        [lambda k=k: store.lookup(TENANT, phone(k), now_us=NOW) for k in ks]  # type: ignore[misc]
    )
    res["lookup_email"] = timed(
        [lambda k=k: store.lookup(TENANT, email(k), now_us=NOW) for k in ks]  # type: ignore[misc]
    )
    res["lookup_unknown"] = timed(
        [lambda k=k: store.lookup(TENANT, phone(n + k), now_us=NOW) for k in ks]  # type: ignore[misc]
    )
    pops = ks[: max(1, lookups // 5)]
    res["screen_pop"] = timed(
        [lambda k=k: store.screen_pop(TENANT, phone(k), now_us=NOW) for k in pops]  # type: ignore[misc]
    )
    hints = [store.lookup(TENANT, phone(k), now_us=NOW) for k in ks[:1000]]
    assert all(h.known for h in hints)
    res["with_preferred_agents"] = sum(1 for h in hints if h.preferred_agents) / len(hints)
    return res


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, help="default: customers / 5")
    ap.add_argument("--lookups", type=int, default=20_000, help="timed look-ups of each kind")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", help="a PostgreSQL server to use (default: a private one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.customers
    n_int = args.interactions if args.interactions is not None else n // 5
    results: dict[str, Any] = {"machine": machine(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="agner-crm-bench-") as tmp:
        csv_path = os.path.join(tmp, "customers.csv")
        write_csv(csv_path, n)
        if args.backend in ("sqlite", "both"):
            with open_store(f"sqlite:///{tmp}/crm.db") as store:
                results["runs"].append(run(store, n, n_int, args.lookups, csv_path))
            results["runs"][-1]["file_mb"] = os.path.getsize(f"{tmp}/crm.db") / 2**20
        if args.backend in ("postgresql", "both"):
            results["runs"].append(_postgres(args.pg_url, n, n_int, args.lookups, csv_path))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"CRM store, {n:,} customers, {n_int:,} interactions ({results['machine']['cpu']})")
    for r in results["runs"]:
        print(
            f"  {r['backend']:<10} import {n / r['import_s']:>9,.0f} customers/s, record "
            f"{r['interactions'] / r['record_s']:>8,.0f} interactions/s"
        )
        for kind in ("lookup_phone", "lookup_email", "lookup_unknown", "screen_pop"):
            x = r[kind]
            print(
                f"    {kind:<15} mean {x['mean_us']:8.1f} us  p50 {x['p50_us']:8.1f} us  "
                f"p99 {x['p99_us']:8.1f} us  ({x['calls']:,} calls)"
            )
    return 0


def _postgres(url: str | None, n: int, n_int: int, lookups: int, csv_path: str) -> dict[str, Any]:
    import psycopg
    from _pg import LocalPostgres

    server = None if url else LocalPostgres().start()
    base = url or (server.url if server else "")
    schema = "bench_" + uuid.uuid4().hex[:8]
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            version = conn.execute("SHOW server_version").fetchone()
        sep = "&" if "?" in base else "?"
        with open_store(f"{base}{sep}options=-csearch_path%3D{schema}") as store:
            res = run(store, n, n_int, lookups, csv_path)
        res["server"] = f"PostgreSQL {version[0] if version else '?'}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        return res
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
