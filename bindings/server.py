"""``agner serve``: the live ACD server on asyncio (uvloop).

Transports, all speaking the messages of :mod:`agner.protocol`:

- ``--tcp HOST:PORT``: frames of a 4-byte big-endian length and a MessagePack
  message, for switch adapters and services;
- ``--http HOST:PORT``: ``GET /v1/ws`` upgrades to a WebSocket of JSON text
  frames (agent desktops, CRM applications); ``GET /healthz``,
  ``GET /v1/queues`` and ``GET /v1/agents`` (JSON, ``Authorization: Bearer
  TENANT_TOKEN``) and ``GET /metrics`` (Prometheus text; with a tenant's token
  also that tenant's queues); ``GET /desktop`` and ``GET /wallboard``, the
  browser pages of bindings/web/ (docs/WEB.md), over the same WebSocket.

Every input goes through one path (:meth:`Server.handle`): the session's
checks (token, rate, size), then :class:`agner.center.Center`, which journals
it before acting. The journal entries of one batch of input (one read from
one connection, or one timer) are written to the file before any reply or
event of that batch leaves the process, so nothing a client was told
survives less than the journal; the core's next deadline is kept in one
asyncio timer. Every ``snapshot_every`` entries, between batches, the whole
state is saved and a new journal segment begun (:mod:`agner.journal`), so a
start restores the newest snapshot and replays only what follows it.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import collections
import contextlib
import gc
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from agner.center import Center, Identity, Interaction, Refused
from agner.config import ServerConfig
from agner.journal import Entry, Journal, write_snapshot
from agner.protocol import (
    PROTOCOL_VERSION,
    AgentStatus,
    Arrived,
    ClientMessage,
    Error,
    Hello,
    Intraday,
    IntradayInterval,
    IntradayQueue,
    IntradayReport,
    Offer,
    Ok,
    Ping,
    Pong,
    QueryContact,
    SaveLead,
    Stats,
    Subscribe,
    Unsubscribe,
    Welcome,
)

__all__ = ["LocalSession", "Server", "parse_address", "serve"]

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_MAX_WRITE_BUFFER = 16 * 1024 * 1024  # a reader this far behind is cut off
_LIVE_QUIET_S = 10.0  # a live subscription hears at least this often
_WEB = Path(__file__).resolve().parent / "web"  # the browser pages (package data)
_PAGES = {"/desktop": "desktop.html", "/wallboard": "wallboard.html"}
_WEB_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


def parse_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:7000' -> ('127.0.0.1', 7000)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


class Session(abc.ABC):
    """One connection's state: who it is, its rate bucket, its subscription, and
    the inputs held back while a CRM look-up for its arrival runs."""

    def __init__(self, server: Server, peer: str) -> None:
        self.server = server
        self.peer = peer
        self.ident: Identity | None = None
        self.switch = False
        self.tokens = float(server.cfg.server.burst)
        self.stamp = time.monotonic()
        self.stats_task: asyncio.Task[None] | None = None
        self.closed = False
        self.backlog: collections.deque[ClientMessage] | None = None
        self.wake: asyncio.Event | None = None  # set: a live subscription has news
        self.leads: set[int] = set()  # the leads of the screen pops sent to a desktop

    @abc.abstractmethod
    def send(self, msg: Any) -> None:
        """Write one server message to the connection."""

    def allow(self) -> bool:
        """Token bucket: ``rate_per_s`` messages per second, ``burst`` at once."""
        opts = self.server.cfg.server
        t = time.monotonic()
        self.tokens = min(float(opts.burst), self.tokens + (t - self.stamp) * opts.rate_per_s)
        self.stamp = t
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def close_session(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.stats_task is not None:
            self.stats_task.cancel()
        if self.ident is not None:
            self.server.center.detach(self.ident, self)
        self.server.sessions.discard(self)
        self.server.live_subs.discard(self)


class Server:
    """The server's state: the center, its journal and the connections."""

    def __init__(self, cfg: ServerConfig, data_dir: Path, *, store_url: str | None = None) -> None:
        from agner.center import fingerprint

        self.cfg = cfg
        self.data_dir = data_dir
        self.center = Center(cfg)
        self.sessions: set[Session] = set()
        self.live_subs: set[Session] = set()  # sessions with a live subscription
        self.dirty: set[int] = set()  # tenants whose queues or agents changed
        self.last_now = 0
        self.pending: list[bytes] = []
        self.fingerprint = fingerprint(cfg)
        self.restored = 0  # the entries the snapshot started from covers

        def restore(entries: int, payload: bytes) -> None:
            state = _snapshot_decoder.decode(payload)
            if state.entries != entries:
                raise ValueError(f"it says it covers {state.entries} entries")
            self.center = Center.restore(cfg, state.center)
            self.last_now = state.last_now
            self.restored = entries

        t0 = time.perf_counter()
        self.journal, _, entries = Journal.recover(
            data_dir, self.fingerprint, cfg.server.fsync, restore, _log
        )
        self.center.journal = self._journal_entry
        for e in entries:
            self.center.replay(e.now, Identity(e.tenant, e.agent), e.msg)
            self.last_now = max(self.last_now, e.now)
        self.replayed = len(entries)
        self.recovery_s = time.perf_counter() - t0  # reading, restoring and replaying
        # A snapshot is written in a thread while new entries go to a new segment.
        self.snapshotting: asyncio.Future[Any] | None = None
        self.snapshots = 0
        # Records handed to the store's thread and not yet written, oldest batch
        # first: a snapshot keeps them, so a crash before the write loses none.
        self.unstored: collections.deque[list[Interaction]] = collections.deque()
        self.unstored_lock = threading.Lock()
        self.store = _open_store(store_url, data_dir)
        self.store_errors = 0
        # One worker thread: store calls and interaction records never stall
        # routing, and records keep their order.
        # It runs at the priority of [server] background_priority ("low" by
        # default: nice 19, a small share of the CPU while the loop has work).
        self.worker = ThreadPoolExecutor(
            1,
            thread_name_prefix="agner-store",
            initializer=_background,
            initargs=(cfg.server.background_priority,),
        )
        # Look-ups have their own thread: an arrival never waits behind a batch of records.
        self.lookups = ThreadPoolExecutor(1, thread_name_prefix="agner-lookup")
        self.snapshot_thread = ThreadPoolExecutor(
            1,
            thread_name_prefix="agner-snapshot",
            initializer=_background,
            initargs=(cfg.server.background_priority,),
        )
        self.snapshot_errors = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: int | None = None
        # Per desktop, what waits behind a screen pop being read, to keep the order.
        self.held: dict[Any, collections.deque[Any]] = {}
        self.batching = False
        self.touched: list[TcpSession] = []
        self.started = time.time()
        self.errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # The records of the snapshot and of the replay: those the store has
        # already are not written twice (keyed by call id and arrival).
        self.write_records()

    # ------------------------------------------------------------ the clock

    def now(self) -> int:
        """Wall-clock microseconds, never smaller than a time already used."""
        t = time.time_ns() // 1000
        if t < self.last_now:
            t = self.last_now
        self.last_now = t
        return t

    # ------------------------------------------------------------ input path

    def _journal_entry(self, now: int, ident: Identity, msg: Any) -> None:
        self.dirty.add(ident.tenant)
        self.pending.append(Journal.encode(Entry(now, ident.tenant, ident.agent, msg)))

    def reply(self, session: Session, msg: Any) -> None:
        """Queue a reply behind the events of the inputs before it: everything
        leaves at the next flush, after the journal write."""
        self.center.outbox.append((session, msg))

    def handle(self, session: Session, msg: ClientMessage) -> None:
        """One decoded message of a session; replies go out at the next flush."""
        if session.backlog is not None:  # in order, behind an arrival being looked up
            session.backlog.append(msg)
            return
        self._handle(session, msg)

    def _handle(self, session: Session, msg: ClientMessage) -> None:
        if not session.allow():
            self.reply(session, Error("rate_limited", "too many messages; slow down", msg.ref))
            return
        if session.ident is None:
            if not isinstance(msg, Hello):
                self.reply(session, Error("unauthorized", "send hello with a token first", msg.ref))
                return
            self._hello(session, msg)
            return
        kind = type(msg)
        if kind not in _SESSION_MESSAGES:  # the common case: an input for the center
            if isinstance(msg, Arrived) and msg.customer:
                self._look_up(session, msg)
            else:
                self._apply(session, msg)
            return
        if isinstance(msg, Ping):
            self.reply(session, Pong(self.now(), msg.ref))
            return
        if isinstance(msg, Hello):
            self.reply(session, Error("bad_message", "already authenticated", msg.ref))
            return
        if isinstance(msg, Subscribe | Unsubscribe):
            self._subscribe(session, msg)
            return
        if isinstance(msg, QueryContact):
            if session.ident.agent >= 0:
                self.reply(session, Error("forbidden", "queries are for services", msg.ref))
                return
            try:
                status = self.center.contact_status(session.ident, msg.call_id, self.now())
            except Refused as exc:
                self.reply(session, Error(exc.code, exc.message, msg.ref))
                return
            self.reply(session, msgspec.structs.replace(status, ref=msg.ref))
            return
        if isinstance(msg, SaveLead):
            self._save_lead(session, msg)
            return
        assert isinstance(msg, Intraday)
        self._intraday(session, msg)

    def _apply(self, session: Session, msg: ClientMessage) -> None:
        assert session.ident is not None
        try:
            call_id = self.center.apply(session.ident, msg, self.now())
        except Refused as exc:
            self.errors += 1
            self.reply(session, Error(exc.code, exc.message, msg.ref))
            return
        except Exception as exc:  # a bug: say so, keep the connection and the server
            self.errors += 1
            print(f"agner serve: internal error on {msg!r}: {exc!r}", file=sys.stderr)
            self.reply(session, Error("internal", f"{type(exc).__name__}: {exc}", msg.ref))
            return
        if msg.ref:
            self.reply(session, Ok(msg.ref, call_id))

    def _look_up(self, session: Session, msg: Arrived) -> None:
        """Ask the CRM store for the caller's routing hints, then apply the arrival
        with them. The embedded SQLite store answers in tens of microseconds, less
        than a hand-off to a thread costs, so it is asked here; a store across the
        network is asked in a worker thread, and the session's later inputs wait
        behind the arrival so that their order is kept."""
        assert session.ident is not None and msg.customer is not None
        ident = session.ident
        tenant = self.center.tenants[ident.tenant]
        if self.store.backend == "sqlite":
            try:
                hints = self.store.lookup(tenant, msg.customer)
            except Exception:  # routed without hints, as when the thread's look-up fails
                self.store_errors += 1
                hints = None
            self._apply(session, self.center.with_hints(ident, msg, hints))
            return
        session.backlog = collections.deque()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.lookups, self.store.lookup, tenant, msg.customer)

        def done(f: asyncio.Future[Any]) -> None:
            hints = None
            if f.exception() is not None:
                self.store_errors += 1
            else:
                hints = f.result()
            self._apply(session, self.center.with_hints(ident, msg, hints))
            backlog, session.backlog = session.backlog, None
            while backlog:
                if session.backlog is not None:  # another look-up began: keep the order
                    session.backlog.extend(backlog)
                    break
                self._handle(session, backlog.popleft())
            self.flush()

        fut.add_done_callback(done)

    def _hello(self, session: Session, msg: Hello) -> None:
        if msg.version != PROTOCOL_VERSION:
            self.reply(
                session, Error("version", f"this server speaks version {PROTOCOL_VERSION}", msg.ref)
            )
            return
        found = None
        given = msg.token.encode()
        for token, who in self.center.tokens.items():
            if hmac.compare_digest(token.encode(), given):
                found = who
        if found is None:
            self.reply(session, Error("unauthorized", "unknown token", msg.ref))
            return
        tenant, agent = found
        if msg.switch and agent >= 0:
            self.reply(session, Error("forbidden", "an agent's desktop is not a switch", msg.ref))
            return
        session.ident = Identity(tenant, agent)
        session.switch = msg.switch
        self.center.attach(session.ident, session, msg.switch)
        self.reply(
            session,
            Welcome(
                PROTOCOL_VERSION,
                self.center.tenants[tenant],
                None if agent < 0 else self.center.ids.agents[agent],
                self.now(),
                msg.ref,
            ),
        )
        if agent >= 0:
            self._restore_desktop(session, agent)

    def _restore_desktop(self, session: Session, agent: int) -> None:
        """After a desktop's welcome: where its agent stands (agent_status), its
        contact with the screen pop, so a reloaded page or a second tab shows
        what the agent sees elsewhere."""
        status = self.center.agent_status(agent, self.now())
        self.center.desk_seen[agent] = status
        self.reply(session, _WithPop(status))

    def _subscribe(self, session: Session, msg: Subscribe | Unsubscribe) -> None:
        assert session.ident is not None
        if session.ident.agent >= 0:
            self.reply(session, Error("forbidden", "statistics are for service sessions", msg.ref))
            return
        if session.stats_task is not None:
            session.stats_task.cancel()
            session.stats_task = None
        self.live_subs.discard(session)
        if isinstance(msg, Subscribe):
            if not 100 <= msg.interval_ms <= 3_600_000:
                self.reply(session, Error("bad_message", "interval_ms in [100, 3600000]", msg.ref))
                return
            for name in msg.queues or ():
                qid = self.center.ids.queue_id.get(name, -1)
                if qid < 0 or self.center.queue_tenant[qid] != session.ident.tenant:
                    self.reply(session, Error("unknown", f"no queue {name!r}", msg.ref))
                    return
            if msg.live:
                session.wake = asyncio.Event()
                self.live_subs.add(session)
            session.stats_task = asyncio.ensure_future(self._stats_loop(session, msg))
        if msg.ref:
            self.reply(session, Ok(msg.ref))

    async def _stats_loop(self, session: Session, msg: Subscribe) -> None:
        """Every interval; or, live, after each change (flush sets ``wake``), at
        most one per interval and at least one per ``_LIVE_QUIET_S``."""
        assert session.ident is not None
        tenant = session.ident.tenant
        wake = session.wake if msg.live else None
        while not session.closed:
            now = self.now()
            queues = [
                msgspec.structs.replace(q, waiting_calls=[])
                for q in self.center.queue_snapshots(tenant, now, msg.queues)
            ]
            agents = self.center.agent_counts(tenant) if msg.agents else None
            session.send(Stats(now, queues, agents))
            await asyncio.sleep(msg.interval_ms / 1000)
            if wake is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), _LIVE_QUIET_S)
                wake.clear()

    def _save_lead(self, session: Session, msg: SaveLead) -> None:
        """The new-lead form to the CRM store (worker thread); replied when stored."""
        assert session.ident is not None
        if session.ident.agent >= 0 and msg.lead_id not in session.leads:
            self.reply(
                session, Error("forbidden", "a desktop saves only its callers' leads", msg.ref)
            )
            return
        tenant = self.center.tenants[session.ident.tenant]
        store = self.store

        def save() -> None:
            store.update_lead(tenant, msg.lead_id, name=msg.name, notes=msg.notes)
            if msg.convert:
                store.convert_lead(
                    tenant,
                    msg.lead_id,
                    name=msg.name,
                    phones=[msg.phone] if msg.phone else [],
                    emails=[msg.email] if msg.email else [],
                    tier=msg.tier or None,
                    language=msg.language or None,
                )

        self._in_store(session, msg.ref, save, lambda _: Ok(msg.ref))

    def _intraday(self, session: Session, msg: Intraday) -> None:
        """Service level per interval of the tenant's queues, from the CRM store's
        records (a report per distinct threshold T, in the worker thread)."""
        assert session.ident is not None
        if session.ident.agent >= 0:
            self.reply(session, Error("forbidden", "reports are for service sessions", msg.ref))
            return
        tenant = self.center.tenants[session.ident.tenant]
        queues = [
            (name, self.cfg.queues[qid].service_level)
            for qid, name in enumerate(self.center.ids.queues)
            if self.center.queue_tenant[qid] == session.ident.tenant
        ]
        now = self.now()
        since = msg.since_us if msg.since_us is not None else now - now % 86_400_000_000
        store = self.store

        def report() -> list[IntradayQueue]:
            rows: dict[str, list[IntradayInterval]] = {}
            for t in sorted({sl.threshold_s for _, sl in queues}):
                rep = store.report(
                    tenant, interval_s=msg.interval_s, threshold_s=t, start_us=since, agents=False
                )
                for r in rep.rows:
                    if r.scope == "queue" and any(
                        n == r.name and sl.threshold_s == t for n, sl in queues
                    ):
                        rows.setdefault(r.name, []).append(
                            IntradayInterval(
                                r.interval_start_us,
                                r.offered,
                                r.answered,
                                r.abandoned,
                                r.service_level_offered,
                            )
                        )
            return [
                IntradayQueue(name, sl.threshold_s, sl.target, rows.get(name, []))
                for name, sl in queues
            ]

        self._in_store(
            session,
            msg.ref,
            report,
            lambda qs: IntradayReport(msg.interval_s, since, qs, msg.ref),
        )

    def _in_store(
        self, session: Session, ref: int, call: Callable[[], Any], answer: Callable[[Any], Any]
    ) -> None:
        """Run a store call in the worker thread; reply with `answer` of its result,
        or with the store's error (InvalidInput: bad_message, NotFound: unknown,
        Conflict: invalid_state)."""
        from agner.crm import Conflict, CrmError, InvalidInput, NotFound

        fut = asyncio.get_running_loop().run_in_executor(self.worker, call)

        def done(f: asyncio.Future[Any]) -> None:
            exc = f.exception()
            if exc is None:
                self.reply(session, answer(f.result()))
            elif isinstance(exc, CrmError):
                code = {InvalidInput: "bad_message", NotFound: "unknown", Conflict: "invalid_state"}
                self.reply(session, Error(code.get(type(exc), "invalid_state"), str(exc), ref))
            else:
                self.store_errors += 1
                self.reply(session, Error("internal", f"the CRM store: {exc!r}", ref))
            self.flush()

        fut.add_done_callback(done)

    def flush(self) -> None:
        """End of a batch: journal to disk, then replies and events, then the timer."""
        if self.dirty:
            for session in self.live_subs:
                if session.ident is not None and session.ident.tenant in self.dirty:
                    assert session.wake is not None
                    session.wake.set()
            self.dirty.clear()
        if self.pending:
            self.journal.append(self.pending)
            self.pending = []
            every = self.cfg.server.snapshot_every
            if every and self.journal.entries - self.journal.start >= every:
                self.snapshot()
        center = self.center
        if center.outbox:
            out, center.outbox = center.outbox, []
            self.batching = True  # TCP sessions gather their frames: one write each
            try:
                for sink, msg in out:
                    self._deliver(sink, msg)
            finally:
                self.batching = False
                touched, self.touched = self.touched, []
                for session in touched:
                    session.write_out()
        if len(center.records) >= 1000:
            self.write_records()
        self._schedule()

    def write_records(self) -> None:
        """Hand the interaction records gathered so far to the worker thread: in
        batches (every ``records_interval_ms``, or 1000 records), one store
        transaction each."""
        if self.center.records:
            records, self.center.records = self.center.records, []
            with self.unstored_lock:
                self.unstored.append(records)
            self.worker.submit(self._write_records, records)

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> None:
        """Save the whole state (called between batches, with the journal written):
        encode it here, start a new journal segment, and write the snapshot
        file in a thread; until it is durable the previous snapshot and the
        segments after it stay. At most one is written at a time."""
        if self.snapshotting is not None:
            return
        with self.unstored_lock:
            unstored = [r for batch in self.unstored for r in batch]
        entries = self.journal.entries
        state = _SnapshotState(entries, self.last_now, self.center.dump(unstored))
        payload = _snapshot_encoder.encode(state)
        old = self.journal.rotate(self.fingerprint)
        opts = self.cfg.server

        def write() -> None:
            try:
                os.fsync(old)  # the segment this snapshot ends, before it is needed no more
            finally:
                os.close(old)
            write_snapshot(self.data_dir, entries, self.fingerprint, payload, opts.keep_snapshots)

        loop = asyncio.get_running_loop()
        self.snapshotting = fut = loop.run_in_executor(self.snapshot_thread, write)

        def done(f: asyncio.Future[Any]) -> None:
            self.snapshotting = None
            exc = f.exception()
            if exc is not None:  # the journal still has everything: say so, go on
                self.snapshot_errors += 1
                _log(f"agner serve: snapshot at entry {entries} failed: {exc!r}")
            else:
                self.snapshots += 1

        fut.add_done_callback(done)

    # ------------------------------------------------------------ timers

    def _schedule(self) -> None:
        at = self.center.router.next_deadline()
        # A timer set for earlier than the deadline stays: firing early costs one
        # call to advance, which sets it again, while moving it costs a new timer
        # on nearly every batch (each answered offer moves the earliest ring
        # timeout later).
        if self.timer_at is not None and (at is None or self.timer_at <= at):
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_at = at
        if at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at - time.time_ns() // 1000) / 1e6)
        self.timer = loop.call_at(loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self.timer = None
        self.timer_at = None
        self.dirty.update(range(len(self.center.tenants)))  # a timer may move any tenant
        self.center.advance(self.now())
        self.flush()

    # ------------------------------------------------------------ the store

    def _deliver(self, sink: Any, msg: Any) -> None:
        """One message of the outbox to its session, in order: an offer (or a
        desktop's restored agent_status) waits for its screen pop, and what
        follows it to the same session waits behind it."""
        held = self.held.get(sink)
        if held is not None:
            held.append(msg)
        elif isinstance(msg, Offer) and msg.customer:
            self._screen_pop(sink, msg, msg.customer)
        elif isinstance(msg, _WithPop):
            contact = msg.status.contact
            if contact is not None and contact.customer:
                self._screen_pop(sink, msg.status, contact.customer)
            else:
                sink.send(msg.status)
        else:
            sink.send(msg)

    def _screen_pop(self, sink: Any, msg: Offer | AgentStatus, customer: str) -> None:
        """Send the offer (or agent_status) once the store has the customer's
        screen (worker thread); the session's later messages wait until then."""
        store = self.store
        tenant = self.center.tenants[sink.ident.tenant]
        loop = asyncio.get_running_loop()
        self.held[sink] = collections.deque()
        fut = loop.run_in_executor(self.worker, store.screen_pop, tenant, customer)

        def done(f: asyncio.Future[Any]) -> None:
            out: Any = msg  # if the store fails, the desktop still rings, without the record
            if f.exception() is not None:
                self.store_errors += 1
            else:
                pop = f.result()
                lead = pop.form.lead_id if pop.form is not None else None
                if lead is not None:
                    sink.leads.add(lead)  # this desktop may now save that lead
                fields = {
                    "screen_pop": msgspec.to_builtins(pop),
                    "new_lead": pop.kind == "new_lead",
                }
                if isinstance(msg, Offer):
                    out = msgspec.structs.replace(msg, **fields)
                elif msg.contact is not None:
                    contact = msgspec.structs.replace(msg.contact, **fields)
                    out = msgspec.structs.replace(msg, contact=contact)
            sink.send(out)
            for later in self.held.pop(sink, ()):
                self._deliver(sink, later)

        fut.add_done_callback(done)

    def _write_records(self, records: list[Interaction]) -> None:
        """Interaction records to the CRM store (in the worker thread). A record the
        store refuses (say, a caller that is no valid number) is stored without
        the caller; one refused even so is counted and reported."""
        try:
            self._store_records(records)
        finally:
            with self.unstored_lock:
                self.unstored.popleft()  # batches are written in order, by one thread

    def _store_records(self, records: list[Interaction]) -> None:
        from agner.crm import CrmError, InvalidInput
        from agner.crm.validate import interaction

        def without_bad_caller(rec: Any) -> Any:
            try:
                interaction(rec, self.store.options)
            except InvalidInput:
                return msgspec.structs.replace(rec, caller=None, called=None)
            return rec

        by_tenant: dict[str, list[Any]] = {}
        for r in records:
            by_tenant.setdefault(r.tenant, []).append(_crm_interaction(r))
        for tenant, recs in by_tenant.items():
            try:
                self.store.record_interactions(tenant, recs)
                continue
            except CrmError:
                pass
            # Those the store's checks refuse go without the caller, the batch
            # still in one transaction: callers that are no valid number are
            # common (a SIP From user), and a transaction each kept this
            # thread, and so the GIL, busy enough to delay the event loop.
            try:
                self.store.record_interactions(tenant, [without_bad_caller(r) for r in recs])
                continue
            except CrmError:
                pass
            for rec in recs:
                try:
                    self.store.record_interaction(tenant, rec)
                except CrmError:
                    try:
                        self.store.record_interaction(
                            tenant, msgspec.structs.replace(rec, caller=None, called=None)
                        )
                    except CrmError as exc:
                        self.store_errors += 1
                        print(f"agner serve: interaction {rec.ref}: {exc}", file=sys.stderr)

    # ------------------------------------------------------------ snapshots

    def http_get(self, path: str, token: str | None) -> tuple[int, str, bytes]:
        """(status, content type, body) of an HTTP GET."""
        who = None
        if token is not None:
            for t, ident in self.center.tokens.items():
                if hmac.compare_digest(t.encode(), token.encode()):
                    who = ident
        if path == "/healthz":
            body = {
                "status": "ok",
                "inputs": self.center.inputs,
                "snapshot": self.restored,
                "replayed": self.replayed,
                "snapshots": self.snapshots,
                "writing_snapshot": self.snapshotting is not None,
            }
            return 200, "application/json", json.dumps(body).encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", self._metrics(who).encode()
        if path in _PAGES or path.startswith("/web/"):
            return _web_file(_PAGES.get(path) or path[len("/web/") :])
        if path in ("/v1/queues", "/v1/agents"):
            if who is None:
                return 401, "application/json", b'{"error":"unauthorized"}'
            if who[1] >= 0:
                return 403, "application/json", b'{"error":"forbidden"}'
            now = self.now()
            if path == "/v1/queues":
                data: Any = self.center.queue_snapshots(who[0], now)
            else:
                data = self.center.agent_snapshots(who[0], now)
            key = path.rsplit("/", 1)[1]
            return 200, "application/json", msgspec.json.encode({key: data})
        return 404, "application/json", b'{"error":"not found"}'

    def _metrics(self, who: tuple[int, int] | None) -> str:
        lines = [
            "# HELP agner_inputs_total Inputs accepted (journaled) since the journal began.",
            "# TYPE agner_inputs_total counter",
            f"agner_inputs_total {self.center.inputs}",
            "# HELP agner_refused_total Inputs refused with an error reply.",
            "# TYPE agner_refused_total counter",
            f"agner_refused_total {self.errors}",
            "# TYPE agner_connections gauge",
            f"agner_connections {len(self.sessions)}",
            "# HELP agner_journal_entries Entries journaled since the journal began.",
            "# TYPE agner_journal_entries counter",
            f"agner_journal_entries {self.journal.entries}",
            "# HELP agner_snapshots_total Snapshots written since start (failed: errors).",
            "# TYPE agner_snapshots_total counter",
            f"agner_snapshots_total {self.snapshots}",
            "# TYPE agner_snapshot_errors_total counter",
            f"agner_snapshot_errors_total {self.snapshot_errors}",
            "# TYPE agner_live_contacts gauge",
            f"agner_live_contacts {len(self.center.live)}",
        ]
        if who is not None and who[1] < 0:
            tenant = self.center.tenants[who[0]]
            lines += [
                "# TYPE agner_queue_waiting gauge",
                "# TYPE agner_queue_offered_total counter",
                "# TYPE agner_queue_answered_total counter",
                "# TYPE agner_queue_abandoned_total counter",
            ]
            for q in self.center.queue_snapshots(who[0], self.now()):
                lab = f'{{tenant="{tenant}",queue="{q.name}"}}'
                lines += [
                    f"agner_queue_waiting{lab} {q.waiting}",
                    f"agner_queue_offered_total{lab} {q.offered}",
                    f"agner_queue_answered_total{lab} {q.answered}",
                    f"agner_queue_abandoned_total{lab} {q.abandoned}",
                ]
        return "\n".join(lines) + "\n"

    async def records_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.server.records_interval_ms / 1000)
            self.write_records()

    async def sync_loop(self) -> None:
        """fsync the journal every ``fsync_interval_ms`` (policy ``interval``)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cfg.server.fsync_interval_ms / 1000)
            if self.journal.dirty:
                self.journal.dirty = False
                await loop.run_in_executor(None, self.journal.sync_now)

    def close(self) -> None:
        self.write_records()
        if self.pending:
            self.journal.append(self.pending)
            self.pending = []
        self.snapshot_thread.shutdown(wait=True)  # a snapshot being written ends first
        self.journal.close()
        self.lookups.shutdown(wait=True)
        self.worker.shutdown(wait=True)
        self.store.close()


class _WithPop(NamedTuple):
    """In the outbox: a desktop's agent_status to send with its contact's screen pop."""

    status: AgentStatus


class _SnapshotState(msgspec.Struct, array_like=True):
    """A snapshot's payload: the entries it covers, the clock, the center."""

    entries: int
    last_now: int
    center: bytes


