"""The CRM commands of the ``agner`` command line: ``agner report`` and
``agner crm import|lookup``. bindings/cli.py registers them through
:func:`add_commands`."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sqlite3
import sys
from typing import Any

import msgspec

from agner.crm import CrmError, InvalidInput, Store, default_url, open_store
from agner.crm.report import format_table, write_csv

__all__ = ["add_commands"]

_STORE_HELP = (
    "the store: sqlite:///path.db (relative) or sqlite:////abs/path.db, or "
    "postgresql://user@host/db (default: $AGNER_CRM_STORE, else sqlite:///agner-crm.db)"
)


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URL", help=_STORE_HELP)
    p.add_argument(
        "--tenant", default="default", help="the tenant whose records to use (default: default)"
    )


def add_commands(sub: Any) -> None:
    """Add ``report`` and ``crm`` to the ``agner`` subcommands (an argparse
    subparsers object)."""
    rep = sub.add_parser(
        "report",
        help="service level, ASA, abandonment, AHT per interval from the CRM store",
        description="Per interval, per queue (and all queues) and per agent, from the "
        "interaction records in the CRM store: offered, answered, abandoned; service level "
        "as answered within the threshold / offered and / answered; ASA (mean wait of "
        "answered, s); abandonment (abandoned / offered); AHT (mean talk + wrap-up of "
        "answered, s). A contact counts in the interval of its arrival; intervals are "
        "aligned in UTC. Definitions: docs/CRM.md.",
    )
    _store_options(rep)
    rep.add_argument(
        "--interval", default="30m", help="15m, 30m or 60m (any whole minutes dividing a day)"
    )
    rep.add_argument(
        "--threshold", type=float, default=20.0, metavar="S", help="service-level threshold T, s"
    )
    rep.add_argument("--from", dest="start", metavar="TIME", help="ISO 8601 start (UTC if no zone)")
    rep.add_argument("--to", dest="end", metavar="TIME", help="ISO 8601 end, excluded")
    rep.add_argument("--no-agents", action="store_true", help="leave out the per-agent rows")
    rep.add_argument("--csv", metavar="FILE", help="write the rows as CSV to FILE ('-': stdout)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")
    rep.set_defaults(func=_report)

    crm = sub.add_parser("crm", help="the CRM store: import customers, look a caller up")
    crm_sub = crm.add_subparsers(dest="crm_command", metavar="COMMAND", required=True)
    imp = crm_sub.add_parser(
        "import",
        help="import customers from a CSV file",
        description="Import customers from a CSV file with a header row: name (required), "
        "phone and email (at least one; several separated by ';'), tier, language; any "
        "other column is kept as an attribute. A row whose phone number or address is a "
        "stored customer's updates that customer. All or nothing: a bad row (named with "
        "its line and field) stores nothing. Exit status 2 on bad input.",
    )
    imp.add_argument("csv_file", metavar="CUSTOMERS.csv")
    _store_options(imp)
    imp.add_argument(
        "--region", help="ISO region for numbers without a country code, e.g. GB or FR"
    )
    imp.add_argument("--json", action="store_true", help="print one JSON object")
    imp.set_defaults(func=_import)
    look = crm_sub.add_parser(
        "lookup",
        help="what the router learns about a caller",
        description="Look a phone number or e-mail address up as the router does: known or "
        "not, tier and priority, language and its skill, preferred agents.",
    )
    look.add_argument("number", metavar="NUMBER", help="a phone number or e-mail address")
    _store_options(look)
    look.add_argument("--json", action="store_true", help="print one JSON object")
    look.set_defaults(func=_lookup)


def _run(name: str, args: argparse.Namespace, body: Any) -> int:
    """Open the store, run ``body(store)``, and turn errors into one line on stderr:
    exit 2 for bad input, 1 when the store cannot be used."""
    errors: tuple[type[BaseException], ...] = (CrmError, OSError, sqlite3.Error)
    try:
        import psycopg

        errors += (psycopg.Error,)
    except ImportError:
        pass
    try:
        with open_store(args.store or default_url()) as store:
            status: int = body(store)
            return status
    except InvalidInput as exc:
        print(f"agner {name}: {exc}", file=sys.stderr)
        return 2
    except errors as exc:
        print(f"agner {name}: {exc}", file=sys.stderr)
        return 1


def _interval(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*(s|m|min|h)?\s*", text)
    if not m:
        raise InvalidInput("--interval", f"{text!r} is not a duration such as 15m, 30m or 1h")
    return int(m.group(1)) * {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def _time_us(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(option, f"{text!r} is not an ISO 8601 date or time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _report(args: argparse.Namespace) -> int:
    def body(store: Store) -> int:
        rep = store.report(
            args.tenant,
            interval_s=_interval(args.interval),
            threshold_s=args.threshold,
            start_us=_time_us(args.start, "--from"),
            end_us=_time_us(args.end, "--to"),
            agents=not args.no_agents,
        )
        if args.csv == "-":
            write_csv(rep, sys.stdout)
        elif args.csv:
            with open(args.csv, "w", encoding="utf-8", newline="") as f:
                write_csv(rep, f)
        if args.json:
            print(msgspec.json.encode(rep).decode())
        elif args.csv != "-":
            print(format_table(rep) if rep.rows else "no interactions in that window")
        return 0

    return _run("report", args, body)


def _import(args: argparse.Namespace) -> int:
    def body(store: Store) -> int:
        res = store.import_customers(args.tenant, args.csv_file, region=args.region)
        if args.json:
            print(msgspec.json.encode(res).decode())
        else:
            print(
                f"{res.rows} rows: {res.created} customers created, {res.updated} updated, "
                f"{res.leads_converted} leads converted"
            )
        return 0

    return _run("crm import", args, body)


def _lookup(args: argparse.Namespace) -> int:
    def body(store: Store) -> int:
        h = store.lookup(args.tenant, args.number)
        if args.json:
            print(msgspec.json.encode(h).decode())
        elif not h.known:
            print(f"{args.number}: unknown caller (priority 0)")
        else:
            print(
                f"{args.number}: customer {h.customer_id}, tier {h.tier} (priority {h.priority})"
                f", language {h.language or '-'} (skill {h.language_skill or '-'}), "
                f"preferred agents: {', '.join(h.preferred_agents) or '-'}"
            )
        return 0

    return _run("crm lookup", args, body)
