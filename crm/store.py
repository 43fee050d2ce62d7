"""The CRM store: one interface over SQLite and PostgreSQL.

Everything but connecting, transactions and a few spellings is shared: the SQL is
written once (with ``?`` placeholders, rewritten for psycopg) and the two backends
in sqlite.py and postgres.py only supply those pieces, so both pass the same tests.

Threads: a store may be shared by threads; each thread gets its own connection
(SQLite connections must not be shared, and per-thread connections let readers
run side by side). Every call is short and synchronous: from asyncio, call it in
a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Literal, NamedTuple, TextIO

import msgspec
from msgspec import UNSET, UnsetType

from agner.crm import schema, validate
from agner.crm.csvimport import CustomerRow, read_customers, source_name
from agner.crm.errors import Conflict, CrmError, InvalidInput, NotFound, SchemaError
from agner.crm.models import (
    Customer,
    ImportResult,
    Interaction,
    Lead,
    LeadForm,
    RoutingHints,
    ScreenPop,
    StoreOptions,
)
from agner.crm.report import Report, Sums, build_rows

__all__ = ["Store"]

# Where each kind of contact point lives.
_KEY_TABLE = {"phone": "customer_phones", "email": "customer_emails"}
_CUSTOMER_COLS = "id, name, tier, language, attributes, created_us, updated_us"
_LEAD_COLS = "id, phone, email, name, notes, created_us, converted_to"
_I_FIELDS: tuple[str, ...] = Interaction.__struct_fields__
_I_COLS = ", ".join(_I_FIELDS)
_I_INSERT_FIELDS = tuple(f for f in _I_FIELDS if f != "id")
_BATCH = 500  # rows per IN (...) list and per import batch
_CUSTOMER_TABLES = "customers, customer_phones, customer_emails, leads"
_FOREVER_US = 2**62


def _now(now_us: int | None) -> int:
    return time.time_ns() // 1000 if now_us is None else now_us


def _chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for k in range(0, len(seq), n):
        yield seq[k : k + n]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class _Save(NamedTuple):
    """One customer to write: a new one (target None) or an existing one."""

    target: int | None
    name: str
    tier: str | None  # None: an import's empty cell (keep the customer's, or the default)
    language: str | None
    attributes: dict[str, str]
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    replace_contacts: bool = False  # True: these are all its numbers; False: add them
    row: CustomerRow | None = None  # where it came from, for an import's errors
    source: str | None = None


class Store:
    """A CRM store; get one with :func:`agner.crm.open_store`.

    Every method names the tenant first; a tenant sees only its own rows (another
    tenant's ids are :class:`NotFound`). Times are microseconds since the epoch
    (UTC); methods that need the current time take ``now_us`` (default: the wall
    clock). Writes are all-or-nothing: a call that raises has written nothing.

    Errors: :class:`InvalidInput` (a refused value, the field named),
    :class:`NotFound`, :class:`Conflict` (a phone number or address that belongs
    to another customer), :class:`SchemaError`; the database driver's own errors
    for a lost connection.
    """

    #: "sqlite" or "postgresql".
    backend: str = ""
    _ddl: ClassVar[Mapping[str, str]] = {}
    _integrity_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str, options: StoreOptions | None = None, *, migrate: bool = True):
        self.url = url
        self.options = options or StoreOptions()
        _check_options(self.options)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        self._closed = False
        try:
            self._migrate(migrate)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------
    # What a backend supplies.

    def _connect(self) -> Any:
        raise NotImplementedError

    def _transaction(self, conn: Any, write: bool) -> AbstractContextManager[Any]:
        """A context yielding a cursor inside a transaction: commit on success,
        roll back on an exception."""
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        """The SQL in the driver's placeholder style."""
        return sql

    def _insert_ids(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Run an ``INSERT ... RETURNING id`` for each row; the ids in order."""
        ids = []
        for r in rows:
            cur.execute(self._q(sql), r)
            ids.append(int(cur.fetchone()[0]))
        return ids

    def _dump_json(self, value: dict[str, str]) -> Any:
        return msgspec.json.encode(value).decode()

    def _load_json(self, value: Any) -> dict[str, str]:
        return dict(msgspec.json.decode(value)) if isinstance(value, (str, bytes)) else value

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (...)`` for these values: the SQL and its parameters."""
        return f"{column} IN ({_marks(len(values))})", list(values)

    def _lock_schema(self, cur: Any) -> None:
        """Serialize migrations between processes (the SQLite write lock does)."""

    def _broken(self, conn: Any) -> bool:
        return False

    # ------------------------------------------------------------------
    # Connections and transactions.

    def _conn(self) -> Any:
        if self._closed:
            raise CrmError("the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None or self._broken(conn):
            conn = self._connect()
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Any]:
        try:
            with self._transaction(self._conn(), write) as cur:
                yield cur
        except self._integrity_errors as exc:
            # The checks before each write make this a race with another writer.
            raise Conflict(f"another writer got there first: {exc}") from exc

    @contextmanager
    def _bulk_tx(self, rows: int, tables: str) -> Iterator[Any]:
        """A write transaction that loads about ``rows`` rows into ``tables`` (a
        comma-separated list)."""
        with self._tx() as cur:
            yield cur

    def _bulk_progress(self, cur: Any, done: int) -> None:
        """Called in a bulk transaction after each ``done`` rows written so far."""

    def _read1(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One statement outside a transaction (the hot look-up path)."""
        return list(self._conn().execute(self._q(sql), params).fetchall())

    def close(self) -> None:
        """Close every connection of every thread. The store cannot be used after."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(Exception):  # a lost connection is closed enough
                c.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_redact(self.url)}>"

    # ------------------------------------------------------------------
    # Schema.

    def _migrate(self, allowed: bool) -> None:
        with self._tx() as cur:
            self._lock_schema(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS agner_schema (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_us BIGINT NOT NULL)"
            )
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM agner_schema")
            current = int(cur.fetchone()[0])
            latest = schema.latest_version()
            if current > latest:
                raise SchemaError(
                    f"the store at {_redact(self.url)} has schema version {current}, newer "
                    f"than this agner's {latest}: upgrade agner"
                )
            pending = [m for m in schema.MIGRATIONS if m.version > current]
            if pending and not allowed:
                raise SchemaError(
                    f"the store at {_redact(self.url)} has schema version {current}, this "
                    f"agner needs {latest}: open it with migrate=True"
                )
            for m in pending:
                for stmt in m.statements:
                    cur.execute(stmt.format(**self._ddl))
                cur.execute(
                    self._q("INSERT INTO agner_schema VALUES (?, ?, ?)"),
                    (m.version, m.description, _now(None)),
                )

    def schema_version(self) -> int:
        """The schema version of the store (after migrations: ``latest_version()``)."""
        return int(self._read1("SELECT MAX(version) FROM agner_schema", ())[0][0])

    # ------------------------------------------------------------------
    # Routing look-up and screen pop.

    def lookup(self, tenant: str, query: str, *, now_us: int | None = None) -> RoutingHints:
        """What the router should know about a caller: ``query`` is a phone number
        (E.164 or national in ``options.default_region``) or an e-mail address.

        Never raises for an unknown, withheld or malformed number: the hints say
        ``known=False``. Preferred agents are those who ended a contact with this
        customer rated ``>= good_satisfaction`` within ``preferred_window_s`` before
        ``now_us``, the latest first. One indexed statement (see docs/BENCHMARKS.md).
        """
        tenant = validate.tenant(tenant)
        key = validate.contact_key(query, self.options.default_region)
        if key is None:
            return RoutingHints()
        return self._hints(tenant, key, _now(now_us))

    def _hints(self, tenant: str, key: tuple[str, str], now_us: int) -> RoutingHints:
        kind, value = key
        o = self.options
        since = now_us - int(o.preferred_window_s * 1e6)
        rows = self._read1(
            f"""SELECT c.id, c.tier, c.language, i.agent, MAX(i.ended_us)
            FROM {_KEY_TABLE[kind]} k
            JOIN customers c ON c.tenant = k.tenant AND c.id = k.customer_id
            LEFT JOIN interactions i ON i.tenant = c.tenant AND i.customer_id = c.id
                AND i.ended_us >= ? AND i.ended_us <= ? AND i.satisfaction >= ?
                AND i.agent IS NOT NULL
            WHERE k.tenant = ? AND k.{kind} = ?
            GROUP BY c.id, c.tier, c.language, i.agent
            ORDER BY MAX(i.ended_us) IS NULL, MAX(i.ended_us) DESC, i.agent
            LIMIT ?""",
            (since, now_us, o.good_satisfaction, tenant, value, max(1, o.max_preferred_agents)),
        )
        if not rows:
            return RoutingHints()
        cid, tier, lang = rows[0][0], rows[0][1], rows[0][2]
        agents = tuple(r[3] for r in rows if r[3] is not None)[: o.max_preferred_agents]
        return RoutingHints(
            known=True,
            customer_id=int(cid),
            tier=tier,
            priority=o.tiers.get(tier, 0),
            language=lang,
            language_skill=o.language_skill.format(language=lang) if lang else None,
            preferred_agents=agents,
        )

    def screen_pop(self, tenant: str, query: str, *, now_us: int | None = None) -> ScreenPop:
        """The agent's screen for a contact from ``query`` (number or address).

        A customer: their record, routing hints and latest interactions. An unknown
        caller: the open lead for that number (created now if there is none) and a
        new-lead form; a withheld or invalid number gets the form with no lead.
        """
        tenant = validate.tenant(tenant)
        now = _now(now_us)
        key = validate.contact_key(query, self.options.default_region)
        history = self.options.screen_pop_history
        form_tiers = tuple(sorted(self.options.tiers, key=lambda t: self.options.tiers[t]))
        if key is None:
            return ScreenPop(
                kind="new_lead", query=query, form=LeadForm(lead_id=None, tiers=form_tiers)
            )
        with self._tx(write=False) as cur:
            cid = self._owner(cur, tenant, *key)
            if cid is not None:
                customer = self._customers(cur, tenant, f"id = {int(cid)}", ())[0]
                recent = self._interactions(cur, tenant, "customer_id = ?", (cid,), history)
        if cid is not None:
            return ScreenPop(
                kind="customer",
                query=key[1],
                customer=customer,
                hints=self._hints(tenant, key, now),
                interactions=tuple(recent),
            )
        with self._tx() as cur:
            lead = self._open_lead(cur, tenant, key, now)
            recent = self._interactions(cur, tenant, "lead_id = ?", (lead.id,), history)
        return ScreenPop(
            kind="new_lead",
            query=key[1],
            lead=lead,
            form=LeadForm(lead_id=lead.id, phone=lead.phone, email=lead.email, tiers=form_tiers),
            interactions=tuple(recent),
        )

    # ------------------------------------------------------------------
    # Customers.

    def create_customer(
        self,
        tenant: str,
        *,
        name: str,
        phones: Iterable[str] = (),
        emails: Iterable[str] = (),
        tier: str | None = None,
        language: str | None = None,
        attributes: Mapping[str, str] | None = None,
        now_us: int | None = None,
    ) -> Customer:
        """Add a customer. Needs a name and a phone number or an e-mail address;
        numbers are normalized to E.164 (national ones read in ``default_region``).
        An open lead with one of these numbers or addresses is converted to it.
        Raises :class:`InvalidInput`, or :class:`Conflict` if a number or address
        belongs to another customer."""
        tenant = validate.tenant(tenant)
        save = self._checked(None, name, phones, emails, tier, language, attributes)
        with self._tx() as cur:
            (cid,), _ = self._save(cur, tenant, [save], _now(now_us))
            return self._customers(cur, tenant, f"id = {cid}", ())[0]

    def get_customer(self, tenant: str, customer_id: int) -> Customer:
        """The customer with that id; :class:`NotFound` if the tenant has none."""
        tenant = validate.tenant(tenant)
        with self._tx(write=False) as cur:
            found = self._customers(cur, tenant, "id = ?", (int(customer_id),))
        if not found:
            raise NotFound(f"tenant {tenant!r} has no customer {customer_id}")
        return found[0]

    def find_customer(self, tenant: str, query: str) -> Customer | None:
        """The customer owning that phone number or e-mail address, or None."""
        tenant = validate.tenant(tenant)
        key = validate.contact_key(query, self.options.default_region)
        if key is None:
            return None
        with self._tx(write=False) as cur:
            cid = self._owner(cur, tenant, *key)
            return None if cid is None else self._customers(cur, tenant, "id = ?", (cid,))[0]

    def customers(self, tenant: str, *, after_id: int = 0, limit: int = 100) -> list[Customer]:
        """A page of customers by id: those with ``id > after_id``, at most ``limit``."""
        tenant = validate.tenant(tenant)
        with self._tx(write=False) as cur:
            return self._customers(cur, tenant, "id > ?", (after_id,), limit=limit)

    def update_customer(
        self,
        tenant: str,
        customer_id: int,
        *,
        name: str | UnsetType = UNSET,
        phones: Iterable[str] | UnsetType = UNSET,
        emails: Iterable[str] | UnsetType = UNSET,
        tier: str | UnsetType = UNSET,
        language: str | UnsetType | None = UNSET,
        attributes: Mapping[str, str] | UnsetType = UNSET,
        now_us: int | None = None,
    ) -> Customer:
        """Change the given fields (``phones``, ``emails`` and ``attributes`` are
        replaced whole). Raises :class:`NotFound`, :class:`InvalidInput`, or
        :class:`Conflict` for a number or address of another customer."""
        old = self.get_customer(tenant, customer_id)
        tenant = validate.tenant(tenant)
        save = self._checked(
            old.id,
            old.name if isinstance(name, UnsetType) else name,
            old.phones if isinstance(phones, UnsetType) else phones,
            old.emails if isinstance(emails, UnsetType) else emails,
            old.tier if isinstance(tier, UnsetType) else tier,
            old.language if isinstance(language, UnsetType) else language,
            old.attributes if isinstance(attributes, UnsetType) else attributes,
        )._replace(replace_contacts=True)
        with self._tx() as cur:
            self._save(cur, tenant, [save], _now(now_us))
            return self._customers(cur, tenant, "id = ?", (old.id,))[0]

    def delete_customer(self, tenant: str, customer_id: int) -> None:
        """Remove a customer, its numbers, addresses and the leads converted to it.
        Its interactions stay (for reports) without the link. :class:`NotFound` if
        the tenant has no such customer."""
        tenant = validate.tenant(tenant)
        cid = int(customer_id)
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE interactions SET customer_id = NULL, lead_id = NULL "
                    "WHERE tenant = ? AND customer_id = ?"
                ),
                (tenant, cid),
            )
            cur.execute(
                self._q("DELETE FROM leads WHERE tenant = ? AND converted_to = ?"), (tenant, cid)
            )
            cur.execute(self._q("DELETE FROM customers WHERE tenant = ? AND id = ?"), (tenant, cid))
            if cur.rowcount != 1:
                raise NotFound(f"tenant {tenant!r} has no customer {customer_id}")

    def count(self, tenant: str, what: Literal["customers", "leads", "interactions"]) -> int:
        """How many customers, leads (open or not) or interactions the tenant has."""
        tenant = validate.tenant(tenant)
        if what not in ("customers", "leads", "interactions"):
            raise InvalidInput("what", f"{what!r} is not customers, leads or interactions")
        rows = self._read1(f"SELECT COUNT(*) FROM {what} WHERE tenant = ?", (tenant,))
        return int(rows[0][0])

    def import_customers(
        self,
        tenant: str,
        source: str | os.PathLike[str] | TextIO,
        *,
        region: str | None = None,
        now_us: int | None = None,
    ) -> ImportResult:
        """Import a customers CSV (a path or an open text file); see csvimport.py for
        the columns. A row whose number or address belongs to a customer updates that
        customer (name, tier, language; numbers, addresses and attributes are added);
        other rows create customers. All or nothing: the whole file is checked
        first, then written in one transaction; any error (:class:`InvalidInput`
        naming the row, its line and the field) leaves the store as it was."""
        tenant = validate.tenant(tenant)
        rows = read_customers(source, self.options, region)
        name = source_name(source)
        saves = [
            _Save(
                None,
                r.name,
                r.tier,
                r.language,
                r.attributes,
                r.phones,
                r.emails,
                row=r,
                source=name,
            )
            for r in rows
        ]
        now = _now(now_us)
        created = updated = 0
        claimed: dict[int, int] = {}
        with self._bulk_tx(len(saves), _CUSTOMER_TABLES) as cur:
            open_before = self._open_leads(cur, tenant)
            for batch in _chunks(saves, _BATCH):
                ids, n_created = self._save(cur, tenant, batch, now, match=True, claimed=claimed)
                created += n_created
                updated += len(ids) - n_created
                self._bulk_progress(cur, created + updated)
            converted = open_before - self._open_leads(cur, tenant)
        return ImportResult(
            rows=len(rows), created=created, updated=updated, leads_converted=converted
        )

    # ------------------------------------------------------------------
    # Leads.

    def create_lead(
        self,
        tenant: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        name: str | None = None,
        notes: str | None = None,
        now_us: int | None = None,
    ) -> Lead:
        """Record an unknown contact as a lead (a phone number or an e-mail address
        is needed). :class:`Conflict` if a customer or an open lead has it."""
        tenant = validate.tenant(tenant)
        p = validate.phone(phone, self.options.default_region) if phone else None
        e = validate.email(email) if email else None
        if p is None and e is None:
            raise InvalidInput("phone", "a lead needs a phone number or an e-mail address")
        n, t = validate.text(name, "name"), validate.text(notes, "notes")
        with self._tx() as cur:
            for kind, value in (("phone", p), ("email", e)):
                if value is None:
                    continue
                owner = self._owner(cur, tenant, kind, value)
                if owner is not None:
                    raise Conflict(f"{kind} {value} belongs to customer {owner}")
                if self._find_open_lead(cur, tenant, kind, value) is not None:
                    raise Conflict(f"{kind} {value} already has an open lead")
            (lid,) = self._insert_ids(
                cur,
                "INSERT INTO leads (tenant, phone, email, name, notes, created_us) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [(tenant, p, e, n, t, _now(now_us))],
            )
            return self._leads(cur, tenant, "id = ?", (lid,))[0]

    def get_lead(self, tenant: str, lead_id: int) -> Lead:
        """The lead with that id; :class:`NotFound` if the tenant has none."""
        tenant = validate.tenant(tenant)
        with self._tx(write=False) as cur:
            return self._lead(cur, tenant, lead_id)

    def leads(
        self, tenant: str, *, open_only: bool = True, after_id: int = 0, limit: int = 100
    ) -> list[Lead]:
        """A page of leads by id (only those not converted, unless ``open_only`` is
        False)."""
        tenant = validate.tenant(tenant)
        where = "id > ?" + (" AND converted_to IS NULL" if open_only else "")
        with self._tx(write=False) as cur:
            return self._leads(cur, tenant, where, (after_id,), limit=limit)

    def update_lead(
        self,
        tenant: str,
        lead_id: int,
        *,
        name: str | UnsetType | None = UNSET,
        notes: str | UnsetType | None = UNSET,
    ) -> Lead:
        """Change a lead's name or notes (what the agent typed in the form)."""
        tenant = validate.tenant(tenant)
        with self._tx() as cur:
            lead = self._lead(cur, tenant, lead_id)
            lead = msgspec.structs.replace(
                lead,
                name=lead.name if isinstance(name, UnsetType) else validate.text(name, "name"),
                notes=lead.notes if isinstance(notes, UnsetType) else validate.text(notes, "notes"),
            )
            cur.execute(
                self._q("UPDATE leads SET name = ?, notes = ? WHERE tenant = ? AND id = ?"),
                (lead.name, lead.notes, tenant, lead.id),
            )
            return lead

    def delete_lead(self, tenant: str, lead_id: int) -> None:
        """Remove a lead; its interactions stay without the link."""
        tenant = validate.tenant(tenant)
        with self._tx() as cur:
            lead = self._lead(cur, tenant, lead_id)
            cur.execute(
                self._q("UPDATE interactions SET lead_id = NULL WHERE tenant = ? AND lead_id = ?"),
                (tenant, lead.id),
            )
            cur.execute(self._q("DELETE FROM leads WHERE tenant = ? AND id = ?"), (tenant, lead.id))

    def convert_lead(
        self,
        tenant: str,
        lead_id: int,
        *,
        name: str | None = None,
        phones: Iterable[str] = (),
        emails: Iterable[str] = (),
        tier: str | None = None,
        language: str | None = None,
        attributes: Mapping[str, str] | None = None,
        now_us: int | None = None,
    ) -> Customer:
        """Make a lead a customer (the new-lead form, filled in): the customer gets
        the lead's number or address besides those given, the lead's name unless
        one is given, and the lead's interactions. :class:`Conflict` if the lead was
        converted already."""
        tenant = validate.tenant(tenant)
        lead = self.get_lead(tenant, lead_id)
        if lead.converted_to is not None:
            raise Conflict(f"lead {lead.id} is already customer {lead.converted_to}")
        save = self._checked(
            None,
            name if name is not None else lead.name,
            [*([lead.phone] if lead.phone else []), *phones],
            [*([lead.email] if lead.email else []), *emails],
            tier,
            language,
            attributes,
        )
        with self._tx() as cur:
            (cid,), _ = self._save(cur, tenant, [save], _now(now_us))
            if self._lead(cur, tenant, lead.id).converted_to != cid:
                raise Conflict(f"lead {lead.id} changed while it was being converted")
            return self._customers(cur, tenant, "id = ?", (cid,))[0]

    # ------------------------------------------------------------------
    # Interactions.

    def record_interaction(self, tenant: str, interaction: Interaction) -> Interaction:
        """Store one contact (see :class:`Interaction`) and return it as stored: with
        its id, the durations, and the customer or lead it belongs to (found from
        ``caller``; an unknown valid caller becomes a lead). A contact whose ``ref``
        is stored already is not stored again: the stored one is returned.
        Raises :class:`InvalidInput` naming the field, :class:`NotFound` for a
        ``customer_id`` or ``lead_id`` the tenant does not have."""
        return self.record_interactions(tenant, [interaction])[0]

    def record_interactions(
        self, tenant: str, interactions: Iterable[Interaction]
    ) -> list[Interaction]:
        """:meth:`record_interaction` for many, in one transaction (all or nothing);
        an error names the 1-based ``row`` of the bad one."""
        tenant = validate.tenant(tenant)
        checked = []
        for n, i in enumerate(interactions, 1):
            try:
                checked.append(validate.interaction(i, self.options))
            except InvalidInput as exc:
                raise exc.at_row(n, None, None) from None
        out = []
        with self._bulk_tx(len(checked), "interactions, leads") as cur:
            for i in checked:
                out.append(self._record(cur, tenant, i))
                if len(out) % _BATCH == 0:
                    self._bulk_progress(cur, len(out))
        return out

    def _record(self, cur: Any, tenant: str, i: Interaction) -> Interaction:
        if i.ref is not None:
            found = self._interactions(cur, tenant, "ref = ?", (i.ref,), 1)
            if found:
                return found[0]
        cid, lid = i.customer_id, i.lead_id
        if cid is not None and self._owner_exists(cur, tenant, cid) is False:
            raise NotFound(f"tenant {tenant!r} has no customer {cid}")
        if lid is not None:
            lead = self._lead(cur, tenant, lid)
            cid = lead.converted_to if cid is None else cid
        if cid is None and lid is None and i.caller is not None:
            key = ("email" if "@" in i.caller else "phone", i.caller)
            cid = self._owner(cur, tenant, *key)
            if cid is None:
                lid = self._open_lead(cur, tenant, key, i.arrived_us).id
        i = msgspec.structs.replace(i, customer_id=cid, lead_id=lid)
        (iid,) = self._insert_ids(
            cur,
            f"INSERT INTO interactions (tenant, {', '.join(_I_INSERT_FIELDS)}) "
            f"VALUES (?, {_marks(len(_I_INSERT_FIELDS))}) RETURNING id",
            [(tenant, *(getattr(i, f) for f in _I_INSERT_FIELDS))],
        )
        return msgspec.structs.replace(i, id=iid)

    def get_interaction(self, tenant: str, interaction_id: int) -> Interaction:
        """The interaction with that id; :class:`NotFound` if the tenant has none."""
        tenant = validate.tenant(tenant)
        with self._tx(write=False) as cur:
            found = self._interactions(cur, tenant, "id = ?", (int(interaction_id),), 1)
        if not found:
            raise NotFound(f"tenant {tenant!r} has no interaction {interaction_id}")
        return found[0]

    def update_interaction(
        self,
        tenant: str,
        interaction_id: int,
        *,
        disposition: str | UnsetType | None = UNSET,
        satisfaction: int | UnsetType | None = UNSET,
        notes: str | UnsetType | None = UNSET,
        recording: str | UnsetType | None = UNSET,
    ) -> Interaction:
        """Set what is known only after the contact: the disposition, the
        satisfaction score (a survey), notes, the recording reference."""
        tenant = validate.tenant(tenant)
        changes = {
            k: v
            for k, v in (
                ("disposition", disposition),
                ("satisfaction", satisfaction),
                ("notes", notes),
                ("recording", recording),
            )
            if not isinstance(v, UnsetType)
        }
        with self._tx() as cur:
            found = self._interactions(cur, tenant, "id = ?", (int(interaction_id),), 1)
            if not found:
                raise NotFound(f"tenant {tenant!r} has no interaction {interaction_id}")
            new = validate.interaction(msgspec.structs.replace(found[0], **changes), self.options)
            cur.execute(
                self._q(
                    "UPDATE interactions SET disposition = ?, satisfaction = ?, notes = ?, "
                    "recording = ? WHERE tenant = ? AND id = ?"
                ),
                (new.disposition, new.satisfaction, new.notes, new.recording, tenant, new.id),
            )
            return new

    def interactions(
        self,
        tenant: str,
        *,
        customer_id: int | None = None,
        lead_id: int | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int = 100,
    ) -> list[Interaction]:
        """Interactions newest first (by end time): of a customer, of a lead, or of
        the whole tenant, that ended in ``[since_us, until_us)``."""
        tenant = validate.tenant(tenant)
        where = ["ended_us >= ?", "ended_us < ?"]
        params: list[Any] = [since_us or 0, _FOREVER_US if until_us is None else until_us]
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(int(customer_id))
        if lead_id is not None:
            where.append("lead_id = ?")
            params.append(int(lead_id))
        with self._tx(write=False) as cur:
            return self._interactions(cur, tenant, " AND ".join(where), params, limit)

    # ------------------------------------------------------------------
    # Reports.

    def report(
        self,
        tenant: str,
        *,
        interval_s: int = 1800,
        threshold_s: float = 20.0,
        start_us: int | None = None,
        end_us: int | None = None,
        agents: bool = True,
    ) -> Report:
        """Service level, ASA, abandonment and AHT per interval, per queue (and all
        queues) and, with ``agents``, per agent, over contacts that arrived in
        ``[start_us, end_us)``. ``interval_s`` must divide a day in whole minutes
        (900, 1800, 3600, ...); ``threshold_s`` is the service-level threshold T.
        Definitions: agner.crm.report and docs/CRM.md."""
        tenant = validate.tenant(tenant)
        if (
            not isinstance(interval_s, int)
            or interval_s <= 0
            or interval_s % 60
            or 86400 % interval_s
        ):
            raise InvalidInput(
                "interval_s",
                f"must divide a day in whole minutes (900, 1800, 3600), not {interval_s}",
            )
        if not 0 <= threshold_s < 86400:
            raise InvalidInput("threshold_s", f"must be from 0 to a day, not {threshold_s}")
        iv = interval_s * 1_000_000
        lo = 0 if start_us is None else start_us
        hi = _FOREVER_US if end_us is None else end_us
        with self._tx(write=False) as cur:
            by_queue = self._sums(cur, tenant, "queue", iv, int(threshold_s * 1e6), lo, hi)
            by_agent = (
                self._sums(cur, tenant, "agent", iv, int(threshold_s * 1e6), lo, hi)
                if agents
                else None
            )
        return Report(
            interval_s=interval_s,
            threshold_s=threshold_s,
            start_us=start_us,
            end_us=end_us,
            rows=build_rows(by_queue, by_agent),
        )

    def _sums(
        self, cur: Any, tenant: str, column: str, iv: int, t_us: int, lo: int, hi: int
    ) -> list[tuple[int, str | None, Sums]]:
        assert column in ("queue", "agent")
        cur.execute(
            self._q(
                f"""SELECT (arrived_us / ?) * ?, {column}, COUNT(*),
                SUM(CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END),
                SUM(CASE WHEN outcome = 'abandoned' THEN 1 ELSE 0 END),
                SUM(CASE WHEN outcome = 'answered' AND wait_us <= ? THEN 1 ELSE 0 END),
                SUM(CASE WHEN outcome = 'answered' THEN wait_us ELSE 0 END),
                SUM(CASE WHEN outcome = 'answered'
                    THEN talk_us + COALESCE(wrap_up_us, 0) ELSE 0 END)
            FROM interactions
            WHERE tenant = ? AND arrived_us >= ? AND arrived_us < ?
                {"AND agent IS NOT NULL" if column == "agent" else ""}
            GROUP BY 1, 2"""
            ),
            (iv, iv, t_us, tenant, lo, hi),
        )
        return [
            (
                int(r[0]),
                r[1],
                (int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])),
            )
            for r in cur.fetchall()
        ]

    # ------------------------------------------------------------------
    # Shared pieces.

    def _checked(
        self,
        target: int | None,
        name: Any,
        phones: Iterable[Any],
        emails: Iterable[Any],
        tier: Any,
        language: Any,
        attributes: Mapping[str, Any] | None,
    ) -> _Save:
        n = validate.text(name, "name", required=True)
        assert n is not None
        ph = validate.phones(_as_list(phones, "phones"), self.options.default_region)
        em = validate.emails(_as_list(emails, "emails"))
        if not ph and not em:
            raise InvalidInput("phones", "a customer needs a phone number or an e-mail address")
        return _Save(
            target,
            n,
            validate.tier(tier, self.options),
            validate.language(language),
            validate.attributes(attributes),
            ph,
            em,
        )

    def _save(
        self,
        cur: Any,
        tenant: str,
        items: Sequence[_Save],
        now: int,
        *,
        match: bool = False,
        claimed: dict[int, int] | None = None,
    ) -> tuple[list[int], int]:
        """Write customers; returns their ids (in order) and how many were created.

        With ``match`` (an import), an item with no target updates the customer
        owning one of its numbers or addresses, if there is one. Otherwise any
        number or address owned by a customer other than the target is refused.
        """
        owners = {
            kind: self._owners(cur, tenant, kind, [v for s in items for v in _values(s, kind)])
            for kind in _KEY_TABLE
        }
        targets: list[int | None] = []
        for s in items:
            target = s.target
            found = [
                (kind, v, owners[kind][v])
                for kind in ("phone", "email")
                for v in _values(s, kind)
                if v in owners[kind]
            ]
            if match and target is None and found:
                target = found[0][2]
                if claimed is not None and s.row is not None:
                    earlier = claimed.setdefault(target, s.row.row)
                    if earlier != s.row.row:
                        problem = f"customer {target} is also updated by row {earlier}"
                        _refuse(s, found[0][0], problem)
            for kind, v, owner in found:
                if owner != target:
                    _refuse(s, kind, f"{v} belongs to customer {owner}")
            targets.append(target)
        new = [k for k, t in enumerate(targets) if t is None]
        new_ids = self._insert_ids(
            cur,
            "INSERT INTO customers (tenant, name, tier, language, attributes, created_us, "
            "updated_us) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                (
                    tenant,
                    s.name,
                    s.tier or self.options.default_tier,
                    s.language,
                    self._dump_json(s.attributes),
                    now,
                    now,
                )
                for s in (items[k] for k in new)
            ],
        )
        ids: list[int] = [t if t is not None else 0 for t in targets]
        for k, cid in zip(new, new_ids, strict=True):
            ids[k] = cid
        updates = [(k, s) for k, s in enumerate(items) if targets[k] is not None]
        if updates:
            # An import keeps what its empty cells do not say and adds attributes.
            old = (
                {
                    c.id: c
                    for c in self._customers(
                        cur, tenant, *self._in("id", [ids[k] for k, _ in updates])
                    )
                }
                if match
                else {}
            )
            rows: list[tuple[Any, ...]] = []
            for k, s in updates:
                was = old.get(ids[k])
                tier, language, attributes = s.tier, s.language, s.attributes
                if was is not None:
                    tier = tier or was.tier
                    language = language or was.language
                    attributes = {**was.attributes, **attributes}
                rows.append(
                    (
                        s.name,
                        tier or self.options.default_tier,
                        language,
                        self._dump_json(attributes),
                        now,
                        tenant,
                        ids[k],
                    )
                )
            cur.executemany(
                self._q(
                    "UPDATE customers SET name = ?, tier = ?, language = ?, attributes = ?, "
                    "updated_us = ? WHERE tenant = ? AND id = ?"
                ),
                rows,
            )
        # New customers' and replaced sets are written in order; an import's update
        # appends after the customer's last position, skipping those it has.
        fresh = [k for k, s in enumerate(items) if targets[k] is None or s.replace_contacts]
        added = [
            k for k, s in enumerate(items) if targets[k] is not None and not s.replace_contacts
        ]
        for kind, table in _KEY_TABLE.items():
            replaced = [(tenant, ids[k]) for k, s in updates if s.replace_contacts]
            if replaced:
                cur.executemany(
                    self._q(f"DELETE FROM {table} WHERE tenant = ? AND customer_id = ?"), replaced
                )
            rows = [
                (tenant, v, ids[k], pos)
                for k in fresh
                for pos, v in enumerate(_values(items[k], kind))
            ]
            if rows:
                cur.executemany(
                    self._q(
                        f"INSERT INTO {table} (tenant, {kind}, customer_id, position) "
                        "VALUES (?, ?, ?, ?)"
                    ),
                    rows,
                )
            rows = [
                (tenant, v, ids[k], tenant, ids[k]) for k in added for v in _values(items[k], kind)
            ]
            if rows:
                cur.executemany(
                    self._q(
                        f"INSERT INTO {table} (tenant, {kind}, customer_id, position) "
                        f"SELECT ?, ?, ?, COALESCE(MAX(position), -1) + 1 FROM {table} "
                        f"WHERE tenant = ? AND customer_id = ? ON CONFLICT DO NOTHING"
                    ),
                    rows,
                )
        self._convert_leads(cur, tenant, items, ids)
        return ids, len(new)

    def _convert_leads(self, cur: Any, tenant: str, items: Sequence[_Save], ids: list[int]) -> None:
        """Open leads with a number or address these customers now have become theirs,
        with their interactions."""
        owner = {v: ids[k] for k, s in enumerate(items) for v in (*s.phones, *s.emails)}
        values = list(owner)
        hits: list[tuple[int, int]] = []
        for chunk in _chunks(values, _BATCH):
            by_phone, p1 = self._in("phone", chunk)
            by_email, p2 = self._in("email", chunk)
            cur.execute(
                self._q(
                    f"SELECT id, phone, email FROM leads WHERE tenant = ? AND converted_to IS NULL "
                    f"AND ({by_phone} OR {by_email})"
                ),
                [tenant, *p1, *p2],
            )
            for lid, phone, email in cur.fetchall():
                hits.append((owner[phone] if phone in owner else owner[email], lid))
        if hits:
            cur.executemany(
                self._q("UPDATE leads SET converted_to = ? WHERE tenant = ? AND id = ?"),
                [(cid, tenant, lid) for cid, lid in hits],
            )
            cur.executemany(
                self._q(
                    "UPDATE interactions SET customer_id = ? WHERE tenant = ? AND lead_id = ? "
                    "AND customer_id IS NULL"
                ),
                [(cid, tenant, lid) for cid, lid in hits],
            )

    def _owners(self, cur: Any, tenant: str, kind: str, values: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(values, _BATCH):
            cond, params = self._in(kind, chunk)
            cur.execute(
                self._q(
                    f"SELECT {kind}, customer_id FROM {_KEY_TABLE[kind]} "
                    f"WHERE tenant = ? AND {cond}"
                ),
                [tenant, *params],
            )
            out.update((v, int(c)) for v, c in cur.fetchall())
        return out

    def _owner(self, cur: Any, tenant: str, kind: str, value: str) -> int | None:
        return self._owners(cur, tenant, kind, [value]).get(value)

    def _owner_exists(self, cur: Any, tenant: str, customer_id: int) -> bool:
        cur.execute(
            self._q("SELECT 1 FROM customers WHERE tenant = ? AND id = ?"), (tenant, customer_id)
        )
        return cur.fetchone() is not None

    def _customers(
        self, cur: Any, tenant: str, where: str, params: Sequence[Any], *, limit: int = 1_000_000
    ) -> list[Customer]:
        cur.execute(
            self._q(
                f"SELECT {_CUSTOMER_COLS} FROM customers WHERE tenant = ? AND {where} "
                "ORDER BY id LIMIT ?"
            ),
            [tenant, *params, limit],
        )
        rows = cur.fetchall()
        ids = [int(r[0]) for r in rows]
        contacts = {kind: self._contacts(cur, tenant, kind, ids) for kind in _KEY_TABLE}
        return [
            Customer(
                id=int(r[0]),
                name=r[1],
                tier=r[2],
                language=r[3],
                attributes=self._load_json(r[4]),
                created_us=int(r[5]),
                updated_us=int(r[6]),
                phones=tuple(contacts["phone"].get(int(r[0]), ())),
                emails=tuple(contacts["email"].get(int(r[0]), ())),
            )
            for r in rows
        ]

    def _contacts(
        self, cur: Any, tenant: str, kind: str, ids: Sequence[int]
    ) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for chunk in _chunks(ids, _BATCH):
            cond, params = self._in("customer_id", chunk)
            cur.execute(
                self._q(
                    f"SELECT customer_id, {kind} FROM {_KEY_TABLE[kind]} WHERE tenant = ? "
                    f"AND {cond} ORDER BY customer_id, position"
                ),
                [tenant, *params],
            )
            for cid, v in cur.fetchall():
                out.setdefault(int(cid), []).append(v)
        return out

    def _leads(
        self, cur: Any, tenant: str, where: str, params: Sequence[Any], *, limit: int = 1
    ) -> list[Lead]:
        cur.execute(
            self._q(
                f"SELECT {_LEAD_COLS} FROM leads WHERE tenant = ? AND {where} ORDER BY id LIMIT ?"
            ),
            [tenant, *params, limit],
        )
        return [
            Lead(
                id=int(r[0]),
                phone=r[1],
                email=r[2],
                name=r[3],
                notes=r[4],
                created_us=int(r[5]),
                converted_to=None if r[6] is None else int(r[6]),
            )
            for r in cur.fetchall()
        ]

    def _lead(self, cur: Any, tenant: str, lead_id: int) -> Lead:
        found = self._leads(cur, tenant, "id = ?", (int(lead_id),))
        if not found:
            raise NotFound(f"tenant {tenant!r} has no lead {lead_id}")
        return found[0]

    def _find_open_lead(self, cur: Any, tenant: str, kind: str, value: str) -> Lead | None:
        found = self._leads(cur, tenant, f"{kind} = ? AND converted_to IS NULL", (value,))
        return found[0] if found else None

    def _open_lead(self, cur: Any, tenant: str, key: tuple[str, str], now: int) -> Lead:
        """The open lead for an unknown caller's number or address, created if need be."""
        kind, value = key
        lead = self._find_open_lead(cur, tenant, kind, value)
        if lead is not None:
            return lead
        (lid,) = self._insert_ids(
            cur,
            f"INSERT INTO leads (tenant, {kind}, created_us) VALUES (?, ?, ?) RETURNING id",
            [(tenant, value, now)],
        )
        return Lead(
            id=lid,
            created_us=now,
            phone=value if kind == "phone" else None,
            email=value if kind == "email" else None,
        )

    def _open_leads(self, cur: Any, tenant: str) -> int:
        cur.execute(
            self._q("SELECT COUNT(*) FROM leads WHERE tenant = ? AND converted_to IS NULL"),
            (tenant,),
        )
        return int(cur.fetchone()[0])

    def _interactions(
        self, cur: Any, tenant: str, where: str, params: Sequence[Any], limit: int
    ) -> list[Interaction]:
        cur.execute(
            self._q(
                f"SELECT {_I_COLS} FROM interactions WHERE tenant = ? AND {where} "
                "ORDER BY ended_us DESC, id DESC LIMIT ?"
            ),
            [tenant, *params, limit],
        )
        return [Interaction(**dict(zip(_I_FIELDS, r, strict=True))) for r in cur.fetchall()]


def _values(s: _Save, kind: str) -> tuple[str, ...]:
    return s.phones if kind == "phone" else s.emails


def _refuse(s: _Save, field: str, problem: str) -> None:
    if s.row is not None:
        raise InvalidInput(field, problem, row=s.row.row, line=s.row.line, source=s.source)
    raise Conflict(f"{field} {problem}")


def _as_list(values: Iterable[Any], field: str) -> list[Any]:
    if isinstance(values, str):  # a lone string would be read letter by letter
        return [values]
    return list(values)


def _check_options(o: StoreOptions) -> None:
    if o.default_tier not in o.tiers:
        raise InvalidInput("default_tier", f"{o.default_tier!r} is not one of the tiers")
    if o.default_region is not None and o.default_region.upper() not in _regions():
        raise InvalidInput("default_region", f"{o.default_region!r} is not a region code")
    if "{language}" not in o.language_skill:
        raise InvalidInput("language_skill", "must contain {language}")
    if o.preferred_window_s <= 0 or o.max_preferred_agents < 0 or o.screen_pop_history < 0:
        raise InvalidInput("options", "preferred_window_s must be > 0, the counts >= 0")
    if not 1 <= o.good_satisfaction <= 5:
        raise InvalidInput("good_satisfaction", "must be a score from 1 to 5")


def _regions() -> frozenset[str]:
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def _redact(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail.split("/", 1)[0]:
        return url
    cred, _, rest = tail.partition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in cred else ''}@{rest}"