_snapshot_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(_SnapshotState)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_web_cache: dict[str, tuple[int, str, bytes]] = {}

# The messages a session handles itself, never the center's inputs.
_SESSION_MESSAGES = frozenset(
    {Ping, Hello, Subscribe, Unsubscribe, QueryContact, SaveLead, Intraday}
)


def _web_file(name: str) -> tuple[int, str, bytes]:
    """A file of the browser pages (read once; the pages take their token in the
    page, never in the URL, so they are served to anyone)."""
    hit = _web_cache.get(name)
    if hit is not None:
        return hit
    ctype = _WEB_TYPES.get(Path(name).suffix)
    path = _WEB / name
    if ctype is None or "/" in name or name.startswith(".") or not path.is_file():
        return 404, "application/json", b'{"error":"not found"}'
    hit = _web_cache[name] = (200, ctype, path.read_bytes())
    return hit


def _open_store(url: str | None, data_dir: Path) -> Any:
    """The CRM store at `url`; by default a SQLite file ``crm.db`` under the data
    directory."""
    from agner.crm import open_store

    if url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(data_dir / 'crm.db').resolve()}"
    return open_store(url)


def _background(priority: str) -> None:
    """Lower the calling thread's CPU priority (Linux; elsewhere it stays as it is).

    "low": nice 19, a small share of a busy CPU (it still progresses when the
    machine is saturated); "idle": SCHED_IDLE, the thread runs only when its
    CPU has nothing else to do (a saturated machine can starve it);
    "normal": unchanged. Background threads at the
    event loop's priority (the interaction records: about 20 us of CPU each)
    held up routing decisions by a millisecond or more (docs/BENCHMARKS.md).
    """
    try:
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif priority in ("idle", "low") and hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError as exc:  # not allowed here: run as the loop does
        _log(f"agner serve: background threads at normal priority: {exc}")


