"""The live center: the routing core behind the wire protocol, without I/O.

:class:`Center` takes an authenticated input (who sent it, the message, the
time) and changes the routing state; what must go out (connect to the switch,
offers to desktops, revocations, interaction records) is queued in
``outbox`` and ``records`` for the server to deliver. It does no I/O and reads
no clock, so the server's journal can replay it exactly.

Order of work for one input: checks that need no change (the sender may do
this, the names exist and belong to its tenant), then the entry goes to the
journal (``journal`` callback), then the core is called. A check that fails
raises :class:`Refused` before the journal sees the input; an input the core
refuses (``RouterError``) is journaled, fails the same way on replay, and
changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import msgspec

from agner.config import ServerConfig, build_center, requirement_of
from agner.core._api import (
    AgentState,
    Channel,
    ContactState,
    DecisionKind,
    RouterError,
)
from agner.core.router import Router
from agner.protocol import (
    Accept,
    AgentReady,
    AgentSnapshot,
    AgentStatus,
    Answered,
    Arrived,
    CallbackRequest,
    ClientMessage,
    Complete,
    Connect,
    Connected,
    ContactStatus,
    DeskContact,
    Dial,
    Diverted,
    Ended,
    HungUp,
    Login,
    Logout,
    NoAnswer,
    NotReady,
    Offer,
    QueueSnapshot,
    Ready,
    Revoked,
    Transfer,
)

__all__ = ["JOURNALED", "Center", "Identity", "Interaction", "Refused", "Sink", "fingerprint"]

_CHANNELS = {
    "voice": Channel.VOICE,
    "chat": Channel.CHAT,
    "email": Channel.EMAIL,
    "callback": Channel.CALLBACK,
}

#: The messages that change state: journaled, and replayed on restart.
JOURNALED = (
    Arrived,
    Answered,
    HungUp,
    NoAnswer,
    Transfer,
    Login,
    Logout,
    Ready,
    NotReady,
    Accept,
    Complete,
    Dial,
    CallbackRequest,
)
# A desktop's dial is its agent's click-to-dial: the contact is held for it.
_AGENT_COMMANDS = (Login, Logout, Ready, NotReady, Accept, Complete, Dial)
# Agent states by value, as the wire names them.
_STATE_NAMES = tuple(s.name.lower() for s in AgentState)
assert [s.value for s in AgentState] == list(range(len(_STATE_NAMES)))
# Decisions that end a contact in the core, and the outcome they give it.
_ENDINGS = {
    DecisionKind.VOICEMAIL: "voicemail",
    DecisionKind.REJECT: "rejected",
    DecisionKind.TIMEOUT: "timed_out",
}


class Refused(Exception):
    """An input refused before it changed anything; ``code`` as in the Error message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent an input: a tenant index, and an agent id for a desktop (-1: a service)."""

    tenant: int
    agent: int = -1


class Sink(Protocol):
    """A connection that can be sent server messages."""

    def send(self, msg: Any) -> None: ...


class Interaction(msgspec.Struct, frozen=True, gc=False):
    """The record of one contact's handling, for the CRM store (times in microseconds).

    outcome: completed, abandoned, transferred, voicemail, rejected, timed_out.
    """

    tenant: str
    call_id: str
    queue: str
    channel: str
    customer: str | None
    dialed: str | None
    agent: str | None
    arrived_us: int
    answered_us: int | None
    ended_us: int
    outcome: str
    disposition: str | None = None
    satisfaction: int | None = None
    notes: str | None = None


class _Live(msgspec.Struct, gc=False):  # no cycles: kept out of the GC's passes
    call_id: str
    tenant: int
    queue: int
    channel: str
    customer: str | None
    dialed: str | None
    data: dict[str, str]
    arrived_us: int
    seq: int
    priority: int
    explicit_priority: bool = False
    dial: str | None = None  # outbound or callback: the number the switch dials
    callback: bool = False
    line_dropped: bool = False
    answered_us: int | None = None
    ringing: list[int] = []  # agents it rings now (several with parallel offers)


class _Pending(msgspec.Struct, gc=False):
    """A contact that ended (hung up) while its agent still owes the disposition."""

    live: _Live
    agent: int
    ended_us: int
    outcome: str


class _State(msgspec.Struct, array_like=True, gc=False):
    """What a snapshot holds of a :class:`Center` besides the core: the server's
    side of every live contact (call ids, tenants, numbers, the agents it
    rings), the dispositions owed, the counters that replay continues from,
    and the interaction records not yet in the CRM store."""

    router: bytes
    seq: int
    dials: int
    inputs: int
    live: dict[int, _Live]
    pending: dict[int, _Pending]
    records: list[Interaction]


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(_State)


def fingerprint(cfg: ServerConfig) -> str:
    """A digest of everything that shapes the routing state (not the tokens, which
    may change between runs)."""
    shape = {
        "queues": cfg.queues,
        "agent_groups": cfg.agent_groups,
        "tenants": [(t.name, t.queues, t.agent_groups) for t in cfg.tenants],
        "agents": [(a.name, a.group) for a in cfg.agents],
        "seed": cfg.server.seed,
        "ring_timeout_s": cfg.server.ring_timeout_s,
        "preferred_s": cfg.server.preferred_s,
    }
    return hashlib.sha256(msgspec.msgpack.encode(shape)).hexdigest()[:32]


class Center:
    """The routing state of a server; see the module's docstring."""

    def __init__(self, cfg: ServerConfig) -> None:
        setup = build_center(cfg)
        self.cfg = cfg
        self.router = setup.router
        self.ids = setup.ids
        self.tenants = setup.tenants
        self.queue_tenant = setup.queue_tenant
        self.agent_tenant = setup.agent_tenant
        self.tokens = setup.tokens
        self.queue_skills = self._skills_by_queue()
        self.queue_weight_us = [
            1 << 40 if q.priority_weight_s is None else round(q.priority_weight_s * 1e6)
            for q in cfg.queues
        ]
        self.live: dict[int, _Live] = {}  # core contact id -> metadata
        self.by_call: list[dict[str, int]] = [{} for _ in self.tenants]  # call id -> contact
        self.pending: dict[int, _Pending] = {}  # agent -> contact awaiting disposition
        self.seq = 0
        self.dials = 0
        self.inputs = 0
        self.replaying = False
        self.journal: Callable[[int, Identity, Any], None] | None = None
        self.outbox: list[tuple[Sink, Any]] = []
        self.records: list[Interaction] = []
        self.desktops: dict[int, set[Sink]] = {}
        self.switches: list[set[Sink]] = [set() for _ in self.tenants]
        self._track_states()

    # ------------------------------------------------------------ CRM hints

    def with_hints(self, ident: Identity, msg: Arrived, hints: Any) -> Arrived:
        """The arrival with the CRM store's routing hints for a known caller: the
        tier's priority added to the queue's (unless the switch gave one), and the
        customer's language skill required when an agent who can serve the queue
        has it, and the agents who served the customer well lately preferred for
        ``preferred_s`` (unless the switch named others)."""
        if hints is None or not hints.known:
            return msg
        qid = self.ids.queue_id.get(msg.queue, -1)
        if qid < 0 or self.queue_tenant[qid] != ident.tenant:
            return msg  # apply refuses it
        priority = msg.priority
        if priority is None:
            priority = self.cfg.queues[qid].priority + int(hints.priority)
            priority = max(-1_000_000, min(1_000_000, priority))
        require = msg.require
        lang = hints.language_skill
        if lang and lang in self.queue_skills[qid] and not (require and lang in require):
            require = {**(require or {}), lang: 1}
        preferred = msg.preferred
        if preferred is None and hints.preferred_agents:
            # The agents who served this customer well lately, those the tenant has.
            ids = self.ids.agent_id
            known = [
                a
                for a in hints.preferred_agents
                if a in ids and self.agent_tenant[ids[a]] == ident.tenant
            ]
            preferred = list(dict.fromkeys(known))[:4] or None
        return msgspec.structs.replace(msg, priority=priority, require=require, preferred=preferred)

    def _skills_by_queue(self) -> list[set[str]]:
        """Per queue, the skills some agent who can serve it has."""
        cfg = self.cfg
        tenant_of_g = {g: i for i, t in enumerate(cfg.tenants) for g in t.agent_groups}
        named = {a.group for a in cfg.agents}
        out: list[set[str]] = []
        for qid, q in enumerate(cfg.queues):
            req = requirement_of(q, q.name)
            have: set[str] = set()
            for g in cfg.agent_groups:
                if (
                    (g.count > 0 or g.name in named)
                    and tenant_of_g[g.name] == self.queue_tenant[qid]
                    and all(g.skills.get(s, 0) >= lv for s, lv in req.items())
                ):
                    have |= set(g.skills)
            out.append(have)
        return out

    # ------------------------------------------------------------ sessions

    def attach(self, ident: Identity, sink: Sink, switch: bool) -> None:
        if ident.agent >= 0:
            self.desktops.setdefault(ident.agent, set()).add(sink)
        if switch:
            self.switches[ident.tenant].add(sink)

    def detach(self, ident: Identity, sink: Sink) -> None:
        desks = self.desktops.get(ident.agent)
        if desks is not None:
            desks.discard(sink)
            if not desks:
                del self.desktops[ident.agent]
                self.desk_seen.pop(ident.agent, None)
        self.switches[ident.tenant].discard(sink)

    # ------------------------------------------------------------- inputs

    def apply(self, ident: Identity, msg: ClientMessage, now: int) -> str | None:
        """Check, journal and act on one input; returns the call id for ``dial``.

        Raises:
            Refused: the sender may not do this, or a name or call id is
                unknown to its tenant; nothing was journaled, and nothing changed
                but the timers due by `now`.
        """
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise Refused("bad_message", f"{type(msg).__name__} does not change state")
        if ident.agent >= 0 and not isinstance(msg, _AGENT_COMMANDS):
            raise Refused("forbidden", "an agent's desktop may only send agent commands")
        # The core fires due timers before any call; do it here first, so that the
        # checks below see what the call will see (say, a ring timeout that expired).
        self._core(self.router.advance, now)
        self._decisions()
        try:
            result: str | None = handler(self, ident, msg, now)
        finally:
            if self.moved:
                self._settle(now)
        return result

    def replay(self, now: int, ident: Identity, msg: ClientMessage) -> None:
        """Re-apply a journaled input; its outcome was already reported once."""
        self.replaying = True
        try:
            self.apply(ident, msg, now)
        except (Refused, RouterError):
            pass
        finally:
            self.replaying = False

    def advance(self, now: int) -> None:
        """Fire the core's due timers (ring timeout, wrap-up end)."""
        self.router.advance(now)
        self._decisions()
        if self.moved:
            self._settle(now)

    # ------------------------------------------------------------ snapshots

    def dump(self, unstored: list[Interaction]) -> bytes:
        """The routing state as bytes (the core's snapshot and the server's side
        of it, :class:`_State`), with `unstored` (records handed to the store
        but not yet written) and the records not yet handed to it."""
        state = _State(
            self.router.snapshot(),
            self.seq,
            self.dials,
            self.inputs,
            self.live,
            self.pending,
            [*unstored, *self.records],
        )
        return _state_encoder.encode(state)

    @classmethod
    def restore(cls, cfg: ServerConfig, data: bytes) -> Center:
        """A center in the state :meth:`dump` saved, its unstored records in
        ``records``; names and tenants come from `cfg` (the snapshot's
        fingerprint is the caller's to check).

        Raises:
            msgspec.DecodeError: bytes that are no dump.
            agner.core._api.ConfigError: a core snapshot of another agner build.
        """
        state = _state_decoder.decode(data)
        center = cls(cfg)
        center.router = Router.restore(state.router)
        center.seq, center.dials, center.inputs = state.seq, state.dials, state.inputs
        center.live = state.live
        center.pending = state.pending
        center.records = state.records
        for c, live in state.live.items():
            center.by_call[live.tenant][live.call_id] = c
        center._track_states()  # the counts by state of the restored core
        return center

    def _log(self, ident: Identity, msg: Any, now: int) -> None:
        self.inputs += 1
        if self.journal is not None and not self.replaying:
            self.journal(now, ident, msg)

    def _agent(self, ident: Identity, name: str | None) -> int:
        """The agent an input acts on (its state may move: see :meth:`_settle`)."""
        if ident.agent >= 0:
            if name is not None and name != self.ids.agents[ident.agent]:
                raise Refused("forbidden", "an agent can act only as itself")
            self.moved.append(ident.agent)
            return ident.agent
        if name is None:
            raise Refused("bad_message", "a service session must name the agent")
        aid = self.ids.agent_id.get(name, -1)
        if aid < 0 or self.agent_tenant[aid] != ident.tenant:
            raise Refused("unknown", f"no agent {name!r}")
        self.moved.append(aid)
        return aid

    def _queue(self, ident: Identity, name: str) -> int:
        qid = self.ids.queue_id.get(name, -1)
        if qid < 0 or self.queue_tenant[qid] != ident.tenant:
            raise Refused("unknown", f"no queue {name!r}")
        return qid

    def _contact(self, ident: Identity, call_id: str) -> int:
        c = self.by_call[ident.tenant].get(call_id, -1)
        if c < 0:
            raise Refused("unknown", f"no live contact {call_id!r}")
        return c

    def _preferred(self, ident: Identity, names: list[str] | None) -> list[int] | None:
        """Agent ids of the tenant's agents named, best first (at most 4)."""
        if not names:
            return None
        if len(names) > 4 or len(set(names)) != len(names):
            raise Refused("bad_message", "at most 4 distinct preferred agents")
        out = []
        for name in names:
            aid = self.ids.agent_id.get(name, -1)
            if aid < 0 or self.agent_tenant[aid] != ident.tenant:
                raise Refused("unknown", f"no agent {name!r}")
            out.append(aid)
        return out

    def _require(self, require: dict[str, int] | None) -> dict[int, int] | None:
        if not require:
            return None
        out = {}
        for name, level in require.items():
            sid = self.ids.skills.get(name)
            if sid is None:
                raise Refused("unknown", f"no skill {name!r}")
            out[sid] = level
        return out

    def _new_contact(
        self,
        ident: Identity,
        now: int,
        call_id: str,
        qid: int,
        *,
        channel: str = "voice",
        priority: int | None = None,
        require: dict[int, int] | None = None,
        customer: str | None = None,
        dialed: str | None = None,
        data: dict[str, str] | None = None,
        dial: str | None = None,
        preferred: list[int] | None = None,
        preferred_us: int = 0,
    ) -> None:
        try:
            c = self.router.arrive(
                qid,
                now,
                priority=priority,
                channel=_CHANNELS[channel],
                require=require,
                preferred=preferred or None,
                preferred_us=preferred_us if preferred else 0,
            )
        except RouterError as exc:
            raise Refused("invalid_state", str(exc)) from None
        self.seq += 1
        prio = self.cfg.queues[qid].priority if priority is None else priority
        self.live[c] = _Live(
            call_id,
            ident.tenant,
            qid,
            channel,
            customer,
            dialed,
            data or {},
            now,
            self.seq,
            prio,
            priority is not None,
            dial,
        )
        self.by_call[ident.tenant][call_id] = c
        self._decisions()

    def _arrived(self, ident: Identity, msg: Arrived, now: int) -> None:
        qid = self._queue(ident, msg.queue)
        require = self._require(msg.require)
        if msg.call_id in self.by_call[ident.tenant]:
            raise Refused("invalid_state", f"call {msg.call_id!r} is already live")
        preferred = self._preferred(ident, msg.preferred)
        if msg.preferred_s is not None and not 0 <= msg.preferred_s <= 86_400:
            raise Refused("bad_message", "preferred_s must be in [0, 86400]")
        wait_s = self.cfg.server.preferred_s if msg.preferred_s is None else msg.preferred_s
        self._log(ident, msg, now)
        self._new_contact(
            ident,
            now,
            msg.call_id,
            qid,
            channel=msg.channel,
            priority=msg.priority,
            require=require,
            customer=msg.customer,
            dialed=msg.dialed,
            data=msg.data,
            preferred=preferred,
            preferred_us=round(wait_s * 1_000_000),
        )

    def _dial(self, ident: Identity, msg: Dial, now: int) -> str:
        qid = self._queue(ident, msg.queue)
        call_id = msg.call_id
        if call_id is None:
            # Deterministic from the journal's order, so a replay gives the same ids.
            call_id = f"out-{self.dials + 1}"
        if call_id in self.by_call[ident.tenant]:
            raise Refused("invalid_state", f"call {call_id!r} is already live")
        held = None
        if ident.agent >= 0 or msg.agent is not None:
            held = [self._agent(ident, msg.agent)]
        self._log(ident, msg, now)
        self.dials += 1
        self._new_contact(
            ident,
            now,
            call_id,
            qid,
            customer=msg.number,
            dial=msg.number,
            preferred=held,
            preferred_us=round(self.cfg.server.preferred_s * 1_000_000),
        )
        return call_id

    def _ringing_agent(self, ident: Identity, c: int, name: str | None) -> int:
        """The agent a switch's answered / no_answer is about: the one named, or
        the one the contact rings (which must be the only one)."""
        if name is not None or ident.agent >= 0:
            return self._agent(ident, name)
        ringing = self.live[c].ringing
        if not ringing:
            raise Refused("invalid_state", f"call {self.live[c].call_id!r} is not ringing")
        if len(ringing) > 1:
            raise Refused("bad_message", "the call rings several agents: name the agent")
        self.moved.append(ringing[0])
        return ringing[0]

    def _accept(self, ident: Identity, msg: Answered | Accept, now: int) -> None:
        c = self._contact(ident, msg.call_id)
        agent = self._ringing_agent(ident, c, msg.agent)
        self._log(ident, msg, now)
        self._core(self.router.accept, agent, c, now)
        self.live[c].answered_us = now
        self._decisions()  # the RELEASE of the others, if it rang several
        self.live[c].ringing = []
        if agent in self.desktops:
            self._to_desktops(agent, Connected(msg.call_id, self.ids.agents[agent], now))

    def _hung_up(self, ident: Identity, msg: HungUp, now: int) -> None:
        c = self._contact(ident, msg.call_id)
        self._log(ident, msg, now)
        live = self.live[c]
        state = self.router.contact_state(c)
        agent = self.router.contact_agent(c)
        if agent is not None:
            self.moved.append(agent)
        self.moved += live.ringing
        if state is ContactState.ACTIVE:
            assert agent is not None
            self._core(self.router.complete, agent, c, now)
            self._end(c, now)
            self._set_pending(agent, _Pending(live, agent, now, "completed"))
            if agent in self.desktops:
                name = self.ids.agents[agent]
                self._to_desktops(agent, Ended(live.call_id, name, "hung_up", now))
            self._decisions()
            self._no_wrap_up(agent)
        elif live.callback and not live.line_dropped and state is ContactState.WAITING:
            live.line_dropped = True  # a callback keeps its place without the caller
            return
        else:
            self._core(self.router.abandon, c, now)
            self._end(c, now)
            for a in live.ringing:
                self._revoke(live, a, "abandoned")
            live.ringing = []
            self._record(live, None, now, "abandoned", None, None)
        self._decisions()

    def _no_answer(self, ident: Identity, msg: NoAnswer, now: int) -> None:
        c = self._contact(ident, msg.call_id)
        agent = self._ringing_agent(ident, c, msg.agent)
        live = self.live[c]
        if agent not in live.ringing:
            raise Refused("invalid_state", f"call {msg.call_id!r} is not ringing that agent")
        self._log(ident, msg, now)
        self._core(self.router.no_answer, agent, c, now)
        live.ringing.remove(agent)
        self._revoke(live, agent, "rona")
        self._decisions()

    def _transfer(self, ident: Identity, msg: Transfer, now: int) -> None:
        c = self._contact(ident, msg.call_id)
        qid = self._queue(ident, msg.queue)
        target = self._preferred(ident, None if msg.agent is None else [msg.agent])
        agent = self.router.contact_agent(c)
        if agent is None or self.router.contact_state(c) is not ContactState.ACTIVE:
            raise Refused("invalid_state", f"call {msg.call_id!r} is not answered")
        self.moved.append(agent)
        self._log(ident, msg, now)
        # Until the core has transfers: the contact arrives anew in the target
        # queue under the same call id while the first agent is still busy (so it
        # goes to someone else if anyone is free), then the first agent completes.
        live = self.live[c]
        self._end(c, now)
        self._new_contact(
            ident,
            now,
            live.call_id,
            qid,
            channel=live.channel,
            customer=live.customer,
            dialed=live.dialed,
            data=live.data,
            preferred=target,
            preferred_us=round(self.cfg.server.preferred_s * 1_000_000),
        )
        # Before the complete: it may offer the same call id to this agent again.
        if agent in self.desktops:
            name, queue = self.ids.agents[agent], self.ids.queues[qid]
            self._to_desktops(agent, Ended(live.call_id, name, "transferred", now, queue))
        self._core(self.router.complete, agent, c, now)
        self._record(live, agent, now, "transferred", None, None)
        self._decisions()

    def _callback(self, ident: Identity, msg: CallbackRequest, now: int) -> None:
        c = self._contact(ident, msg.call_id)
        if self.router.contact_state(c) is not ContactState.WAITING:
            raise Refused("invalid_state", f"call {msg.call_id!r} is not waiting")
        self._log(ident, msg, now)
        self._core(self.router.request_callback, c, now)
        live = self.live[c]
        live.dial = msg.number
        live.callback = True

    def _login(self, ident: Identity, msg: Login, now: int) -> None:
        agent = self._agent(ident, msg.agent)
        self._log(ident, msg, now)
        self._core(self.router.login, agent, now)
        self._decisions()

    def _logout(self, ident: Identity, msg: Logout, now: int) -> None:
        agent = self._agent(ident, msg.agent)
        self._log(ident, msg, now)
        c = self.router.agent_contact(agent)
        offered = c is not None and self.router.contact_state(c) is ContactState.OFFERED
        self._core(self.router.logout, agent, now)
        if offered:
            assert c is not None
            live = self.live[c]
            if agent in live.ringing:
                live.ringing.remove(agent)
            self._revoke(live, agent, "logout")
        self._flush_pending(agent)
        self._decisions()

    def _ready(self, ident: Identity, msg: Ready, now: int) -> None:
        agent = self._agent(ident, msg.agent)
        self._log(ident, msg, now)
        self._core(self.router.set_ready, agent, now)
        self._decisions()

    def _not_ready(self, ident: Identity, msg: NotReady, now: int) -> None:
        agent = self._agent(ident, msg.agent)
        if msg.reason < 0:
            raise Refused("bad_message", "reason must be >= 0")
        self._log(ident, msg, now)
        self._core(self.router.set_not_ready, agent, now, msg.reason)
        self._decisions()

    def _complete(self, ident: Identity, msg: Complete, now: int) -> None:
        agent = self._agent(ident, msg.agent)
        if msg.satisfaction is not None and not 1 <= msg.satisfaction <= 5:
            raise Refused("bad_message", "satisfaction must be 1..5")
        if msg.wrap_up_s is not None and not 0 <= msg.wrap_up_s <= 86_400:
            raise Refused("bad_message", "wrap_up_s must be in [0, 86400]")
        c = self.by_call[ident.tenant].get(msg.call_id, -1)
        pending = self.pending.get(agent)
        if c < 0 and (pending is None or pending.live.call_id != msg.call_id):
            raise Refused("unknown", f"no contact {msg.call_id!r} for this agent")
        self._log(ident, msg, now)
        if c >= 0:
            live = self.live[c]
            wrap = None if msg.wrap_up_s is None else round(msg.wrap_up_s * 1_000_000)
            self._core(self.router.complete, agent, c, now, wrap_up_us=wrap)
            self._end(c, now)
            self._record(
                live, agent, now, "completed", msg.disposition, msg.satisfaction, msg.notes
            )
            self._decisions()
            self._no_wrap_up(agent)
        else:
            assert pending is not None
            del self.pending[agent]
            self._record(
                pending.live,
                agent,
                pending.ended_us,
                pending.outcome,
                msg.disposition,
                msg.satisfaction,
                msg.notes,
            )

    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {
        Arrived: _arrived,
        Dial: _dial,
        Answered: _accept,
        Accept: _accept,
        HungUp: _hung_up,
        NoAnswer: _no_answer,
        Transfer: _transfer,
        CallbackRequest: _callback,
        Login: _login,
        Logout: _logout,
        Ready: _ready,
        NotReady: _not_ready,
        Complete: _complete,
    }

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _core(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except RouterError as exc:
            raise Refused("invalid_state", f"{type(exc).__name__}: {exc}") from None

    def _end(self, c: int, now: int) -> None:
        live = self.live.pop(c)
        del self.by_call[live.tenant][live.call_id]

    def _set_pending(self, agent: int, pending: _Pending) -> None:
        self._flush_pending(agent)
        self.pending[agent] = pending

    def _flush_pending(self, agent: int) -> None:
        p = self.pending.pop(agent, None)
        if p is not None:
            self._record(p.live, agent, p.ended_us, p.outcome, None, None)

    def _record(
        self,
        live: _Live,
        agent: int | None,
        now: int,
        outcome: str,
        disposition: str | None,
        satisfaction: int | None,
        notes: str | None = None,
    ) -> None:
        # Replay too: a record is built from journaled inputs, so one that a
        # crash kept from the store is written now (the store keeps a ref once).
        self.records.append(
            Interaction(
                self.tenants[live.tenant],
                live.call_id,
                self.ids.queues[live.queue],
                live.channel,
                live.customer,
                live.dialed,
                None if agent is None else self.ids.agents[agent],
                live.arrived_us,
                live.answered_us,
                now,
                outcome,
                disposition,
                satisfaction,
                notes,
            )
        )

    def _no_wrap_up(self, agent: int) -> None:
        """A wrap-up of 0 s ends at once, with no WRAP_UP_END decision: tell the
        desktops all the same."""
        state = self.router.agent_state(agent)
        if state is not AgentState.WRAP_UP and not self.replaying:
            msg = AgentReady(self.ids.agents[agent], state.name.lower())
            for sink in self.desktops.get(agent, ()):
                self.outbox.append((sink, msg))

    def _divert(self, live: _Live, to: str) -> None:
        if self.replaying:
            return
        msg = Diverted(live.call_id, self.ids.queues[live.queue], to)  # type: ignore[arg-type]
        for sink in self.switches[live.tenant]:
            self.outbox.append((sink, msg))

    def _revoke(self, live: _Live, agent: int, reason: str) -> None:
        if self.replaying:
            return
        msg = Revoked(live.call_id, self.ids.agents[agent], reason)
        for sink in self.switches[live.tenant]:
            self.outbox.append((sink, msg))
        for sink in self.desktops.get(agent, ()):
            self.outbox.append((sink, msg))

    def _decisions(self) -> None:
        for d in self.router.take_decisions():
            if d.agent >= 0:
                self.moved.append(d.agent)
            if d.kind == DecisionKind.OFFER:
                self._flush_pending(d.agent)
                live = self.live[d.contact]
                live.ringing.append(d.agent)
                if self.replaying:
                    continue
                name = self.ids.agents[d.agent]
                queue = self.ids.queues[d.queue]
                channel = "callback" if live.callback else live.channel
                for sink in self.switches[live.tenant]:
                    self.outbox.append(
                        (sink, Connect(live.call_id, name, queue, channel, live.dial))  # type: ignore[arg-type]
                    )
                desks = self.desktops.get(d.agent)
                if desks:
                    offer = Offer(
                        live.call_id,
                        name,
                        queue,
                        channel,  # type: ignore[arg-type]
                        live.customer,
                        live.data,
                        None,
                        False,
                        live.dial,
                    )
                    for sink in desks:
                        self.outbox.append((sink, offer))
            elif d.kind in (DecisionKind.RONA, DecisionKind.RELEASE):
                live = self.live[d.contact]
                if d.agent in live.ringing:
                    live.ringing.remove(d.agent)
                self._revoke(live, d.agent, "rona" if d.kind == DecisionKind.RONA else "taken")
            elif d.kind == DecisionKind.OVERFLOW:
                live = self.live[d.contact]
                live.queue = d.queue
                if not live.explicit_priority:
                    live.priority = self.cfg.queues[d.queue].priority
                self._divert(live, "queue")
            elif d.kind == DecisionKind.CALLBACK:
                live = self.live[d.contact]
                live.callback = True
                live.dial = live.dial or live.customer
                self._divert(live, "callback")
            elif d.kind in _ENDINGS:
                live = self.live[d.contact]
                to = _ENDINGS[d.kind]
                self._end(d.contact, d.time)
                self._divert(live, to)
                self._record(live, None, d.time, to, None, None)
            elif d.kind == DecisionKind.WRAP_UP_END and not self.replaying:
                state = self.router.agent_state(d.agent).name.lower()
                msg = AgentReady(self.ids.agents[d.agent], state)
                for sink in self.desktops.get(d.agent, ()):
                    self.outbox.append((sink, msg))

    # ------------------------------------------------------------ agents' states

    def _track_states(self) -> None:
        """Start counting the agents by state from the core's (one scan; after
        that, :meth:`_settle` moves the counts of the agents an input touched).
        Call it again if the core is replaced (a restore)."""
        state = self.router.agent_state
        self.agent_states = [state(a) for a in range(len(self.ids.agents))]
        self.state_since: list[int | None] = [None] * len(self.agent_states)
        self.state_counts = [[0] * len(_STATE_NAMES) for _ in self.tenants]
        for aid, st in enumerate(self.agent_states):
            self.state_counts[self.agent_tenant[aid]][st] += 1
        self.moved: list[int] = []  # agents whose state an input may have moved
        self.desk_seen: dict[int, AgentStatus] = {}  # the last agent_status sent

    def _settle(self, now: int) -> None:
        """Re-read the state of the agents touched since the last call (those an
        input names or whose contact it is about, and those of the core's
        decisions): move the per-tenant counts, and tell their desktops what
        changed (agent_status)."""
        moved, self.moved = self.moved, []
        state = self.router.agent_state
        states = self.agent_states
        desktops = self.desktops
        for aid in moved:
            new = state(aid)
            old = states[aid]
            if new is not old:  # AgentState members: one object per state
                counts = self.state_counts[self.agent_tenant[aid]]
                counts[old] -= 1
                counts[new] += 1
                states[aid] = new
                self.state_since[aid] = now
            if aid in desktops and not self.replaying:
                status = self.agent_status(aid, now)
                if status != self.desk_seen.get(aid):
                    self.desk_seen[aid] = status
                    self._to_desktops(aid, status)

    def _to_desktops(self, agent: int, msg: Any) -> None:
        if self.replaying:
            return
        for sink in self.desktops.get(agent, ()):
            self.outbox.append((sink, msg))

    def agent_status(self, agent: int, now: int) -> AgentStatus:
        """Where the agent stands, for its desktops: state, not-ready reason, the
        time it entered the state, and its contact (offered, handled, or owing
        the disposition), without the screen pop."""
        st = self.router.agent_stats(agent, max(now, self.router.now))
        contact = None
        c = self.router.agent_contact(agent)
        if c is not None and c in self.live:
            live = self.live[c]
            ringing = self.router.contact_state(c) is ContactState.OFFERED
            contact = self._desk_contact(live, "ringing" if ringing else "answered", None)
        elif agent in self.pending:
            p = self.pending[agent]
            contact = self._desk_contact(p.live, "ended", p.ended_us)
        return AgentStatus(
            self.ids.agents[agent],
            _STATE_NAMES[st.state],
            st.reason,
            self.state_since[agent],
            contact,
        )

    def _desk_contact(self, live: _Live, phase: str, ended_us: int | None) -> DeskContact:
        return DeskContact(
            live.call_id,
            self.ids.queues[live.queue],
            "callback" if live.callback else live.channel,  # type: ignore[arg-type]
            phase,  # type: ignore[arg-type]
            live.customer,
            live.data,
            live.dial,
            live.answered_us,
            ended_us,
        )

    # ------------------------------------------------------------ queries

    def queue_snapshots(
        self, tenant: int, now: int, names: list[str] | None = None
    ) -> list[QueueSnapshot]:
        """The tenant's queues (all, or those named that it owns) with their waiting calls."""
        waiting: dict[int, list[_Live]] = {}
        for c, live in self.live.items():
            if live.tenant == tenant and self.router.contact_state(c) is ContactState.WAITING:
                waiting.setdefault(live.queue, []).append(live)
        out = []
        wanted = None if names is None else set(names)
        for qid, name in enumerate(self.ids.queues):
            if self.queue_tenant[qid] != tenant or (wanted is not None and name not in wanted):
                continue
            st = self.router.queue_stats(qid, max(now, self.router.now))
            # The core's order: rank = priority + waited / weight (priority aging),
            # which within one queue compares as priority * weight - arrival.
            w = self.queue_weight_us[qid]
            calls = sorted(
                waiting.get(qid, []),
                key=lambda v: (v.arrived_us - v.priority * w, v.arrived_us, v.seq),
            )
            out.append(
                QueueSnapshot(
                    name,
                    st.waiting,
                    st.longest_wait_us / 1000,
                    st.offered,
                    st.answered,
                    st.abandoned,
                    None if st.asa_us is None else st.asa_us / 1000,
                    st.service_level_offered,
                    st.service_level_answered,
                    st.overflowed,
                    st.voicemail,
                    st.rejected,
                    st.timed_out,
                    st.callbacks,
                    [v.call_id for v in calls],
                    self.cfg.queues[qid].service_level.threshold_s,
                    self.cfg.queues[qid].service_level.target,
                )
            )
        return out

    def contact_status(self, ident: Identity, call_id: str, now: int) -> ContactStatus:
        """Where one of the tenant's contacts stands (a query: nothing changes)."""
        c = self._contact(ident, call_id)
        live = self.live[c]
        state = self.router.contact_state(c)
        position = wait = None
        agents: list[str] = []
        if state is ContactState.WAITING:
            position = self.router.position(c)
            us = self.router.estimated_wait_us(c, max(now, self.router.now))
            wait = None if us is None else us / 1e6
        elif state is ContactState.OFFERED:
            agents = [self.ids.agents[a] for a in live.ringing]
        else:
            agent = self.router.contact_agent(c)
            agents = [] if agent is None else [self.ids.agents[agent]]
        name = {ContactState.WAITING: "waiting", ContactState.OFFERED: "ringing"}.get(
            state, "answered"
        )
        return ContactStatus(
            call_id,
            self.ids.queues[live.queue],
            name,  # type: ignore[arg-type]
            position,
            wait,
            agents,
        )

    def agent_counts(self, tenant: int) -> dict[str, int]:
        """The tenant's agents by state (every state named, zeros included): kept
        as agents move (:meth:`_settle`), so a stats push costs no scan."""
        return dict(zip(_STATE_NAMES, self.state_counts[tenant], strict=True))

    def agent_snapshots(self, tenant: int, now: int) -> list[AgentSnapshot]:
        out = []
        at = max(now, self.router.now)
        for aid, name in enumerate(self.ids.agents):
            if self.agent_tenant[aid] != tenant:
                continue
            st = self.router.agent_stats(aid, at)
            c = self.router.agent_contact(aid)
            call = None if c is None else self.live[c].call_id
            out.append(
                AgentSnapshot(
                    name,
                    AgentState(st.state).name.lower(),
                    st.reason,
                    call,
                    st.handled,
                    st.occupancy,
                )
            )
        return out
