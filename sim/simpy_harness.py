"""The SimPy harness: the real router driven by an independent discrete-event model.

Callers (with patience), agents (handle times, not answering, logging out in the
middle of a contact, shifts) and the router's own clock are SimPy processes and
events. Every routing decision is the real router's (:class:`agner.Router`,
through its Python API), made in SimPy's virtual time, counted in integer
microseconds. Variates come from a numpy ``Generator(seed)``: the streams are
not those of the fast engine (agner.sim.engine), so the two agree statistically,
not exactly.

:func:`simulate_simpy` takes the arguments of :func:`agner.sim.engine.simulate`
and returns the same :class:`~agner.sim.engine.SimResult`, with the same figures
and the same definitions (see agner.sim.engine). Faults may be injected:

- ``no_answer_prob``: an offered agent does not answer; after ``ring_s`` the
  harness calls ``no_answer`` (the contact goes back to its queue, the agent to
  NOT_READY(RONA)) and the agent is made ready again after ``rona_break_s``;
- ``logout_prob``: an agent logs out in the middle of a contact: the contact is
  completed first (the router refuses a logout while BUSY), then the agent logs
  out and logs back in after ``logout_break_s`` (a multi-channel agent that still
  holds other contacts then stays);
- ``burst = (start_s, end_s, factor)``: arrival rates are multiplied by `factor`
  in that window.

With ``check=True`` (the default) the harness checks, as it goes and at the end,
that every contact ends in exactly one terminal state, that no contact is offered
to two agents at once or answered twice, that no classic agent holds two
contacts and no multi-channel agent more than its capacity on a channel or a
contact of a channel another one it holds closes (docs/ROUTING.md), and
that per queue offered = answered + abandoned + still in the system (contacts
arrived after the warm-up), and that its own books match the router's. A
violation raises AssertionError.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from agner.core._api import (
    REASON_RONA,
    AgentState,
    Channel,
    ContactState,
    DecisionKind,
    RouterError,
)
from agner.core.router import Router
from agner.sim.engine import (
    AgentGroup,
    Dist,
    QueueLoad,
    SimResult,
    _figures,
    _ratio,
    add_queue_load,
    contacts_held,
    occupancy_by_queue,
    rate_profiles,
)
from agner.sim.scenario import Scenario, run_arguments

__all__ = [
    "Faults",
    "SimpyCenter",
    "run_scenario_simpy",
    "simulate_simpy",
]

_US = 1_000_000
REASON_SHIFT_END = 1  # as in core/loop.pyx
REASON_LOGOUT = 2  # an agent about to log out in the middle of a contact

_COUNTS = (
    "offered",
    "answered",
    "abandoned",
    "delayed",
    "answered_within",
    "overflowed",
    "voicemail",
    "rejected",
    "timed_out",
    "callbacks",
    "wait_answered_s",
    "wait_abandoned_s",
    "wait_diverted_s",
)
# The decisions that end a contact unanswered, and the counter each one books.
_ENDS = {
    DecisionKind.VOICEMAIL: "voicemail",
    DecisionKind.REJECT: "rejected",
    DecisionKind.TIMEOUT: "timed_out",
}


def _us(seconds: float) -> int:
    return max(0, round(seconds * _US))


def _dur(seconds: float) -> int:
    # A drawn duration, at least 1 us (as the fast engine's), so that what
    # follows an event is strictly later.
    return max(1, round(seconds * _US))


@dataclass
class _Contact:
    queue: int  # the queue it arrived in: its statistics stay there
    arrival: int
    interval: int
    counted: bool
    state: str = "waiting"  # waiting, offered, active, completed, abandoned, ended
    agent: int = -1
    answered: bool = False
    event: Any = None  # the caller's "answered" event
    now_in: int = -1  # the queue it is in now (it changes when it overflows)
    callback: bool = False  # the caller hung up and waits to be called back
    ewt: int | None = None  # the router's estimated wait when it arrived


@dataclass
class _Agent:
    group: AgentGroup
    off_shift: bool = False
    # The contacts offered to or handled by the agent (a classic agent: at most one).
    holding: list[int] = field(default_factory=list)
    breaks: int = 0  # generation of the current break, to ignore stale ones
    # Contacts held (ringing, answered, in wrap-up) x time: `held` since `since`.
    held_area: int = 0
    held: int = 0
    since: int = 0


# What a multi-channel agent's contact of each channel closes when the group
# gives no `blocks` (docs/ROUTING.md): voice and callback close every channel,
# chat and e-mail close voice and callback. Written out here, not read from the
# router, so that the check is independent of it.
_DEFAULT_BLOCKS = {
    Channel.VOICE: tuple(Channel),
    Channel.CALLBACK: tuple(Channel),
    Channel.CHAT: (Channel.VOICE, Channel.CALLBACK),
    Channel.EMAIL: (Channel.VOICE, Channel.CALLBACK),
}


@dataclass
class Faults:
    """Faults injected in the model (see the module's docstring)."""

    no_answer_prob: float = 0.0
    ring_s: float = 10.0
    rona_break_s: float = 60.0
    logout_prob: float = 0.0
    logout_break_s: float = 300.0
    burst: tuple[float, float, float] | None = None


class SimpyCenter:
    """One run of a center in SimPy; :meth:`run` gives the SimResult.

    After the run, ``rona``, ``fault_logouts``, ``in_system`` (per queue, counted
    contacts still waiting, ringing or in service at the end) and ``r`` (the router)
    are there to look at.
    """

    def __init__(
        self,
        queues: Sequence[QueueLoad],
        groups: Sequence[AgentGroup],
        *,
        seed: int = 0,
        warmup_s: float = 0.0,
        interval_s: float | None = None,
        faults: Faults | None = None,
        check: bool = True,
        record_ewt: bool = False,
    ) -> None:
        if not queues or not groups:
            raise ValueError("a center needs at least one queue and one agent group")
        self.queues = list(queues)
        self.groups = list(groups)
        self.faults = faults or Faults()
        f = self.faults
        if not (0 <= f.no_answer_prob <= 1 and 0 <= f.logout_prob <= 1):
            raise ValueError("no_answer_prob and logout_prob must be in [0, 1]")
        if f.burst is not None and not (0 <= f.burst[0] < f.burst[1] and f.burst[2] >= 0):
            raise ValueError("burst: (start_s, end_s, factor) with start_s < end_s, factor >= 0")
        self.check = check
        # With record_ewt: (estimated wait at arrival, actual wait) in microseconds
        # of every counted contact that had to wait and was answered.
        self.ewt_samples: list[tuple[int, int]] | None = [] if record_ewt else None
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.env = simpy.Environment()
        self.r = Router(seed=seed)
        self.warmup = _us(warmup_s)
        self.rates = rate_profiles(queues, interval_s)
        n_int = max(len(x) for x in self.rates)
        self.n_int = n_int
        self.interval_s = interval_s
        self.interval_us = _us(interval_s) if interval_s else 0
        self.thresholds = [_us(q.sl_threshold_s) for q in queues]
        self.stats = [[dict.fromkeys(_COUNTS, 0.0) for _ in range(n_int)] for _ in queues]
        for q in queues:
            add_queue_load(self.r, q)
        self.members: dict[str, list[int]] = {}
        self.agents: list[_Agent] = []
        self.shifts: list[tuple[int, int, int]] = []
        for g in groups:
            if g.count < 0:
                raise ValueError(f"group {g.name!r}: count must be >= 0")
            ids = g.add_agents(self.r)
            self.members[g.name] = ids
            for a in ids:
                self.agents.append(_Agent(g))
                self.shifts += [(a, _us(s0), _us(s1)) for s0, s1 in g.shifts]
        self.contacts: dict[int, _Contact] = {}
        self.counted_arrivals = 0
        self.all_arrivals = 0
        self.all_answered = 0
        self.all_abandoned = 0
        self.all_diverted = 0  # ended by a queue limit
        self.completed = [0] * len(queues)  # counted contacts answered and completed
        self.rona = 0
        self.fault_logouts = 0
        self.events = 0
        self.in_system: dict[str, int] = {}
        self.clock_target: int | None = None
        self.poke: simpy.Event = self.env.event()
        self.max_arrivals: int | None = None
        self.stop: simpy.Event = self.env.event()
        self.at_warmup: dict[str, tuple[int, int]] = {}
        self.held_at_warmup: dict[str, int] = {}
        self._pending_touch: set[int] = set()

    # -- the router, called in SimPy's time ------------------------------------

    @property
    def now(self) -> int:
        return max(int(self.env.now), self.r.now)

    def _after_call(self, *agents: int) -> None:
        # Decisions the call caused, then wake the clock if its deadline moved;
        # `agents`: those the call was about (what they hold may have changed).
        self._pending_touch.update(agents)
        while True:
            decisions = self.r.take_decisions()
            if not decisions:
                break
            for d in decisions:
                self.events += 1
                self._touch_after(d)
                if d.kind == DecisionKind.OFFER:
                    if self.r.agent_contact(d.agent) == d.contact:
                        self._offer(d.agent, d.contact, d.queue)
                    # else a parallel offer another agent has already answered
                elif d.kind == DecisionKind.RELEASE:
                    pass  # that agent's ringing stopped: the router made it ready
                elif d.kind == DecisionKind.WRAP_UP_END:
                    self._settle(d.agent)
                elif d.kind in (DecisionKind.OVERFLOW, DecisionKind.CALLBACK) or d.kind in _ENDS:
                    self._divert(d.kind, d.contact, d.queue, d.time)
                else:  # RONA: no ring timeout is set, the harness calls no_answer
                    raise AssertionError(f"unexpected decision {d}")
        for a in sorted(self._pending_touch):
            self._touch(a)
        self._pending_touch.clear()
        dl = self.r.next_deadline()
        if dl != self.clock_target and not self.poke.triggered:
            self.poke.succeed()

    def _touch_after(self, d: Any) -> None:
        # An agent's holdings may change while a decision is handled (an offer
        # accepted, a leave after a wrap-up): booked once the batch is done.
        if d.agent >= 0:
            self._pending_touch.add(d.agent)

    def _touch(self, a: int) -> None:
        # Books what the agent held since its last change; called at the time of
        # every call or decision that may have changed it.
        ag = self.agents[a]
        now = self.now
        ag.held_area += ag.held * (now - ag.since)
        ag.since = now
        if ag.group.capacity is None:
            busy = (AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP)
            ag.held = int(self.r.agent_state(a) in busy)
        else:
            ag.held = sum(self.r.agent_load(a))

    def _held_us(self, agents: Sequence[int], now: int) -> int:
        return sum(
            self.agents[a].held_area + self.agents[a].held * (now - self.agents[a].since)
            for a in agents
        )

    def _divert(self, kind: DecisionKind, c: int, q: int, t: int) -> None:
        # A queue limit moved the contact on, made it a callback, or ended it.
        rec = self.contacts[c]
        if self.check:
            assert rec.state == "waiting", f"contact {c} diverted while {rec.state}"
        s = self.stats[rec.queue][rec.interval]
        if kind == DecisionKind.OVERFLOW:
            rec.now_in = q
            if rec.counted:
                s["overflowed"] += 1
            return
        if kind == DecisionKind.CALLBACK:
            rec.callback = True  # its caller's patience no longer applies
            if rec.counted:
                s["callbacks"] += 1
            return
        rec.state = "ended"
        del self.contacts[c]
        self.all_diverted += 1
        if rec.counted:
            s[_ENDS[kind]] += 1
            if t > rec.arrival:
                s["delayed"] += 1
            s["wait_diverted_s"] += (t - rec.arrival) * 1e-6

    def _offer(self, a: int, c: int, q: int) -> None:
        rec = self.contacts[c]
        ag = self.agents[a]
        if self.check:
            assert rec.state == "waiting", f"contact {c} offered while {rec.state}"
            assert rec.now_in == q
        rec.state, rec.agent = "offered", a
        ag.holding.append(c)
        if self.check:
            self._check_load(a, c)
        if self.faults.no_answer_prob and self.rng.random() < self.faults.no_answer_prob:
            self.env.process(self._ring_no_answer(a, c))
            return
        now = self.now
        self.r.accept(a, c, now)  # produces no decision
        if self.check:
            assert not rec.answered, f"contact {c} answered twice"
        rec.state, rec.answered = "active", True
        self.all_answered += 1
        q = rec.queue  # statistics and handle time: those of the queue called
        if self.ewt_samples is not None and rec.ewt is not None:
            self.ewt_samples.append((rec.ewt, now - rec.arrival))
        if rec.counted:
            wait = now - rec.arrival
            s = self.stats[q][rec.interval]
            s["answered"] += 1
            s["wait_answered_s"] += wait * 1e-6
            if wait > 0:
                s["delayed"] += 1
            if wait <= self.thresholds[q]:
                s["answered_within"] += 1
        if rec.event is not None:
            rec.event.succeed()
        self.env.process(self._serve(a, c, q))

    def _check_load(self, a: int, c: int) -> None:
        # The agent was just offered c: within its capacity, nothing held closes it.
        ag = self.agents[a]
        assert len(set(ag.holding)) == len(ag.holding), f"agent {a} offered {c} twice"
        if ag.group.capacity is None:
            assert len(ag.holding) == 1, f"agent {a} offered {c} while holding {ag.holding[0]}"
            return
        load = self.r.agent_load(a)  # ringing, answered and in wrap-up
        blocks = ag.group.blocks or {}
        for ch in Channel:
            assert load[ch] <= ag.group.capacity.get(ch, 0), f"agent {a} over capacity: {load}"
            if not load[ch]:
                continue
            closed = blocks.get(ch, _DEFAULT_BLOCKS[ch])
            others = [x for x in closed if x != ch and load[x]]
            assert not others, f"agent {a} holds {ch.name} and {others}: {load}"

    def _leave(self, a: int) -> None:
        # An agent whose shift is over logs out as soon as it has no contact;
        # while it has one, a pending not-ready keeps new offers away.
        st = self.r.agent_state(a)
        if st == AgentState.LOGGED_OUT:
            return
        if st in (AgentState.BUSY, AgentState.RESERVED):
            self.r.set_not_ready(a, self.now, REASON_SHIFT_END)
        else:
            self.r.logout(a, self.now)

    def _settle(self, a: int) -> None:
        # After the agent was released: out of its shift, it leaves.
        if self.agents[a].off_shift:
            self._leave(a)

    def _release(self, a: int, c: int) -> None:
        ag = self.agents[a]
        if self.check:
            assert c in ag.holding, f"agent {a} releases {c} but holds {ag.holding}"
        ag.holding.remove(c)

    # -- processes ---------------------------------------------------------------

    def _clock(self) -> Generator[simpy.Event, Any, None]:
        # Fires the router's timers (wrap-up ends) at their deadlines.
        while True:
            dl = self.r.next_deadline()
            self.clock_target = dl
            if self.poke.triggered:
                self.poke = self.env.event()
            if dl is None:
                yield self.poke
                continue
            wait = max(0, dl - int(self.env.now))
            yield self.poke | self.env.timeout(wait)
            if int(self.env.now) >= dl and self.r.next_deadline() == dl:
                self.r.advance(max(dl, self.r.now))
                self.events += 1
                self._after_call()

    def _rate(self, q: int, t: int) -> float:
        rates = self.rates[q]
        x = rates[self._interval(t)] if len(rates) > 1 else rates[0]
        b = self.faults.burst
        if b is not None and _us(b[0]) <= t < _us(b[1]):
            x *= b[2]
        return x

    def _interval(self, t: int) -> int:
        if self.interval_us == 0:
            return 0
        return (t // self.interval_us) % self.n_int

    def _arrivals(self, q: int) -> Generator[simpy.Event, Any, None]:
        # Poisson arrivals by thinning at the highest rate (profile and burst).
        top = max(self.rates[q])
        b = self.faults.burst
        if b is not None:
            top *= max(1.0, b[2])
        if top <= 0:
            return
        while True:
            yield self.env.timeout(_dur(self.rng.exponential(1.0 / top)))
            t = int(self.env.now)
            x = self._rate(q, t)
            if x < top and self.rng.random() * top >= x:
                continue
            counted = t >= self.warmup
            if (
                counted
                and self.max_arrivals is not None
                and self.counted_arrivals >= self.max_arrivals
            ):
                if not self.stop.triggered:
                    self.stop.succeed()
                return
            self._arrive(q, t, counted)

    def _arrive(self, q: int, t: int, counted: bool) -> None:
        ql = self.queues[q]
        rec = _Contact(q, t, self._interval(t), counted, now_in=q)
        patience = _draw(self.rng, ql.patience) if ql.patience is not None else None
        if patience is not None:
            rec.event = self.env.event()
        self.all_arrivals += 1
        if counted:
            self.counted_arrivals += 1
            self.stats[q][rec.interval]["offered"] += 1
        c = self.r.arrive(q, t, channel=ql.channel)
        if self.check:
            assert c not in self.contacts, f"contact id {c} issued twice"
        self.contacts[c] = rec
        self.events += 1
        self._after_call()
        if (
            self.ewt_samples is not None
            and counted
            and rec.state == "waiting"
            and c in self.contacts
        ):
            rec.ewt = self.r.estimated_wait_us(c, t)
        if patience is not None and rec.state != "active":
            self.env.process(self._caller(c, rec, _dur(patience)))

    def _caller(self, c: int, rec: _Contact, patience_us: int) -> Generator[simpy.Event, Any, None]:
        # The caller's patience races the answer.
        yield rec.event | self.env.timeout(patience_us)
        if rec.state not in ("waiting", "offered") or rec.callback:
            return  # answered or ended meanwhile, or to be called back
        now = self.now
        ringing = rec.agent if rec.state == "offered" else -1
        self.r.abandon(c, now)
        rec.state = "abandoned"
        self.all_abandoned += 1
        del self.contacts[c]
        if rec.counted:
            s = self.stats[rec.queue][rec.interval]
            s["abandoned"] += 1
            s["delayed"] += 1
            s["wait_abandoned_s"] += (now - rec.arrival) * 1e-6
        if ringing >= 0:
            self._release(ringing, c)
            self._after_call(ringing)
            self._settle(ringing)
        self.events += 1
        self._after_call(*([ringing] if ringing >= 0 else []))

    def _serve(self, a: int, c: int, q: int) -> Generator[simpy.Event, Any, None]:
        # The agent talks for the handle time, then completes (wrap-up is the router's).
        yield self.env.timeout(_dur(_draw(self.rng, self.queues[q].handle)))
        now = self.now
        rec = self.contacts.pop(c)
        if self.check:
            assert rec.state == "active" and rec.agent == a, f"contact {c} completed twice"
        rec.state = "completed"
        if rec.counted:
            self.completed[q] += 1
        leaving = bool(self.faults.logout_prob) and self.rng.random() < self.faults.logout_prob
        # A multi-channel agent may not log out while it holds other contacts.
        leaving = leaving and self.agents[a].holding == [c]
        if leaving:
            # The router refuses a logout while BUSY: a pending not-ready keeps
            # new offers away, the contact is completed, then the agent logs out.
            self.r.set_not_ready(a, now, REASON_LOGOUT)
        self.r.complete(a, c, now)
        self._release(a, c)
        self.events += 1
        self._after_call(a)
        if leaving:
            if self.r.agent_state(a) != AgentState.LOGGED_OUT:
                self.r.logout(a, now)
            self.fault_logouts += 1
            self.agents[a].breaks += 1
            self.env.process(self._logout_break(a, self.agents[a].breaks))
        else:
            self._settle(a)
        self._after_call(a)

    def _ring_no_answer(self, a: int, c: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(_us(self.faults.ring_s))
        rec = self.contacts.get(c)
        if rec is None or rec.state != "offered" or rec.agent != a:
            return  # the caller hung up while it rang
        self.r.no_answer(a, c, self.now)
        self.rona += 1
        rec.state, rec.agent = "waiting", -1
        self._release(a, c)
        self.agents[a].breaks += 1
        self._after_call(a)
        if self.agents[a].off_shift:
            self._leave(a)
            self._after_call(a)
        else:
            self.env.process(self._rona_break(a, self.agents[a].breaks))

    def _rona_break(self, a: int, gen: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(_us(self.faults.rona_break_s))
        ag = self.agents[a]
        if ag.off_shift or ag.breaks != gen:
            return
        st = self.r.agent_stats(a, self.now)
        if st.state == AgentState.NOT_READY and st.reason == REASON_RONA:
            self.r.set_ready(a, self.now)
            self._after_call(a)
        elif ag.group.capacity is not None and st.state != AgentState.READY:
            # A multi-channel agent's RONA is its presence, hidden behind BUSY or
            # WRAP_UP while it holds other contacts: make it ready all the same
            # (refused if it already is).
            with contextlib.suppress(RouterError):
                self.r.set_ready(a, self.now)
            self._after_call(a)

    def _logout_break(self, a: int, gen: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(_us(self.faults.logout_break_s))
        ag = self.agents[a]
        if ag.off_shift or ag.breaks != gen:
            return
        if self.r.agent_state(a) == AgentState.LOGGED_OUT:
            self.r.login(a, self.now)
            self.r.set_ready(a, self.now)
            self._after_call(a)

    def _shift(self, a: int, start: int, end: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(start - int(self.env.now))
        ag = self.agents[a]
        ag.off_shift = False
        ag.breaks += 1  # a shift start ends any break
        now = self.now
        st = self.r.agent_state(a)
        if st == AgentState.LOGGED_OUT:
            self.r.login(a, now)
            self.r.set_ready(a, now)
        elif st == AgentState.NOT_READY:
            self.r.set_ready(a, now)
        elif st != AgentState.READY:
            with contextlib.suppress(RouterError):
                self.r.set_ready(a, now)  # cancels a pending not-ready, if any
        self._after_call(a)
        yield self.env.timeout(end - int(self.env.now))
        ag.off_shift = True
        self._leave(a)
        self._after_call(a)

    def _snapshot(self) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.warmup)
        self.at_warmup = {n: self._busy_ready(ids, self.now) for n, ids in self.members.items()}
        self.held_at_warmup = {n: self._held_us(ids, self.now) for n, ids in self.members.items()}

    def _busy_ready(self, agents: Sequence[int], now: int) -> tuple[int, int]:
        busy = ready = 0
        for a in agents:
            t = self.r.agent_stats(a, now).time_in_state_us
            busy += t[AgentState.RESERVED] + t[AgentState.BUSY] + t[AgentState.WRAP_UP]
            ready += t[AgentState.READY]
        return busy, ready

    # -- the run -------------------------------------------------------------------

    def run(self, *, arrivals: int | None = None, duration_s: float | None = None) -> SimResult:
        """Run until `arrivals` contacts arrived after the warm-up, or until
        virtual time `duration_s`, whichever comes first."""
        if arrivals is None and duration_s is None:
            raise ValueError("give arrivals or duration_s")
        if arrivals is not None and arrivals < 1:
            raise ValueError(f"arrivals must be >= 1, got {arrivals}")
        if duration_s is not None and not duration_s > self.warmup / _US:
            raise ValueError("duration_s must be longer than the warm-up")
        self.max_arrivals = arrivals
        shifted = {a for a, _, _ in self.shifts}
        for a in range(len(self.agents)):
            if a not in shifted:
                self.r.login(a, 0)
                self.r.set_ready(a, 0)
        self.r.take_decisions()
        for a, s0, s1 in self.shifts:
            self.env.process(self._shift(a, s0, s1))
        self.env.process(self._clock())
        for q in range(len(self.queues)):
            self.env.process(self._arrivals(q))
        if self.warmup:
            self.env.process(self._snapshot())
        else:
            self.at_warmup = {n: (0, 0) for n in self.members}
        until: simpy.Event = self.stop
        if duration_s is not None:
            horizon = self.env.timeout(_us(duration_s))
            until = self.stop | horizon
        start = time.perf_counter()
        self.env.run(until=until)
        wall = time.perf_counter() - start
        end = self.now
        if self.check:
            self._check_end()
        return self._result(end, wall)

    def _check_end(self) -> None:
        r = self.r
        for c, rec in self.contacts.items():
            want = {"waiting": ContactState.WAITING, "offered": ContactState.OFFERED}.get(
                rec.state, ContactState.ACTIVE
            )
            assert rec.state in ("waiting", "offered", "active"), (c, rec.state)
            assert r.contact_state(c) == want, f"contact {c}: router {r.contact_state(c)}"
            if rec.state != "waiting":
                assert r.contact_agent(c) == rec.agent
        for a, ag in enumerate(self.agents):
            held = r.agent_contacts(a)
            assert sorted(held) == sorted(ag.holding), f"agent {a}: {held} vs {ag.holding}"
        held_by = [c for ag in self.agents for c in ag.holding]
        assert len(held_by) == len(set(held_by)), "a contact held by two agents"
        # The books of contacts held: a classic agent holds one exactly while
        # reserved, busy or in wrap-up; a multi-channel one at least while talking.
        for a, ag in enumerate(self.agents):
            st = r.agent_stats(a, self.now)
            area = self._held_us([a], self.now)
            t = st.time_in_state_us
            if ag.group.capacity is None:
                busy = t[AgentState.RESERVED] + t[AgentState.BUSY] + t[AgentState.WRAP_UP]
                assert area == busy, f"agent {a}: held {area} us, busy {busy} us"
            else:
                assert area >= st.talk_time_us, f"agent {a}: held {area} us < its talk time"
        tot = [r.queue_stats(q, self.now) for q in range(len(self.queues))]
        # The router counts a contact in each queue it enters.
        assert sum(s.offered for s in tot) == self.all_arrivals + sum(s.overflowed for s in tot)
        assert sum(s.answered for s in tot) == self.all_answered
        assert sum(s.abandoned for s in tot) == self.all_abandoned
        ended = sum(s.voicemail + s.rejected + s.timed_out for s in tot)
        assert ended == self.all_diverted, "contacts ended by a limit"
        for q, ql in enumerate(self.queues):
            live = [rec for rec in self.contacts.values() if rec.queue == q and rec.counted]
            n = {k: sum(st[k] for st in self.stats[q]) for k in _COUNTS}
            active = sum(1 for rec in live if rec.state == "active")
            assert n["answered"] == self.completed[q] + active, f"{ql.name}: answered"
            gone = n["voicemail"] + n["rejected"] + n["timed_out"]
            assert n["offered"] == n["answered"] + n["abandoned"] + gone + len(live) - active, (
                f"{ql.name}: offered != answered + abandoned + ended by a limit + still in"
            )
            self.in_system[ql.name] = len(live)

    def _result(self, end: int, wall: float) -> SimResult:
        per_queue = {
            q.name: {k: sum(s[k] for s in self.stats[i]) for k in _COUNTS}
            for i, q in enumerate(self.queues)
        }
        total = {k: sum(c[k] for c in per_queue.values()) for k in _COUNTS}
        occupancy: dict[str, float | None] = {}
        group_time: dict[str, tuple[int, int]] = {}
        held = {
            name: self._held_us(ids, end) - self.held_at_warmup.get(name, 0)
            for name, ids in self.members.items()
        }
        for name, ids in self.members.items():
            busy, ready = self._busy_ready(ids, end)
            busy -= self.at_warmup.get(name, (0, 0))[0]
            ready -= self.at_warmup.get(name, (0, 0))[1]
            group_time[name] = (busy, busy + ready)
            occupancy[name] = _ratio(busy, busy + ready)
        occupancy["overall"] = _ratio(
            sum(b for b, _ in group_time.values()), sum(a for _, a in group_time.values())
        )
        overall = _figures(_ints(total))
        overall["occupancy"] = occupancy["overall"]
        intervals = []
        if self.interval_s and self.n_int > 1:
            for i in range(self.n_int):
                counts = {q.name: self.stats[k][i] for k, q in enumerate(self.queues)}
                both = {key: sum(c[key] for c in counts.values()) for key in _COUNTS}
                intervals.append(
                    {
                        "start_s": i * self.interval_s,
                        "queues": {name: _figures(_ints(c)) for name, c in counts.items()},
                        "overall": _figures(_ints(both)),
                    }
                )
        by_queue = {name: _figures(_ints(c)) for name, c in per_queue.items()}
        for name, occ in occupancy_by_queue(self.queues, self.groups, group_time).items():
            by_queue[name]["occupancy"] = occ
        return SimResult(
            queues=by_queue,
            overall=overall,
            intervals=intervals,
            occupancy=occupancy,
            arrivals=int(total["offered"]),
            events=self.events,
            simulated_s=(end - self.warmup) / _US,
            wall_s=wall,
            contacts_held=contacts_held(held, group_time),
        )


def _ints(c: Mapping[str, float]) -> dict[str, float | int]:
    # Counts as ints, as the fast engine reports them.
    return {k: (v if k.startswith("wait") else int(v)) for k, v in c.items()}


def _draw(rng: np.random.Generator, d: Dist) -> float:
    kind, p0, p1, samples = d.spec()
    if kind == "exponential":
        return float(rng.exponential(p0))
    if kind == "deterministic":
        return p0
    if kind == "lognormal":
        return float(rng.lognormal(p0, p1))
    if kind == "gamma":
        return float(rng.gamma(p0, p1))
    assert samples is not None
    return float(samples[rng.integers(len(samples))])


def simulate_simpy(
    queues: Sequence[QueueLoad],
    groups: Sequence[AgentGroup],
    *,
    arrivals: int | None = None,
    duration_s: float | None = None,
    warmup_s: float = 0.0,
    seed: int = 0,
    interval_s: float | None = None,
    no_answer_prob: float = 0.0,
    ring_s: float = 10.0,
    rona_break_s: float = 60.0,
    logout_prob: float = 0.0,
    logout_break_s: float = 300.0,
    burst: tuple[float, float, float] | None = None,
    check: bool = True,
) -> SimResult:
    """Route `queues`' load to `groups` in SimPy and measure it, as
    :func:`agner.sim.engine.simulate` does (same stop rules, same figures).

    Raises:
        ValueError: no stop given, a negative rate, an empty center, bad faults.
        AssertionError: with `check`, a broken invariant.
    """
    if arrivals is None and duration_s is None:
        raise ValueError("give arrivals or duration_s")
    center = SimpyCenter(
        queues,
        groups,
        seed=seed,
        warmup_s=warmup_s,
        interval_s=interval_s,
        faults=Faults(no_answer_prob, ring_s, rona_break_s, logout_prob, logout_break_s, burst),
        check=check,
    )
    return center.run(arrivals=arrivals, duration_s=duration_s)


def run_scenario_simpy(
    sc: Scenario,
    calls: int | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    **faults: Any,
) -> SimResult:
    """Simulate a checked scenario in SimPy; arguments override the file's values.
    `faults`: the fault and check arguments of :func:`simulate_simpy`."""
    queues, groups, kwargs = run_arguments(sc, calls, duration_s, seed)
    return simulate_simpy(queues, groups, **kwargs, **faults)