def _crm_interaction(r: Interaction) -> Any:
    """The center's record as the CRM store's :class:`agner.crm.Interaction`."""
    from agner.crm import Interaction as CrmInteraction

    return CrmInteraction(
        arrived_us=r.arrived_us,
        ended_us=r.ended_us,
        outcome=_OUTCOMES[r.outcome],  # type: ignore[arg-type]
        channel=r.channel,  # type: ignore[arg-type]
        ref=f"{r.call_id}@{r.arrived_us}",  # call ids come back (transfers, reuse)
        caller=r.customer,
        called=r.dialed,
        queue=r.queue,
        agent=r.agent,
        answered_us=r.answered_us,
        disposition=r.disposition,
        satisfaction=r.satisfaction,
        notes=r.notes or _NOTES.get(r.outcome, "").format(queue=r.queue) or None,
    )


# The center's outcomes as the CRM store's.
_OUTCOMES = {
    "completed": "answered",
    "transferred": "answered",
    "abandoned": "abandoned",
    "voicemail": "overflowed",
    "rejected": "rejected",
    "timed_out": "timed_out",
}
_NOTES = {"transferred": "transferred from {queue}", "voicemail": "sent to voicemail"}


# ---------------------------------------------------------------- TCP


_decoder = msgspec.msgpack.Decoder(ClientMessage)
_encoder = msgspec.msgpack.Encoder()


