"""A pure-Python reference router: docs/ROUTING.md written out as plainly as possible.

It mirrors the API of ``agner.Router`` (core/router.pyi) call for call, but keeps its
state in plain lists and dicts and answers every question by scanning and sorting them.
It is slow on purpose: there is nothing clever in it to get wrong, so the differential
tests can hold the Cython core to it.

Contact ids here are 0, 1, 2, ... in arrival order; the core's ids are opaque, so the
tests map the two routers' ids by arrival order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agner.core._api import (
    REASON_RONA,
    AgentState,
    AgentStats,
    Channel,
    ConfigError,
    ContactState,
    Decision,
    DecisionKind,
    HookContact,
    InvalidTransition,
    QueueStats,
    Strategy,
    TimeError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
    make_agent_stats,
    make_queue_stats,
)

__all__ = ["ReferenceRouter", "splitmix64"]

MASK64 = (1 << 64) - 1
SKILL_MAX = 65535
TIME_MAX = 2**62 - 1  # times and durations, in microseconds
REASON_MAX = 2**31 - 1
LEVEL_MIN, LEVEL_MAX = 1, 1000
PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000
WEIGHT_MAX = 2**40  # priority_weight_us, and its default
COUNT_MAX = 2**31 - 1

RING = "ring"
WRAP_UP = "wrap_up"
STEP = "step"
MAX_WAIT = "max_wait"
PREFERRED = "preferred"
WRAP_CH = "wrap_ch"  # a multi-channel agent's wrap-up; its `contact` field is the channel
MAX_PREFERRED = 4
ALL = 15  # every channel, as a bitmask
DEFAULT_BLOCKS = (15, 9, 9, 15)  # VOICE and CALLBACK close all; CHAT, EMAIL close those two


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step, exactly as docs/ROUTING.md gives it: (new state, drawn x)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


@dataclass
class _Agent:
    skills: dict[int, int]
    wrap_up_us: int
    since: int  # start of the current state period
    tenant: int = 0
    state: AgentState = AgentState.LOGGED_OUT
    reason: int = 0
    pending: int | None = None  # a pending not-ready reason (RESERVED/BUSY/WRAP_UP)
    contact: int | None = None  # offered (RESERVED) or handled (BUSY)
    idle_since: int = 0
    handled: int = 0
    talk_time_us: int = 0
    rona: int = 0
    time_in_state: list[int] = field(default_factory=lambda: [0] * 6)
    # A multi-channel agent (cap is not None): capacity and blocking mask per
    # channel, its presence, when it last became free for each channel, and the
    # channels it was last made free for (the core's pools).
    cap: list[int] | None = None
    blocks: list[int] = field(default_factory=lambda: [ALL] * 4)
    presence: AgentState = AgentState.LOGGED_OUT
    idle: list[int] = field(default_factory=lambda: [0] * 4)
    keys: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)] * 4)  # handled, talk
    routable: int = 0


@dataclass
class _Queue:
    steps: list[tuple[int, dict[int, int]]]  # (after_us, requirement)
    strategy: Strategy
    priority: int
    ring_timeout_us: int
    sl_threshold_us: int
    priority_weight_us: int = WEIGHT_MAX
    max_waiting: int = 0
    max_wait_us: int = 0
    overflow: str | int | None = None  # None, a queue id, "voicemail", "callback"
    when_unstaffed: str = "wait"
    tenant: int = 0
    parallel: int = 1
    handle_estimate_us: int = 180_000_000
    last_rr: int = -1
    overflowed: int = 0
    voicemail: int = 0
    rejected: int = 0
    timed_out: int = 0
    callbacks: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_within_sl: int = 0
    answered_within_sl: int = 0
    wait_answered_us: int = 0
    ring_no_answer: int = 0


@dataclass
class _Contact:
    queue: int
    priority: int
    own_priority: bool  # given on arrival: kept when it overflows
    channel: Channel
    rch: int  # the channel it is routed as: its channel on arrival
    extra: dict[int, int]  # added to every step's requirement
    arrival: int  # first arrival: the rank keeps it across queues
    seq: int
    entered: int = 0  # arrival in its current queue
    step: int = 0
    callback: bool = False
    expired: bool = False  # its maximum wait passed while it was offered
    preferred: list[int] = field(default_factory=list)  # only they may take it, while
    prefer: bool = False  # ... this holds
    state: ContactState = ContactState.WAITING
    agent: int | None = None  # the first agent still ringing, or the one who answered
    ringing: list[int] = field(default_factory=list)  # in the order they were offered it
    accepted_at: int = 0


@dataclass
class _Timer:
    deadline: int
    seq: int  # creation order
    kind: str
    agent: int
    contact: int  # -1 for wrap-up


class ReferenceRouter:
    """Same API and decisions as ``agner.Router``; see docs/ROUTING.md."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = seed & MASK64
        self._now = 0
        self._agents: list[_Agent] = []
        self._queues: list[_Queue] = []
        self._contacts: dict[int, _Contact] = {}  # live contacts only
        self._next_contact = 0
        self._timers: list[_Timer] = []
        self._next_timer = 0
        self._decisions: list[Decision] = []
        self._hooks: dict[int, list[Any]] = {}  # queue -> [hook, budget_ns, calls, ...]

    # -- properties ------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self._now

    @property
    def n_agents(self) -> int:
        return len(self._agents)

    @property
    def n_queues(self) -> int:
        return len(self._queues)

    # -- configuration ---------------------------------------------------------------

    def add_queue(
        self,
        require: Mapping[int, int] | None = None,
        *,
        steps: Sequence[tuple[int, Mapping[int, int]]] | None = None,
        strategy: Strategy = Strategy.LONGEST_IDLE,
        priority: int = 0,
        ring_timeout_us: int = 15_000_000,
        sl_threshold_us: int = 20_000_000,
        priority_weight_us: int = WEIGHT_MAX,
        max_waiting: int = 0,
        max_wait_us: int = 0,
        overflow: str | int | None = None,
        when_unstaffed: str = "wait",
        tenant: int = 0,
        parallel: int = 1,
        handle_estimate_us: int = 180_000_000,
    ) -> int:
        if require is not None and steps is not None:
            raise ConfigError("give require or steps, not both")
        if steps is None:
            step_list = [(0, _check_skills(require or {}))]
        else:
            step_list = []
            for k, step in enumerate(steps):
                if len(step) != 2:
                    raise ConfigError("a step is an (after_us, require) pair")
                after, req = step
                _check_duration(after)
                if (k == 0 and after != 0) or (k and after <= step_list[-1][0]):
                    raise ConfigError("steps start at 0 and increase")
                step_list.append((after, _check_skills(req)))
            if not step_list:
                raise ConfigError("steps must not be empty")
        try:
            strategy = Strategy(strategy)
        except ValueError:
            raise ConfigError(f"unknown strategy {strategy!r}") from None
        _check_priority(priority)
        _check_duration(ring_timeout_us)
        _check_duration(sl_threshold_us)
        if not 0 <= priority_weight_us <= WEIGHT_MAX:
            raise ConfigError("priority_weight_us out of range")
        if not 0 <= max_waiting <= COUNT_MAX:
            raise ConfigError("max_waiting out of range")
        _check_duration(max_wait_us)
        if not 0 <= tenant <= COUNT_MAX:
            raise ConfigError("tenant out of range")
        if not 0 <= parallel <= COUNT_MAX:
            raise ConfigError("parallel out of range")
        _check_duration(handle_estimate_us)
        if isinstance(overflow, int) and not isinstance(overflow, bool):
            if not 0 <= overflow < len(self._queues):
                raise ConfigError("overflow target must be an existing queue")
            if self._queues[overflow].tenant != tenant:
                raise ConfigError("overflow target belongs to another tenant")
        elif overflow not in (None, "voicemail", "callback"):
            raise ConfigError(f"bad overflow {overflow!r}")
        if when_unstaffed not in ("wait", "reject", "overflow"):
            raise ConfigError(f"bad when_unstaffed {when_unstaffed!r}")
        if when_unstaffed == "overflow" and overflow is None:
            raise ConfigError("when_unstaffed='overflow' needs an overflow target")
        self._queues.append(
            _Queue(
                step_list,
                strategy,
                priority,
                ring_timeout_us,
                sl_threshold_us,
                priority_weight_us=priority_weight_us,
                max_waiting=max_waiting,
                max_wait_us=max_wait_us,
                overflow=overflow,
                when_unstaffed=when_unstaffed,
                tenant=tenant,
                parallel=parallel,
                handle_estimate_us=handle_estimate_us,
            )
        )
        return len(self._queues) - 1

    def add_agent(
        self,
        skills: Mapping[int, int],
        *,
        wrap_up_us: int = 0,
        tenant: int = 0,
        capacity: Mapping[Channel, int] | None = None,
        blocks: Mapping[Channel, Sequence[Channel]] | None = None,
    ) -> int:
        sk = _check_skills(skills)
        _check_duration(wrap_up_us)
        if not 0 <= tenant <= COUNT_MAX:
            raise ConfigError("tenant out of range")
        if capacity is None and blocks is not None:
            raise ConfigError("blocks needs capacity")
        cap = None
        masks = list(DEFAULT_BLOCKS)
        if capacity is not None:
            cap = [0] * 4
            try:
                for ch, n in capacity.items():
                    if not 0 <= n <= 15:
                        raise ConfigError("capacity out of range")
                    cap[Channel(ch)] = n
                for ch, closed in (blocks or {}).items():
                    masks[Channel(ch)] = sum(1 << Channel(y) for y in set(closed))
            except ValueError as exc:  # ConfigError is one too: the message stays
                raise ConfigError(str(exc)) from None
            if not any(cap):
                raise ConfigError("a multi-channel agent needs some capacity")
        # The agent exists from the router's latest time on: its first LOGGED_OUT
        # period starts there.
        a = _Agent(sk, wrap_up_us, since=self._now, tenant=tenant, cap=cap)
        if cap is not None:
            a.blocks = masks
        self._agents.append(a)
        return len(self._agents) - 1

    # -- agent events ----------------------------------------------------------------

    def login(self, agent: int, now: int) -> None:
        a = self._begin_agent(now, agent)
        if a.state != AgentState.LOGGED_OUT:
            raise InvalidTransition("login: agent is logged in")
        a.presence = AgentState.NOT_READY
        self._set_state(agent, AgentState.NOT_READY, 0)

    def logout(self, agent: int, now: int) -> None:
        a = self._begin_agent(now, agent)
        if a.cap is not None:
            if a.state == AgentState.LOGGED_OUT or self._n_active(agent):
                raise InvalidTransition(f"logout: agent is {a.state.name}")
            self._cancel(WRAP_CH, agent=agent)
            if a.contact is not None:
                c = self._contacts[a.contact]
                if len(c.ringing) > 1:
                    self._unring(c, agent)
                    self._rona_agent(agent, c.queue, AgentState.LOGGED_OUT)
                else:
                    self._cancel(RING, contact=a.contact)
                    self._ring_no_answer(a.contact, AgentState.LOGGED_OUT)
                return
            a.pending = None
            a.presence = AgentState.LOGGED_OUT
            self._m_settle(agent)
            return
        if a.state in (AgentState.LOGGED_OUT, AgentState.BUSY):
            raise InvalidTransition(f"logout: agent is {a.state.name}")
        if a.state == AgentState.WRAP_UP:
            self._cancel(WRAP_UP, agent=agent)
        returned = None
        if a.state == AgentState.RESERVED:
            assert a.contact is not None
            c = self._contacts[a.contact]
            if len(c.ringing) > 1:  # the others keep ringing
                self._unring(c, agent)
            else:
                returned = a.contact
                self._cancel(RING, contact=returned)
                c.ringing = []
        a.pending = None
        a.contact = None
        self._set_state(agent, AgentState.LOGGED_OUT, 0)
        if returned is not None:
            self._return_to_queue(returned)

    def set_ready(self, agent: int, now: int) -> None:
        a = self._begin_agent(now, agent)
        if a.cap is not None:
            if a.state != AgentState.LOGGED_OUT:
                if a.pending is not None and (a.contact is not None or self._n_active(agent)):
                    a.pending = None
                    self._m_settle(agent)
                    return
                if a.presence == AgentState.NOT_READY or self._n_wrap(agent):
                    self._cancel(WRAP_CH, agent=agent)
                    a.pending = None
                    a.presence = AgentState.READY
                    self._m_settle(agent)
                    return
            raise InvalidTransition(f"set_ready: agent is {a.state.name}")
        if a.state in (AgentState.RESERVED, AgentState.BUSY):
            if a.pending is None:
                raise InvalidTransition("set_ready: no pending not-ready to drop")
            a.pending = None
            return
        if a.state not in (AgentState.NOT_READY, AgentState.WRAP_UP):
            raise InvalidTransition(f"set_ready: agent is {a.state.name}")
        if a.state == AgentState.WRAP_UP:
            self._cancel(WRAP_UP, agent=agent)
        a.pending = None
        self._make_ready(agent)

    def set_not_ready(self, agent: int, now: int, reason: int = 0) -> None:
        if not 0 <= reason <= REASON_MAX:
            # A user reason; the argument check comes after the agent id check.
            self._check_agent(agent)
            raise ConfigError(f"reason must be in [0, {REASON_MAX}]")
        a = self._begin_agent(now, agent)
        if a.state == AgentState.LOGGED_OUT:
            raise InvalidTransition("set_not_ready: agent is logged out")
        if a.cap is not None:
            if a.contact is not None or self._n_active(agent):
                a.pending = reason
            else:
                self._cancel(WRAP_CH, agent=agent)
                a.pending = None
                a.reason = reason
                a.presence = AgentState.NOT_READY
            self._m_settle(agent)
            return
        if a.state in (AgentState.RESERVED, AgentState.BUSY):
            a.pending = reason
            return
        if a.state == AgentState.WRAP_UP:
            self._cancel(WRAP_UP, agent=agent)
        a.pending = None
        self._set_state(agent, AgentState.NOT_READY, reason)

    # -- contact events --------------------------------------------------------------

    def arrive(
        self,
        queue: int,
        now: int,
        *,
        priority: int | None = None,
        channel: Channel = Channel.VOICE,
        require: Mapping[int, int] | None = None,
        preferred: Sequence[int] | None = None,
        preferred_us: int = 0,
    ) -> int:
        q = self._check_queue(queue)
        if priority is not None:
            _check_priority(priority)
        try:
            channel = Channel(channel)
        except ValueError:
            raise ConfigError(f"unknown channel {channel!r}") from None
        pref = list(preferred or ())
        for a in pref:
            if self._check_agent(a).tenant != q.tenant:
                raise ConfigError("a preferred agent of another tenant")
        if pref:
            if len(pref) > MAX_PREFERRED or len(set(pref)) != len(pref):
                raise ConfigError("at most 4 distinct preferred agents")
            _check_duration(preferred_us)
            if preferred_us == 0:
                raise ConfigError("preferred agents need preferred_us > 0")
        extra = _check_skills(require or {})
        self._begin(now)
        cid = self._next_contact
        self._next_contact += 1
        self._contacts[cid] = _Contact(
            queue=queue,
            priority=q.priority if priority is None else priority,
            own_priority=priority is not None,
            channel=channel,
            rch=int(channel),
            extra=extra,
            arrival=self._now,
            seq=cid,
            preferred=pref,
            prefer=bool(pref),
        )
        q.offered += 1
        if pref:
            self._add_timer(self._now + preferred_us, PREFERRED, -1, cid)
        self._enter_queue(cid)
        return cid

    def request_callback(self, contact: int, now: int) -> None:
        self._begin(now)
        c = self._contact(contact)
        if c.state != ContactState.WAITING or c.callback:
            raise InvalidTransition("request_callback: the contact is not a waiting caller")
        c.callback = True
        c.channel = Channel.CALLBACK
        self._queues[c.queue].callbacks += 1
        self._cancel(MAX_WAIT, contact=contact)

    def accept(self, agent: int, contact: int, now: int) -> None:
        _, c = self._begin_pair(now, agent, contact)
        if c.state != ContactState.OFFERED or agent not in c.ringing:
            raise InvalidTransition("accept: the contact is not offered to this agent")
        self._cancel(RING, contact=contact)
        self._cancel(STEP, contact=contact)
        self._cancel(MAX_WAIT, contact=contact)
        self._cancel(PREFERRED, contact=contact)
        c.expired = c.prefer = False
        c.state = ContactState.ACTIVE
        c.accepted_at = self._now
        q = self._queues[c.queue]
        wait = self._now - c.entered
        q.answered += 1
        q.wait_answered_us += wait
        if wait <= q.sl_threshold_us:
            q.answered_within_sl += 1
        a = self._agents[agent]
        self._set_state(agent, AgentState.BUSY, a.reason if a.cap is not None else 0)
        if a.cap is not None:
            a.contact = None  # its answered contacts are those whose agent it is
        others = [b for b in c.ringing if b != agent]
        c.agent, c.ringing = agent, [agent]
        for b in others:
            self._decide(DecisionKind.RELEASE, contact, b, c.queue)
            self._agents[b].contact = None
            self._free_ringer(b)
        if a.cap is not None:
            self._m_settle(agent)

    def no_answer(self, agent: int, contact: int, now: int) -> None:
        _, c = self._begin_pair(now, agent, contact)
        if c.state != ContactState.OFFERED or agent not in c.ringing:
            raise InvalidTransition("no_answer: the contact is not offered to this agent")
        if len(c.ringing) > 1:  # the others keep ringing
            self._unring(c, agent)
            self._rona_agent(agent, c.queue, AgentState.NOT_READY)
            return
        self._cancel(RING, contact=contact)
        self._ring_no_answer(contact, AgentState.NOT_READY)

    def complete(
        self, agent: int, contact: int, now: int, *, wrap_up_us: int | None = None
    ) -> None:
        if wrap_up_us is not None and not 0 <= wrap_up_us <= TIME_MAX:
            self._check_agent(agent)
            raise ConfigError(f"wrap_up_us must be in [0, {TIME_MAX}]")
        a, c = self._begin_pair(now, agent, contact)
        if c.state != ContactState.ACTIVE or c.agent != agent:
            raise InvalidTransition("complete: the contact is not handled by this agent")
        if a.cap is not None:
            del self._contacts[contact]
            a.handled += 1
            a.talk_time_us += self._now - c.accepted_at
            wrap = a.wrap_up_us if wrap_up_us is None else wrap_up_us
            if wrap > 0:
                self._add_timer(self._now + wrap, WRAP_CH, agent, c.rch)
            self._m_settle(agent)
            return
        del self._contacts[contact]
        a.handled += 1
        a.talk_time_us += self._now - c.accepted_at
        a.contact = None
        wrap = a.wrap_up_us if wrap_up_us is None else wrap_up_us
        if wrap > 0:
            self._set_state(agent, AgentState.WRAP_UP, 0)
            self._add_timer(self._now + wrap, WRAP_UP, agent, -1)
        else:
            self._release(agent)

    def abandon(self, contact: int, now: int) -> None:
        self._begin(now)
        c = self._contact(contact)
        if c.state == ContactState.ACTIVE:
            raise InvalidTransition("abandon: the contact is answered")
        q = self._queues[c.queue]
        q.abandoned += 1
        if self._now - c.entered <= q.sl_threshold_us:
            q.abandoned_within_sl += 1
        self._cancel(STEP, contact=contact)
        self._cancel(MAX_WAIT, contact=contact)
        self._cancel(PREFERRED, contact=contact)
        del self._contacts[contact]
        if c.state == ContactState.OFFERED:
            self._cancel(RING, contact=contact)
            for b in c.ringing:
                self._agents[b].contact = None
                self._free_ringer(b)

    # -- time ------------------------------------------------------------------------

    def advance(self, now: int) -> None:
        self._begin(now)

    def next_deadline(self) -> int | None:
        return min((t.deadline for t in self._timers), default=None)

    def take_decisions(self) -> list[Decision]:
        out, self._decisions = self._decisions, []
        return out

    # -- queries ---------------------------------------------------------------------

    def agent_state(self, agent: int) -> AgentState:
        return self._check_agent(agent).state

    def agent_contact(self, agent: int) -> int | None:
        return self._check_agent(agent).contact

    def contact_state(self, contact: int) -> ContactState:
        return self._contact(contact).state

    def contact_agent(self, contact: int) -> int | None:
        return self._contact(contact).agent

    def contact_channel(self, contact: int) -> Channel:
        return self._contact(contact).channel

    def contact_queue(self, contact: int) -> int:
        return self._contact(contact).queue

    def _waiting(self, contact: int, op: str) -> _Contact:
        c = self._contact(contact)
        if c.state != ContactState.WAITING:
            raise InvalidTransition(f"{op}: the contact is not waiting")
        return c

    def _key(self, c: _Contact) -> tuple[int, int, int]:
        return (self._rank(c), c.arrival, c.seq)

    def _pool_of(self, c: _Contact) -> tuple[object, ...]:
        """What makes two contacts need exactly the same agents: tenant, strategy and
        the requirements of their steps so far."""
        q = self._queues[c.queue]
        reqs = {tuple(sorted(r.items())) for r in self._requirements(c, c.step)}
        return (q.tenant, q.strategy, tuple(sorted(reqs)), c.rch)

    def position(self, contact: int) -> int:
        c = self._waiting(contact, "position")
        return 1 + sum(
            1
            for x in self._contacts.values()
            if x.state == ContactState.WAITING
            and x.queue == c.queue
            and self._key(x) < self._key(c)
        )

    def estimated_wait_us(self, contact: int, now: int) -> int | None:
        c = self._waiting(contact, "estimated_wait_us")
        self._check_time(now)
        staffed = handled = 0
        work = 0.0
        for i, a in enumerate(self._agents):
            if a.state in (AgentState.LOGGED_OUT, AgentState.NOT_READY):
                continue
            if not self._eligible(i, c):
                continue
            staffed += 1
            handled += a.handled
            work += float(a.talk_time_us) + float(a.handled) * float(a.wrap_up_us)
        if staffed == 0:
            return None
        ahead = 0
        if not c.prefer:
            pool = self._pool_of(c)
            ahead = sum(
                1
                for x in self._contacts.values()
                if x is not c
                and x.state == ContactState.WAITING
                and not x.prefer
                and self._pool_of(x) == pool
                and self._key(x) < self._key(c)
            )
        handle = work / handled if handled else float(self._queues[c.queue].handle_estimate_us)
        return math.floor((ahead + 1) * handle / staffed + 0.5)

    def queue_stats(self, queue: int, now: int) -> QueueStats:
        q = self._check_queue(queue)
        self._check_time(now)
        waiting = [
            c
            for c in self._contacts.values()
            if c.queue == queue and c.state == ContactState.WAITING
        ]
        longest = now - min(c.entered for c in waiting) if waiting else 0
        return make_queue_stats(
            offered=q.offered,
            answered=q.answered,
            abandoned=q.abandoned,
            abandoned_within_sl=q.abandoned_within_sl,
            waiting=len(waiting),
            longest_wait_us=longest,
            answered_within_sl=q.answered_within_sl,
            wait_answered_us=q.wait_answered_us,
            ring_no_answer=q.ring_no_answer,
            overflowed=q.overflowed,
            voicemail=q.voicemail,
            rejected=q.rejected,
            timed_out=q.timed_out,
            callbacks=q.callbacks,
            waiting_callbacks=sum(c.callback for c in waiting),
        )

    def agent_stats(self, agent: int, now: int) -> AgentStats:
        a = self._check_agent(agent)
        self._check_time(now)
        t = list(a.time_in_state)
        t[a.state] += now - a.since
        return make_agent_stats(
            state=a.state,
            reason=a.reason if a.state == AgentState.NOT_READY else 0,
            handled=a.handled,
            talk_time_us=a.talk_time_us,
            rona=a.rona,
            time_in_state_us=(t[0], t[1], t[2], t[3], t[4], t[5]),
        )

    # -- the error-check order of docs/ROUTING.md ---------------------------------------

    def _check_agent(self, agent: int) -> _Agent:
        if not 0 <= agent < len(self._agents):
            raise UnknownAgent(agent)
        return self._agents[agent]

    def _check_queue(self, queue: int) -> _Queue:
        if not 0 <= queue < len(self._queues):
            raise UnknownQueue(queue)
        return self._queues[queue]

    def _check_time(self, now: int) -> None:
        if not 0 <= now <= TIME_MAX:
            raise ConfigError(f"now must be in [0, {TIME_MAX}]")
        if now < self._now:
            raise TimeError(f"now={now} is earlier than {self._now}")

    def _contact(self, contact: int) -> _Contact:
        c = self._contacts.get(contact)
        if c is None:
            raise UnknownContact(contact)
        return c

    def _begin(self, now: int) -> None:
        """Steps 2-3 (after the argument checks): check the time, fire the due timers."""
        self._check_time(now)
        self._fire_timers(now)

    def _begin_agent(self, now: int, agent: int) -> _Agent:
        """Steps 1-3 of a call on one agent."""
        a = self._check_agent(agent)
        self._begin(now)
        return a

    def _begin_pair(self, now: int, agent: int, contact: int) -> tuple[_Agent, _Contact]:
        """Steps 1-4 (up to UnknownContact) of a call on an agent and a contact."""
        a = self._begin_agent(now, agent)
        return a, self._contact(contact)

    # -- timers ----------------------------------------------------------------------

    def _add_timer(self, deadline: int, kind: str, agent: int, contact: int) -> None:
        self._timers.append(_Timer(deadline, self._next_timer, kind, agent, contact))
        self._next_timer += 1

    def _cancel(self, kind: str, *, agent: int = -2, contact: int = -2) -> None:
        self._timers = [
            t
            for t in self._timers
            if not (t.kind == kind and (t.agent == agent or t.contact == contact))
        ]

    def _fire_timers(self, now: int) -> None:
        while True:
            due = sorted(
                (t for t in self._timers if t.deadline <= now),
                key=lambda t: (t.deadline, t.seq),
            )
            if not due:
                break
            t = due[0]
            self._timers.remove(t)
            self._now = t.deadline  # each timer acts at its own deadline
            if t.kind == STEP:
                self._next_step(t.contact)
            elif t.kind == WRAP_CH:
                self._decide(DecisionKind.WRAP_UP_END, -1, t.agent, -1)
                self._m_settle(t.agent)
            elif t.kind == PREFERRED:
                c = self._contacts[t.contact]
                c.prefer = False
                if c.state == ContactState.WAITING:
                    self._dispatch_contact(t.contact)
            elif t.kind == MAX_WAIT:
                c = self._contacts[t.contact]
                if c.state == ContactState.WAITING:
                    self._divert(t.contact, MAX_WAIT)
                else:
                    c.expired = True
            elif t.kind == RING:
                c = self._contacts[t.contact]
                for b in c.ringing:
                    self._decide(DecisionKind.RONA, t.contact, b, c.queue)
                self._ring_no_answer(t.contact, AgentState.NOT_READY)
            else:
                self._decisions.append(
                    Decision(DecisionKind.WRAP_UP_END, t.deadline, -1, t.agent, -1)
                )
                self._release(t.agent)
        self._now = now

    # -- transitions -----------------------------------------------------------------

    def _set_state(self, agent: int, state: AgentState, reason: int) -> None:
        a = self._agents[agent]
        a.time_in_state[a.state] += self._now - a.since
        a.since = self._now
        a.state = state
        a.reason = reason

    def _ring_no_answer(self, contact: int, state: AgentState) -> None:
        """no_answer of the last agent ringing, ring timeout, or logout: every agent
        still ringing goes to `state` (NOT_READY(RONA) or LOGGED_OUT), the contact
        back to its queue."""
        c = self._contacts[contact]
        for b in c.ringing:
            self._rona_agent(b, c.queue, state)
        c.ringing = []
        self._return_to_queue(contact)

    def _rona_agent(self, agent: int, queue: int, state: AgentState) -> None:
        a = self._agents[agent]
        a.pending = None
        a.contact = None
        reason = 0
        if state == AgentState.NOT_READY:
            reason = REASON_RONA
            a.rona += 1
            self._queues[queue].ring_no_answer += 1
        if a.cap is not None:
            a.reason = reason if state == AgentState.NOT_READY else a.reason
            a.presence = state
            self._m_settle(agent)
        else:
            self._set_state(agent, state, reason)

    def _free_ringer(self, agent: int) -> None:
        """An agent stops ringing: its caller hung up, or another agent answered."""
        if self._agents[agent].cap is not None:
            self._m_settle(agent)
        else:
            self._release(agent)

    # -- multi-channel agents -----------------------------------------------------------

    def _n_active(self, agent: int) -> int:
        return sum(
            1
            for c in self._contacts.values()
            if c.state == ContactState.ACTIVE and c.agent == agent
        )

    def _n_wrap(self, agent: int) -> int:
        return sum(1 for t in self._timers if t.kind == WRAP_CH and t.agent == agent)

    def _load(self, agent: int) -> list[int]:
        """Contacts held per channel: ringing, answered, in wrap-up."""
        a = self._agents[agent]
        load = [0] * 4
        if a.contact is not None:
            load[self._contacts[a.contact].rch] += 1
        for c in self._contacts.values():
            if c.state == ContactState.ACTIVE and c.agent == agent:
                load[c.rch] += 1
        for t in self._timers:
            if t.kind == WRAP_CH and t.agent == agent:
                load[t.contact] += 1
        return load

    def _free_channels(self, agent: int) -> int:
        """The channels the agent may be offered a contact of now (a bitmask)."""
        a = self._agents[agent]
        if a.cap is None:
            return ALL if a.state == AgentState.READY else 0
        if a.presence != AgentState.READY or a.pending is not None or a.contact is not None:
            return 0  # one offer rings at a time
        load = self._load(agent)
        closed = 0
        for x in range(4):
            if load[x]:
                closed |= a.blocks[x]
        return sum(1 << x for x in range(4) if load[x] < a.cap[x] and not closed >> x & 1)

    def _m_settle(self, agent: int) -> None:
        """After any change of a multi-channel agent: a pending not-ready once nothing
        is held, the summary state, then the channels that opened up are dispatched."""
        a = self._agents[agent]
        if (
            a.pending is not None
            and a.contact is None
            and not self._n_active(agent)
            and not self._n_wrap(agent)
            and a.presence == AgentState.READY
        ):
            a.presence, a.reason, a.pending = AgentState.NOT_READY, a.pending, None
        if a.presence == AgentState.LOGGED_OUT:
            st = AgentState.LOGGED_OUT
        elif a.contact is not None:
            st = AgentState.RESERVED
        elif self._n_active(agent):
            st = AgentState.BUSY
        elif self._n_wrap(agent):
            st = AgentState.WRAP_UP
        else:
            st = a.presence
        if st != a.state:
            self._set_state(agent, st, a.reason)
        m = self._free_channels(agent)
        opened = m & ~a.routable
        a.routable = m
        for x in range(4):
            if opened >> x & 1:
                a.idle[x] = self._now
                a.keys[x] = (a.handled, a.talk_time_us)
        if opened:
            self._take_waiting(agent, opened)

    def agent_contacts(self, agent: int) -> tuple[int, ...]:
        a = self._check_agent(agent)
        out = [] if a.contact is None else [a.contact]
        if a.cap is not None:
            held = sorted(
                (c.accepted_at, c.seq, cid)
                for cid, c in self._contacts.items()
                if c.state == ContactState.ACTIVE and c.agent == agent
            )
            out += [cid for _, _, cid in held]
        return tuple(out)

    def agent_load(self, agent: int) -> tuple[int, ...]:
        a = self._check_agent(agent)
        if a.cap is not None:
            return tuple(self._load(agent))
        out = [0] * 4
        if a.contact is not None:
            out[self._contacts[a.contact].rch] = 1
        return tuple(out)

    def _unring(self, c: _Contact, agent: int) -> None:
        """One of several agents ringing for `c` stops ringing."""
        c.ringing.remove(agent)
        c.agent = c.ringing[0]
        self._agents[agent].contact = None

    def _return_to_queue(self, contact: int) -> None:
        c = self._contacts[contact]
        c.state = ContactState.WAITING
        c.agent = None
        self._dispatch_contact(contact)

    def _release(self, agent: int) -> None:
        a = self._agents[agent]
        if a.pending is not None:
            reason, a.pending = a.pending, None
            self._set_state(agent, AgentState.NOT_READY, reason)
        else:
            self._make_ready(agent)

    def _make_ready(self, agent: int) -> None:
        """The agent becomes READY: offer it the best WAITING contact it is eligible for."""
        self._set_state(agent, AgentState.READY, 0)
        if not self._take_waiting(agent, ALL):
            self._agents[agent].idle_since = self._now

    def _take_waiting(self, agent: int, channels: int) -> bool:
        """Offer the agent the best-ranked WAITING contact of `channels` it may take."""
        candidates = [
            (self._rank(c), c.arrival, c.seq, cid)
            for cid, c in self._contacts.items()
            if c.state == ContactState.WAITING
            and channels >> c.rch & 1
            and (agent in c.preferred if c.prefer else self._eligible(agent, c))
        ]
        if not candidates:
            return False
        self._offer(min(candidates)[3], agent)
        return True

    def _rank(self, c: _Contact) -> int:
        """Lower first: the virtual arrival, earlier by priority_weight_us a level."""
        return c.arrival - c.priority * self._queues[c.queue].priority_weight_us

    def _requirements(self, c: _Contact, last_step: int) -> list[dict[int, int]]:
        """The requirements of steps 0..last_step of its queue, each with its extra."""
        out = []
        for _, req in self._queues[c.queue].steps[: last_step + 1]:
            merged = dict(req)
            for skill, level in c.extra.items():
                merged[skill] = max(level, merged.get(skill, 0))
            out.append(merged)
        return out

    def _eligible(self, agent: int, c: _Contact, last_step: int | None = None) -> bool:
        a = self._agents[agent]
        if a.tenant != self._queues[c.queue].tenant:
            return False
        if a.cap is not None and a.cap[c.rch] == 0:
            return False
        step = c.step if last_step is None else last_step
        return any(_meets(a.skills, r) for r in self._requirements(c, step))

    def _enter_queue(self, contact: int) -> None:
        """The contact arrives in its queue (first, or by overflow)."""
        c = self._contacts[contact]
        q = self._queues[c.queue]
        c.entered = self._now
        c.step = 0
        if q.when_unstaffed != "wait" and not self._staffed(c):
            self._divert(contact, None)
            return
        if q.max_waiting and not c.callback:
            ready = any(
                self._free_channels(i) >> c.rch & 1
                and (i in c.preferred if c.prefer else self._eligible(i, c))
                for i in range(len(self._agents))
            )
            live = sum(
                1
                for i, x in self._contacts.items()
                if i != contact
                and x.queue == c.queue
                and x.state == ContactState.WAITING
                and not x.callback
            )
            if not ready and live >= q.max_waiting:
                self._divert(contact, None)
                return
        if len(q.steps) > 1:
            self._add_timer(self._now + q.steps[1][0], STEP, -1, contact)
        if q.max_wait_us > 0 and not c.callback:
            self._add_timer(self._now + q.max_wait_us, MAX_WAIT, -1, contact)
        self._dispatch_contact(contact)

    def _staffed(self, c: _Contact) -> bool:
        """Whether an agent who could take it at its last step is logged in."""
        last = len(self._queues[c.queue].steps) - 1
        return any(
            a.state != AgentState.LOGGED_OUT and self._eligible(i, c, last)
            for i, a in enumerate(self._agents)
        )

    def _next_step(self, contact: int) -> None:
        c = self._contacts[contact]
        q = self._queues[c.queue]
        c.step += 1
        if c.step + 1 < len(q.steps):
            self._add_timer(c.entered + q.steps[c.step + 1][0], STEP, -1, contact)
        if c.state == ContactState.WAITING and not c.prefer:
            self._dispatch_contact(contact)

    def _divert(self, contact: int, why: str | None) -> None:
        """The queue cannot keep it: full or unstaffed (why None), or MAX_WAIT."""
        self._cancel(STEP, contact=contact)
        self._cancel(MAX_WAIT, contact=contact)
        self._cancel(PREFERRED, contact=contact)
        c = self._contacts[contact]
        c.expired = c.prefer = False
        q = self._queues[c.queue]
        target = q.overflow
        if why is None and q.when_unstaffed == "reject" and not self._staffed(c):
            target = None
        if target == "callback" and not c.callback:
            c.callback = True
            c.channel = Channel.CALLBACK
            q.callbacks += 1
            self._decide(DecisionKind.CALLBACK, contact, -1, c.queue)
            self._dispatch_contact(contact)
            return
        if isinstance(target, int):
            q.overflowed += 1
            self._decide(DecisionKind.OVERFLOW, contact, -1, target)
            c.queue = target
            if not c.own_priority:
                c.priority = self._queues[target].priority
            self._queues[target].offered += 1
            self._enter_queue(contact)
            return
        if target == "voicemail":
            q.voicemail += 1
            kind = DecisionKind.VOICEMAIL
        elif why == MAX_WAIT:
            q.timed_out += 1
            kind = DecisionKind.TIMEOUT
        else:
            q.rejected += 1
            kind = DecisionKind.REJECT
        self._decide(kind, contact, -1, c.queue)
        del self._contacts[contact]

    def _decide(self, kind: DecisionKind, contact: int, agent: int, queue: int) -> None:
        self._decisions.append(Decision(kind, self._now, contact, agent, queue))

    def _dispatch_contact(self, contact: int) -> None:
        """The contact is in no queue order and has no agent: offer it to an eligible
        READY agent, or divert it when its maximum wait has passed, or let it wait."""
        c = self._contacts[contact]
        q = self._queues[c.queue]
        if c.prefer:
            # The first of its preferred agents that is READY; no strategy.
            first = [a for a in c.preferred if self._free_channels(a) >> c.rch & 1]
            if first:
                self._offer(contact, first[0])
                return
            ready = []
        else:
            ready = [
                i
                for i in range(len(self._agents))
                if self._free_channels(i) >> c.rch & 1 and self._eligible(i, c)
            ]
        if not ready:
            if c.expired:
                self._divert(contact, MAX_WAIT)
            else:
                c.state = ContactState.WAITING
            return
        self._offer(contact, self._hook_choice(c, contact, ready))
        offered = 1
        while q.parallel == 0 or offered < q.parallel:
            # A parallel offer: the next agent by the strategy, among those left.
            ready = [
                i
                for i in range(len(self._agents))
                if self._free_channels(i) >> c.rch & 1 and self._eligible(i, c)
            ]
            if not ready:
                break
            self._offer(contact, self._choose(c, ready))
            offered += 1

    def set_decision_hook(
        self, queue: int, hook: Callable[[HookContact], int] | None, *, budget_us: int = 1000
    ) -> None:
        self._check_queue(queue)
        if hook is None:
            self._hooks.pop(queue, None)
            return
        if not callable(hook):
            raise ConfigError("the hook must be callable")
        _check_duration(budget_us)
        self._hooks[queue] = [hook, budget_us * 1000, 0, 0, 0, 0]

    def hook_stats(self, queue: int) -> tuple[int, int, int, int]:
        self._check_queue(queue)
        e = self._hooks.get(queue)
        return (0, 0, 0, 0) if e is None else (e[2], e[3], e[4], e[5])

    def _hook_choice(self, c: _Contact, contact: int, ready: list[int]) -> int:
        """The queue's hook's answer if it is a candidate, in time; else the strategy's."""
        e = self._hooks.get(c.queue)
        if e is not None:
            candidates = tuple(sorted(ready))
            info = HookContact(
                contact,
                c.queue,
                c.priority,
                c.channel,
                c.arrival,
                self._now - c.entered,
                candidates,
            )
            t0 = time.perf_counter_ns()
            try:
                answer = e[0](info)
            except Exception:
                answer = None
            took = time.perf_counter_ns() - t0
            e[2] += 1
            e[5] += took
            if took > e[1]:
                e[4] += 1
            elif type(answer) is int and answer in candidates:
                return int(answer)
            else:
                e[3] += 1
        return self._choose(c, ready)

    def _choose(self, c: _Contact, ready: list[int]) -> int:
        """The READY agent the contact's queue's strategy picks among `ready`."""
        q = self._queues[c.queue]
        agents = self._agents

        def idle(i: int) -> int:  # a multi-channel agent's keys are per channel
            a = agents[i]
            return a.idle_since if a.cap is None else a.idle[c.rch]

        def handled(i: int) -> int:
            a = agents[i]
            return a.handled if a.cap is None else a.keys[c.rch][0]

        def talk(i: int) -> int:
            a = agents[i]
            return a.talk_time_us if a.cap is None else a.keys[c.rch][1]

        if q.strategy == Strategy.LONGEST_IDLE:
            chosen = min(ready, key=lambda i: (idle(i), i))
        elif q.strategy == Strategy.ROUND_ROBIN:
            after = [i for i in ready if i > q.last_rr]
            chosen = min(after) if after else min(ready)
        elif q.strategy == Strategy.FEWEST_CONTACTS:
            chosen = min(ready, key=lambda i: (handled(i), idle(i), i))
        elif q.strategy == Strategy.LEAST_TALK_TIME:
            chosen = min(ready, key=lambda i: (talk(i), idle(i), i))
        elif q.strategy == Strategy.MOST_SKILLED:
            # Over every step of the queue, not just those reached: an agent's
            # score for a queue does not change while its contact waits.
            reqs = self._requirements(c, len(q.steps) - 1)

            def key(i: int) -> tuple[int, int, int]:
                sk = agents[i].skills
                best = max(sum(sk[s] for s in r) for r in reqs if _meets(sk, r))
                return (-best, idle(i), i)

            chosen = min(ready, key=key)
        elif q.strategy == Strategy.RANDOM:
            self._rng, x = splitmix64(self._rng)
            chosen = sorted(ready)[x % len(ready)]
        else:  # LINEAR
            chosen = min(ready)
        return chosen

    def _offer(self, contact: int, agent: int) -> None:
        c = self._contacts[contact]
        q = self._queues[c.queue]
        a = self._agents[agent]
        a.contact = contact
        a.routable = 0  # out of every pool while it rings
        self._set_state(agent, AgentState.RESERVED, a.reason if a.cap is not None else 0)
        q.last_rr = agent
        self._decisions.append(Decision(DecisionKind.OFFER, self._now, contact, agent, c.queue))
        if c.state == ContactState.OFFERED:  # a parallel offer: one more rings
            c.ringing.append(agent)
            return
        c.state = ContactState.OFFERED
        c.agent = agent
        c.ringing = [agent]
        if q.ring_timeout_us > 0:
            self._add_timer(self._now + q.ring_timeout_us, RING, agent, contact)


# -- argument checks ------------------------------------------------------------------


def _meets(skills: Mapping[int, int], require: Mapping[int, int]) -> bool:
    return all(skills.get(s, 0) >= m for s, m in require.items())


def _check_skills(skills: Mapping[int, int]) -> dict[int, int]:
    out = {}
    for skill, level in dict(skills).items():
        if not 0 <= skill <= SKILL_MAX:
            raise ConfigError(f"skill {skill} out of [0, {SKILL_MAX}]")
        if not LEVEL_MIN <= level <= LEVEL_MAX:
            raise ConfigError(f"level {level} out of [{LEVEL_MIN}, {LEVEL_MAX}]")
        out[int(skill)] = int(level)
    return out


def _check_priority(priority: int) -> None:
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ConfigError(f"priority {priority} out of [{PRIORITY_MIN}, {PRIORITY_MAX}]")


def _check_duration(us: int) -> None:
    if not 0 <= us <= TIME_MAX:
        raise ConfigError(f"duration {us} must be in [0, {TIME_MAX}]")