class TcpSession(Session, asyncio.Protocol):
    """Length-prefixed MessagePack frames."""

    def __init__(self, server: Server) -> None:
        Session.__init__(self, server, "")
        self.buf = bytearray()
        self.skip = 0  # bytes of an oversized frame still to discard
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []  # frames gathered during a flush

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.peer = str(transport.get_extra_info("peername"))
        self.server.sessions.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close_session()

    def send(self, msg: Any) -> None:
        if self.transport is None or self.closed:
            return
        body = _encoder.encode(msg)
        if not self.out:
            if not self.server.batching:
                self.out.append(len(body).to_bytes(4, "big") + body)
                self.write_out()
                return
            self.server.touched.append(self)
        self.out.append(len(body).to_bytes(4, "big") + body)

    def write_out(self) -> None:
        t = self.transport
        if t is None or self.closed or not self.out:
            self.out.clear()
            return
        t.write(b"".join(self.out))
        self.out.clear()
        if t.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            t.abort()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        buf += data
        limit = self.server.cfg.server.max_message_bytes
        pos = 0
        end = len(buf)
        server = self.server
        while end - pos >= 4:
            n = int.from_bytes(buf[pos : pos + 4], "big")
            if n > limit:
                self.server.reply(self, Error("too_large", f"a message is at most {limit} bytes"))
                have = end - pos - 4
                if have >= n:
                    pos += 4 + n
                    continue
                self.skip = n - have
                pos = end
                break
            if end - pos - 4 < n:
                break
            frame = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            try:
                msg = _decoder.decode(frame)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                server.reply(self, Error("bad_message", str(exc)[:200]))
                continue
            server.handle(self, msg)
        del buf[:pos]
        server.flush()


class LocalSession(TcpSession):
    """The switch session of an adapter running in the server's own event loop
    (``[[adapters]]``, :class:`agner.adapters.link.LocalLink`): the adapter's
    frames go through :meth:`TcpSession.data_received` (the same checks,
    one batch and one flush per call) without a socket, and the server's
    messages go to ``deliver`` as they are, without being encoded."""

    def __init__(self, server: Server, deliver: Callable[[Any], None]) -> None:
        super().__init__(server)
        self.deliver = deliver
        self.peer = "in-process adapter"
        server.sessions.add(self)

    def send(self, msg: Any) -> None:
        if not self.closed:
            self.deliver(msg)


# ---------------------------------------------------------------- HTTP + WebSocket


class WsSession(Session):
    """JSON text frames over a WebSocket."""

    def __init__(self, server: Server, writer: asyncio.StreamWriter) -> None:
        super().__init__(server, str(writer.get_extra_info("peername")))
        self.writer = writer

    def send(self, msg: Any) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(_ws_frame(0x1, msgspec.json.encode(msg)))
        if self.writer.transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            self.writer.transport.abort()


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


_json_decoder = msgspec.json.Decoder(ClientMessage)


async def _ws_loop(server: Server, reader: asyncio.StreamReader, session: WsSession) -> None:
    limit = server.cfg.server.max_message_bytes
    message = bytearray()
    msg_opcode = 0
    while True:
        b0, b1 = await reader.readexactly(2)
        fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        if not masked:  # RFC 6455 5.1: a client frame must be masked
            session.writer.write(_ws_frame(0x8, (1002).to_bytes(2, "big")))
            return
        key = await reader.readexactly(4)
        if n > limit or len(message) + n > limit:
            # Too large: read past it (bounded by what the client sends) and say so.
            left = n
            while left:
                chunk = await reader.read(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
            server.reply(session, Error("too_large", f"a message is at most {limit} bytes"))
            message.clear()
            server.flush()
            continue
        data = bytearray(await reader.readexactly(n))
        _unmask(data, key)
        if opcode == 0x8:
            session.writer.write(_ws_frame(0x8, bytes(data[:2])))
            return
        if opcode == 0x9:
            session.writer.write(_ws_frame(0xA, bytes(data)))
            continue
        if opcode == 0xA:
            continue
        if opcode in (0x1, 0x2):
            message = data
            msg_opcode = opcode
        elif opcode == 0x0 and msg_opcode:
            message += data
        else:
            server.reply(session, Error("bad_frame", f"unexpected frame opcode {opcode}"))
            server.flush()
            continue
        if not fin:
            continue
        try:
            if msg_opcode == 0x1:
                msg = _json_decoder.decode(bytes(message))
            else:
                msg = _decoder.decode(bytes(message))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            server.reply(session, Error("bad_message", str(exc)[:200]))
        else:
            server.handle(session, msg)
        message = bytearray()
        msg_opcode = 0
        server.flush()


def _unmask(data: bytearray, key: bytes) -> None:
    n = len(data)
    if not n:
        return
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    data[:] = (int.from_bytes(data, "little") ^ mask).to_bytes(n, "little")


async def _http_conn(
    server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        writer.close()
        return
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    except ValueError:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        writer.close()
        return
    path = target.split("?", 1)[0]
    if path == "/v1/ws" and headers.get("upgrade", "").lower() == "websocket":
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        session = WsSession(server, writer)
        server.sessions.add(session)
        try:
            await _ws_loop(server, reader, session)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            session.close_session()
            writer.close()
        return
    if method != "GET":
        status, ctype, body = 405, "application/json", b'{"error":"GET only"}'
    else:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        status, ctype, body = server.http_get(path, token)
    reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(
        status, "Method Not Allowed"
    )
    extra = ""
    if ctype.startswith("text/html"):  # the pages: their own scripts only, never framed
        extra = (
            "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
            "frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n"
            "Cache-Control: no-cache\r\n"
        )
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


# ---------------------------------------------------------------- main


async def serve(
    cfg: ServerConfig,
    *,
    http: str | None,
    tcp: str | None,
    data_dir: Path,
    store_url: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the server until SIGINT or SIGTERM."""
    server = Server(cfg, data_dir, store_url=store_url)
    loop = asyncio.get_running_loop()
    # Before the addresses are announced: a SIGTERM right after them stops cleanly.
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    announce(
        f"agner serve: {len(server.center.ids.queues)} queues, "
        f"{len(server.center.ids.agents)} agents, {len(server.center.tenants)} tenants; "
        f"journal {server.journal.path.parent} (snapshot at entry {server.restored}, "
        f"{server.replayed} entries replayed, {server.recovery_s:.2f} s)"
    )
    # Its adapters' sessions open before the addresses are announced.
    adapters = await _start_adapters(server, announce)
    listeners: list[asyncio.base_events.Server] = []
    if tcp is not None:
        host, port = parse_address(tcp)
        srv = await loop.create_server(lambda: TcpSession(server), host, port)
        listeners.append(srv)
        announce(f"tcp {_bound(srv)}")
    if http is not None:
        host, port = parse_address(http)
        srv = await asyncio.start_server(
            lambda r, w: _http_conn(server, r, w), host, port, limit=16384
        )
        listeners.append(srv)
        announce(f"http {_bound(srv)}")
    server.flush()  # the timer for what the replay left pending
    # What exists now (the center, its agents and queues) lives as long as the
    # server: keep it out of the garbage collector's full passes, which would
    # otherwise stall the loop for tens of milliseconds with 10,000s of agents.
    gc.collect()
    gc.freeze()
    # The store's worker thread runs Python code too; a short GIL switch interval
    # lets the event loop take the GIL back within 0.2 ms rather than 5 ms.
    sys.setswitchinterval(0.0002)
    recorder = asyncio.ensure_future(server.records_loop())
    syncer = asyncio.ensure_future(server.sync_loop()) if cfg.server.fsync == "interval" else None
    try:
        await stop.wait()
    finally:
        if syncer is not None:
            syncer.cancel()
        recorder.cancel()
        for srv in listeners:
            srv.close()
        for adapter in adapters:  # what they hold for agner goes in before the end
            await adapter.close()
        server.close()


async def _start_adapters(server: Server, announce: Callable[[str], None]) -> list[Any]:
    """The adapters of the configuration's ``[[adapters]]`` tables, in this event
    loop, each with its switch session open (the token is checked as for any
    session); the switch's side connects and reconnects on its own."""
    if not server.cfg.adapters:
        return []
    from agner.adapters.kamailio import KamailioAdapter

    started: list[Any] = []
    for i, spec in enumerate(server.cfg.adapters):
        settings = msgspec.structs.asdict(spec)  # the adapter's keywords, and switch
        del settings["switch"]
        adapter = KamailioAdapter(server=server, **settings)
        started.append(adapter)
        await adapter.start()
        try:
            await adapter.link.wait_up(10.0)
        except (PermissionError, TimeoutError) as exc:
            for a in started:
                await a.close()
            raise RuntimeError(f"adapters[{i}] ({spec.switch}): {exc}") from None
        announce(f"adapter {spec.switch}: evapi {spec.evapi}, tenant {adapter.link.tenant}")
    return started


def _bound(srv: asyncio.base_events.Server) -> str:
    host, port = srv.sockets[0].getsockname()[:2]
    return f"{host}:{port}"


def run(
    cfg: ServerConfig,
    *,
    http: str | None,
    tcp: str | None,
    data_dir: Path,
    store_url: str | None = None,
) -> None:
    """Run :func:`serve` on uvloop (the stdlib loop if uvloop is missing)."""

    def announce(line: str) -> None:
        print(line, flush=True)

    coro = serve(cfg, http=http, tcp=tcp, data_dir=data_dir, store_url=store_url, announce=announce)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)
