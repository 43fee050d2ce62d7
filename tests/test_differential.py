"""Differential tests: random event streams must give the core and the reference the same
decisions, states, errors and statistics.

One driver (:class:`Differential`) applies each call to an ``agner.Router`` and a
:class:`ReferenceRouter` and compares everything observable after it. It chooses its
calls from the routers' current state (mostly valid ones, some invalid) through a small
chooser interface, so the same driver runs under Hypothesis (shrinkable) and under a
plain seeded ``random.Random`` (long streams, large populations).

Contact ids differ between the two routers; they are matched by arrival order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from reference_router import ReferenceRouter

from agner.core._api import AgentState, Channel, ContactState, DecisionKind, Strategy

X = TypeVar("X")

NEVER_ISSUED = (1 << 62) + 12345
SKILLS = range(6)
RING_TIMEOUTS = (0, 3, 10, 25, 60)
SL_THRESHOLDS = (0, 5, 20, 100)
WRAP_UPS = (0, 0, 2, 7, 20)
LEVELS = range(1, 11)
MIN_LEVELS = (1, 1, 2, 3, 5, 8)  # requirements mostly easy to meet
LOGGED_OUT, NOT_READY, READY = AgentState.LOGGED_OUT, AgentState.NOT_READY, AgentState.READY
RESERVED, BUSY, WRAP_UP = AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP
WAITING, OFFERED = ContactState.WAITING, ContactState.OFFERED
MIX = (Channel.CHAT, Channel.CHAT, Channel.EMAIL, Channel.VOICE, Channel.CALLBACK)
ENDS = {DecisionKind.REJECT, DecisionKind.TIMEOUT, DecisionKind.VOICEMAIL}


class Chooser:
    """Where the driver's choices come from: Hypothesis data or a seeded Random."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def pick(self, seq: Sequence[X]) -> X:
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, percent: int) -> bool:
        return self.int(0, 99) < percent


class RandomChooser(Chooser):
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)


class DataChooser(Chooser):
    def __init__(self, data: Any) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return int(self.data.draw(st.integers(lo, hi)))


class Cid(int):
    """A contact argument, given as the reference's id; translated for the core."""


def _show(v: Any) -> str:
    """A value as it would be written in a reproduction script."""
    if isinstance(v, Cid):
        return repr(int(v))
    if isinstance(v, (Strategy, Channel)):
        return f"{type(v).__name__}.{v.name}"
    return repr(v)


def _hook(info: Any) -> Any:
    """A deterministic custom strategy: by priority, the highest or lowest id, or none."""
    if info.priority % 3 == 0:
        return max(info.candidates)
    if info.priority % 3 == 1:
        return min(info.candidates)
    return None  # not a candidate: the queue's strategy decides


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # any class: a core raising e.g. OverflowError is a mismatch
        return ("error", type(exc).__name__)


class Differential:
    """A core Router and a ReferenceRouter driven side by side."""

    def __init__(self, seed: int, max_agents: int, max_queues: int, max_live: int) -> None:
        from agner import Router

        self.core = Router(seed=seed)
        self.ref = ReferenceRouter(seed=seed)
        self.max_agents = max_agents
        self.max_queues = max_queues
        self.max_live = max_live
        self.core_ids: list[int] = []  # reference id (arrival order) -> core id
        self.to_ref: dict[int, int] = {-1: -1}
        self.live: set[int] = set()  # reference ids of live contacts
        self.dead: list[int] = []
        self.t = 0
        # Load alternates between busy spells (contacts queue up, agents never idle)
        # and quiet ones (queues drain, several agents idle: strategies get to choose).
        self.busy = True
        self.steps = 0
        self.tenant_of_queue: list[int] = []
        self.tenant_of_agent: list[int] = []
        self.hooked: list[int] = []  # queues with a decision hook
        self.capacity: list[list[int] | None] = []  # per agent; None: the classic agent
        self.ended: set[int] = set()  # contacts ended by a decision
        self.log: list[str] = [f"r = Router(seed={seed})"]

    # -- calling both -------------------------------------------------------------------

    def _core_arg(self, x: Any) -> Any:
        if isinstance(x, Cid):
            return self.core_ids[x] if 0 <= x < len(self.core_ids) else int(x)
        return x

    def both(self, name: str, *args: Any, **kw: Any) -> Any:
        shown = ", ".join(_show(a) for a in args)
        shown += "".join(f", {k}={_show(v)}" for k, v in kw.items())
        self.log.append(f"r.{name}({shown})")
        core_args = [self._core_arg(a) for a in args]
        got = _outcome(lambda: getattr(self.core, name)(*core_args, **kw))
        want = _outcome(lambda: getattr(self.ref, name)(*args, **kw))
        if name == "arrive" and got[0] == want[0] == "ok":
            core_id, ref_id = got[1], want[1]
            assert ref_id == len(self.core_ids)
            if core_id in self.to_ref:
                self.fail(f"core reused contact id {core_id}")
            self.core_ids.append(core_id)
            self.to_ref[core_id] = ref_id
            self.live.add(ref_id)
            got = want
        if got != want:
            self.fail(f"{name}: core {got}, reference {want}")
        return want[1] if want[0] == "ok" else None

    def _ids(self, core_ids: Any) -> tuple[Any, ...]:
        return tuple(self.to_ref.get(c, ("unmapped", c)) for c in core_ids)

    def fail(self, msg: str) -> None:
        tail = "\n    ".join(self.log[-60:])
        raise AssertionError(f"{msg}\n  after (last calls):\n    {tail}")

    def check(self, msg: str, core: Any, ref: Any) -> None:
        if core != ref:
            self.fail(f"{msg}: core {core!r}, reference {ref!r}")

    # -- comparing everything observable ---------------------------------------------------

    def compare(self, stats: bool) -> None:
        core, ref = self.core, self.ref
        got = [
            (
                int(d.kind),
                d.time,
                self.to_ref.get(d.contact, ("unmapped", d.contact)),
                d.agent,
                d.queue,
            )
            for d in core.take_decisions()
        ]
        want = [tuple(int(x) for x in d) for d in ref.take_decisions()]
        self.check("decisions", got, want)
        # Each contact ends once: nothing is decided about it after its end.
        for kind, _, contact, _, _ in want:
            if contact in self.ended:
                self.fail(f"decision {kind} about contact {contact}, which had ended")
            if kind in ENDS:
                self.ended.add(contact)
        self.check("now", core.now, ref.now)
        self.check("n_agents", core.n_agents, ref.n_agents)
        self.check("n_queues", core.n_queues, ref.n_queues)
        self.check("next_deadline", core.next_deadline(), ref.next_deadline())
        for a in range(ref.n_agents):
            self.check(f"agent_state({a})", core.agent_state(a), ref.agent_state(a))
            c = core.agent_contact(a)
            self.check(
                f"agent_contact({a})",
                None if c is None else self.to_ref.get(c),
                ref.agent_contact(a),
            )
        for c in sorted(self.live):
            cc = self.core_ids[c]
            want_state = _outcome(lambda c=c: ref.contact_state(c))
            self.check(
                f"contact_state({c})", _outcome(lambda cc=cc: core.contact_state(cc)), want_state
            )
            if want_state[0] == "error":
                self.live.discard(c)
                self.dead.append(c)
                continue
            self.check(f"contact_agent({c})", core.contact_agent(cc), ref.contact_agent(c))
            self.check(f"contact_queue({c})", core.contact_queue(cc), ref.contact_queue(c))
            self.check(f"contact_channel({c})", core.contact_channel(cc), ref.contact_channel(c))
        # No contact assigned twice: an answered contact is held by one agent (a
        # contact may ring several agents at once, all RESERVED, while OFFERED);
        # no agent over its capacity on any channel.
        held = [c for a in range(ref.n_agents) for c in ref.agent_contacts(a)]
        ringing = {c for a in range(ref.n_agents) if (c := ref.agent_contact(a)) is not None}
        answered = [c for c in held if c not in ringing]
        if len(answered) != len(set(answered)) or set(answered) & ringing:
            self.fail(f"a contact assigned twice: {sorted(held)}")
        for a in range(ref.n_agents):
            self.check(
                f"agent_contacts({a})", self._ids(core.agent_contacts(a)), ref.agent_contacts(a)
            )
            load = ref.agent_load(a)
            self.check(f"agent_load({a})", core.agent_load(a), load)
            cap = self.capacity[a] if a < len(self.capacity) else None
            if cap is not None and any(n > m for n, m in zip(load, cap, strict=True)):
                self.fail(f"agent {a} over capacity: {load} > {cap}")
        for c in held:
            if c not in self.live or c in self.ended:
                self.fail(f"an agent holds contact {c}, which has ended")
        if stats:
            at = self.t
            for c in sorted(self.live):
                cc = self.core_ids[c]
                for name, args in (("position", ()), ("estimated_wait_us", (at,))):
                    got = _outcome(lambda n=name, a=args, cc=cc: getattr(core, n)(cc, *a))
                    want = _outcome(lambda n=name, a=args, c=c: getattr(ref, n)(c, *a))
                    self.check(f"{name}({c})", got, want)
            # Every contact that entered a queue is in exactly one place.
            ringing = [0] * ref.n_queues
            for c in self.live:
                if ref.contact_state(c) == OFFERED:
                    ringing[ref.contact_queue(c)] += 1
            for q in range(ref.n_queues):
                s = core.queue_stats(q, at)
                out = s.answered + s.abandoned + s.overflowed + s.voicemail
                out += s.rejected + s.timed_out
                if s.offered != out + s.waiting + ringing[q]:
                    self.fail(f"queue {q}: offered {s.offered} != {s} + ringing {ringing[q]}")
            for q in range(ref.n_queues):
                self.check(
                    f"queue_stats({q}, {at})", core.queue_stats(q, at), ref.queue_stats(q, at)
                )
            for a in range(ref.n_agents):
                self.check(
                    f"agent_stats({a}, {at})", core.agent_stats(a, at), ref.agent_stats(a, at)
                )

    def populate(self, ch: Chooser, n_queues: int, n_agents: int) -> None:
        """Queues (every strategy first), agents, most of them logged in and READY."""
        strategies = list(Strategy)
        for i in range(n_queues):
            self.add_queue(ch, strategies[i] if i < len(strategies) else None)
        for _ in range(n_agents):
            self.add_agent(ch)
        for a in range(n_agents):
            if ch.chance(90):
                self.both("login", a, 0)
                if ch.chance(80):
                    self.both("set_ready", a, 0)
        self.compare(stats=True)

    # -- choosing calls -----------------------------------------------------------------------

    def skills(self, ch: Chooser, lo: int, hi: int, levels: Sequence[int]) -> dict[int, int]:
        n = ch.int(lo, hi)
        return {ch.pick(SKILLS): ch.pick(levels) for _ in range(n)}

    def add_queue(self, ch: Chooser, strategy: Strategy | None = None) -> None:
        require = self.skills(ch, 0, 2, MIN_LEVELS)
        kw: dict[str, Any] = {
            "strategy": ch.pick(list(Strategy)) if strategy is None else strategy,
            "priority": ch.pick((0, 0, 0, -4, 5, 12)),
            "ring_timeout_us": ch.pick(RING_TIMEOUTS),
            "sl_threshold_us": ch.pick(SL_THRESHOLDS),
        }
        # The routing of issue 3, each in a share of the queues.
        if ch.chance(35):
            # Requirement steps: strict at first, then widening (sometimes to a
            # requirement unrelated to the first).
            after = 0
            steps = [(0, require)]
            for _ in range(ch.int(1, 2)):
                after += ch.pick((1, 4, 12, 30))
                steps.append((after, self.skills(ch, 0, 1, (1, 1, 2))))
            kw["steps"] = steps
            require = {}
        if ch.chance(30):
            kw["priority_weight_us"] = ch.pick((0, 1, 3, 10))
        if ch.chance(20):
            kw["parallel"] = ch.pick((0, 2, 3))
        if ch.chance(20):
            kw["handle_estimate_us"] = ch.pick((0, 7, 60))
        if ch.chance(25):
            kw["max_waiting"] = ch.int(1, 4)
        if ch.chance(25):
            kw["max_wait_us"] = ch.pick((5, 15, 40))
        if ch.chance(40):
            targets: list[Any] = ["voicemail", "callback"]
            targets += [q for q in range(self.ref.n_queues) if self.tenant_of_queue[q] == 0]
            kw["overflow"] = ch.pick(targets)
            if ch.chance(40):
                kw["when_unstaffed"] = ch.pick(("reject", "overflow"))
        elif ch.chance(15):
            kw["when_unstaffed"] = "reject"
        tenant = 1 if ch.chance(10) and "overflow" not in kw else 0
        if tenant:
            kw["tenant"] = tenant
        self.tenant_of_queue.append(tenant)
        q = self.both("add_queue", require or None, **kw)
        if q is not None and ch.chance(15):
            # A custom strategy through the decision hook (the same in both
            # routers), sometimes refusing to choose: the strategy decides then.
            self.both("set_decision_hook", q, _hook, budget_us=10**9)
            self.hooked.append(q)

    def add_agent(self, ch: Chooser) -> None:
        kw: dict[str, Any] = {"wrap_up_us": ch.pick(WRAP_UPS)}
        if ch.chance(10):
            kw["tenant"] = 1
        cap = None
        if ch.chance(30):
            # A multi-channel agent: some voice, chats, e-mails, callbacks.
            cap = {
                Channel.VOICE: ch.pick((0, 1, 1)),
                Channel.CHAT: ch.pick((0, 1, 2, 3)),
                Channel.EMAIL: ch.pick((0, 1, 2)),
                Channel.CALLBACK: ch.pick((0, 1)),
            }
            cap[Channel.CHAT] = cap[Channel.CHAT] or 1
            kw["capacity"] = cap
            if ch.chance(30):
                kw["blocks"] = {Channel.CHAT: ch.pick(([], [Channel.EMAIL], list(Channel)))}
        if self.both("add_agent", self.skills(ch, 1, 4, LEVELS), **kw) is not None:
            self.tenant_of_agent.append(kw.get("tenant", 0))
            self.capacity.append(None if cap is None else [cap[c] for c in Channel])

    def agents_in(self, *states: AgentState) -> list[int]:
        return [a for a in range(self.ref.n_agents) if self.ref.agent_state(a) in states]

    def any_agent(self, ch: Chooser) -> int:
        return ch.int(0, self.ref.n_agents - 1)

    def agent_among(self, ch: Chooser, *states: AgentState) -> int:
        """An agent in one of `states` if there is one, else any agent."""
        found = self.agents_in(*states)
        return ch.pick(found) if found else self.any_agent(ch)

    def tick(self, ch: Chooser) -> None:
        roll = ch.int(0, 99)
        if roll < 50:
            return
        if roll < 75:
            self.t += ch.int(1, 5)
        elif roll < 90:
            self.t += ch.int(6, 40)
        else:
            deadline = self.ref.next_deadline()
            if deadline is None:
                self.t += ch.int(40, 150)
            else:
                self.t = max(self.t, deadline + ch.int(0, 2) - 1)

    def step(self, ch: Chooser) -> None:
        """Move time on (often not at all), make one call, compare everything."""
        self.steps += 1
        if ch.chance(1):
            self.busy = not self.busy
        self.tick(ch)
        t = self.t
        by_state: dict[AgentState, list[int]] = {s: [] for s in AgentState}
        for a in range(self.ref.n_agents):
            by_state[self.ref.agent_state(a)].append(a)
        logged_in = [a for s, ids in by_state.items() if s != LOGGED_OUT for a in ids]
        waiting = [c for c in sorted(self.live) if self.ref.contact_state(c) == WAITING]
        offered = [c for c in sorted(self.live) if self.ref.contact_state(c) == OFFERED]
        # (weight, action): only actions that apply now, plus a share of invalid calls.
        actions: list[tuple[int, Callable[[], None]]] = [
            (4, lambda: self.both("advance", t)),
            (5, lambda: self.invalid(ch, t)),
        ]
        if len(self.live) < self.max_live:
            actions.append((15 if self.busy else 4, lambda: self.arrive(ch, t)))
        if self.ref.n_queues < self.max_queues:
            actions.append((1, lambda: self.add_queue(ch)))
        if self.ref.n_agents < self.max_agents:
            actions.append((1, lambda: self.add_agent(ch)))
        if by_state[LOGGED_OUT]:
            actions.append((4, lambda: self.both("login", ch.pick(by_state[LOGGED_OUT]), t)))
        if logged_in:
            actions.append((3, lambda: self.both("logout", ch.pick(logged_in), t)))
            actions.append(
                (5, lambda: self.both("set_not_ready", ch.pick(logged_in), t, ch.int(0, 4)))
            )
        can_ready = by_state[NOT_READY] + by_state[WRAP_UP]
        if can_ready:
            actions.append((12, lambda: self.both("set_ready", ch.pick(can_ready), t)))
        busy_or_ringing = by_state[RESERVED] + by_state[BUSY]
        if busy_or_ringing:  # valid only with a pending not-ready
            actions.append((2, lambda: self.both("set_ready", ch.pick(busy_or_ringing), t)))
        if by_state[RESERVED]:
            actions.append((15, lambda: self.agent_contact_call(ch, "accept", RESERVED, t)))
            actions.append((4, lambda: self.agent_contact_call(ch, "no_answer", RESERVED, t)))
        talking = [
            (a, c)
            for a in range(self.ref.n_agents)
            for c in self.ref.agent_contacts(a)
            if self.ref.contact_state(c) == ContactState.ACTIVE
        ]
        if talking:
            actions.append((14, lambda: self.complete(ch, talking, t)))
        if waiting:
            weight = 3 if self.busy else 25
            actions.append((weight, lambda: self.both("abandon", Cid(ch.pick(waiting)), t)))
        if offered:
            actions.append((2, lambda: self.both("abandon", Cid(ch.pick(offered)), t)))
        if waiting or offered:
            asking = waiting if waiting and ch.chance(80) else offered or waiting
            actions.append((3, lambda: self.both("request_callback", Cid(ch.pick(asking)), t)))
        roll = ch.int(0, sum(w for w, _ in actions) - 1)
        for weight, action in actions:
            if roll < weight:
                action()
                break
            roll -= weight
        self.compare(stats=ch.chance(10))

    def complete(self, ch: Chooser, talking: list[tuple[int, int]], t: int) -> None:
        a, c = ch.pick(talking)
        kw = {}
        if ch.chance(30):
            kw["wrap_up_us"] = ch.pick((0, 1, 5, 15))
        self.both("complete", a, Cid(c) if ch.chance(90) else self.some_contact(ch), t, **kw)

    def agent_contact_call(self, ch: Chooser, name: str, state: AgentState, t: int) -> None:
        a = ch.pick(self.agents_in(state))
        kw = {}
        if name == "complete" and ch.chance(30):
            kw["wrap_up_us"] = ch.pick((0, 1, 5, 15))
        self.both(name, a, self.contact_of(ch, a), t, **kw)

    def arrive(self, ch: Chooser, t: int) -> None:
        kw: dict[str, Any] = {}
        if ch.chance(30):
            kw["priority"] = ch.int(-3, 12)
        if ch.chance(30):
            kw["require"] = self.skills(ch, 1, 2, MIN_LEVELS)
        if ch.chance(50):
            kw["channel"] = ch.pick(MIX)
        q = ch.int(0, self.ref.n_queues - 1)
        if ch.chance(15):
            # Preferred agents, as a CRM gives them: a few of the queue's tenant.
            mine = [
                a for a, ten in enumerate(self.tenant_of_agent) if ten == self.tenant_of_queue[q]
            ]
            if mine:
                n = ch.int(1, min(3, len(mine)))
                kw["preferred"] = sorted({ch.pick(mine) for _ in range(n)})
                kw["preferred_us"] = ch.pick((2, 10, 40))
        self.both("arrive", q, t, **kw)

    def contact_of(self, ch: Chooser, agent: int) -> Cid:
        """The agent's own contact, usually; sometimes another one."""
        c = self.ref.agent_contact(agent)
        if c is not None and ch.chance(90):
            return Cid(c)
        return self.some_contact(ch)

    def some_contact(self, ch: Chooser) -> Cid:
        roll = ch.int(0, 9)
        if roll < 6 and self.live:
            return Cid(ch.pick(sorted(self.live)))
        if roll < 8 and self.dead:
            return Cid(ch.pick(self.dead))
        return Cid(ch.pick((NEVER_ISSUED, -1)))

    def invalid(self, ch: Chooser, t: int) -> None:
        """A call that is likely refused: bad ids, values, times or transitions."""
        kind = ch.int(0, 16)
        agent = self.any_agent(ch)
        stale = self.ref.now - ch.int(1, 5)
        if kind == 0:
            self.both(ch.pick(("login", "logout", "set_ready", "set_not_ready")), agent, t)
        elif kind == 1:
            name = ch.pick(("accept", "no_answer", "complete"))
            self.both(name, agent, self.some_contact(ch), t)
        elif kind == 2:
            self.both("abandon", self.some_contact(ch), t)
        elif kind == 3:
            bad = ch.pick((-1, self.ref.n_agents, self.ref.n_agents + 7))
            which = ch.int(0, 3)
            if which == 0:
                self.both(ch.pick(("agent_state", "agent_contact")), bad)
            elif which == 1:
                self.both(ch.pick(("login", "logout", "set_ready", "set_not_ready")), bad, t)
            elif which == 2:  # an unknown agent is reported before a bad value
                self.both("set_not_ready", bad, ch.pick((t, -1)), -1)
            else:
                self.both("complete", bad, self.some_contact(ch), t, wrap_up_us=-1)
        elif kind == 4:
            bad = ch.pick((-1, self.ref.n_queues))
            if ch.chance(50):
                self.both(ch.pick(("arrive", "queue_stats")), bad, t)
            else:
                self.both("arrive", bad, -1, priority=2_000_000)
        elif kind == 5 and stale >= 0:
            name = ch.pick(("login", "set_ready", "set_not_ready", "logout"))
            self.both(name, agent, stale)
        elif kind == 6 and stale >= 0:
            which = ch.int(0, 3)
            if which == 0:
                self.both("advance", stale)
            elif which == 1:
                self.both("arrive", ch.int(0, self.ref.n_queues - 1), stale)
            elif which == 2:
                self.both("queue_stats", ch.int(0, self.ref.n_queues - 1), stale)
            else:
                self.both("agent_stats", agent, stale)
        elif kind == 7:
            self.both(ch.pick(("login", "set_ready", "logout")), agent, -ch.int(1, 3))
        elif kind == 8:
            self.both("set_not_ready", agent, t, -ch.int(1, 3))
        elif kind == 9:
            q = ch.int(0, self.ref.n_queues - 1)
            bad = ch.pick(({"priority": 1_000_001}, {"priority": -1_000_001}, {"require": {3: 0}}))
            self.both("arrive", q, t, **bad)
        elif kind == 10:
            bad = ch.pick(({1: 0}, {70_000: 1}, {2: 1001}))
            self.both(ch.pick(("add_queue", "add_agent")), bad)
        elif kind == 11:
            self.both("add_queue", None, **ch.pick(({"ring_timeout_us": -1}, {"strategy": 99})))
        elif kind == 16:
            q = ch.int(0, self.ref.n_queues - 1)
            bad = ch.pick(
                (
                    {"preferred": [self.ref.n_agents], "preferred_us": 5},
                    {"preferred": [0, 0], "preferred_us": 5},
                    {"preferred": [0], "preferred_us": 0},
                    {"preferred": [0, 1, 2, 3, 4], "preferred_us": 5},
                )
            )
            self.both("arrive", q, t, **bad)
        elif kind == 14:
            self.both("request_callback", self.some_contact(ch), ch.pick((t, stale, -1)))
        elif kind == 15:
            bad = ch.pick(
                (
                    {"steps": [(3, {1: 1})]},
                    {"steps": [(0, {1: 1}), (0, {})]},
                    {"steps": []},
                    {"overflow": self.ref.n_queues},
                    {"overflow": "elsewhere"},
                    {"when_unstaffed": "overflow"},
                    {"max_waiting": -1},
                    {"priority_weight_us": 2**41},
                    {"tenant": -1},
                )
            )
            self.both("add_queue", None, **bad)
        elif kind == 12:
            a = self.agent_among(ch, BUSY)
            self.both("complete", a, self.contact_of(ch, a), t, wrap_up_us=-1)
        else:
            # Statistics in the future are allowed and change nothing.
            at = t + ch.int(0, 30)
            self.both("queue_stats", ch.int(0, self.ref.n_queues - 1), at)
            self.both("agent_stats", agent, at)


# -- Hypothesis: a stateful machine over the driver ----------------------------------------


class DifferentialMachine(RuleBasedStateMachine):
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.d: Differential | None = None

    @initialize(seed=st.integers(0, 2**64 - 1), data=st.data())
    def setup(self, seed: int, data: Any) -> None:
        self.d = Differential(seed, max_agents=10, max_queues=5, max_live=16)
        self.d.populate(DataChooser(data), n_queues=data.draw(st.integers(1, 4)), n_agents=8)

    @rule(data=st.data())
    def step(self, data: Any) -> None:
        assert self.d is not None
        self.d.step(DataChooser(data))
        DifferentialMachine.steps += 1

    def teardown(self) -> None:
        if self.d is not None:
            self.d.compare(stats=True)


def test_differential_stateful() -> None:
    DifferentialMachine.steps = 0
    run_state_machine_as_test(
        DifferentialMachine,
        settings=settings(
            max_examples=120,
            stateful_step_count=100,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    assert DifferentialMachine.steps >= 10_000


# -- a long plain random stream with large populations ---------------------------------------


def test_differential_long_random_stream() -> None:
    ch = RandomChooser(20240611)
    d = Differential(seed=ch.int(0, 2**64 - 1), max_agents=50, max_queues=10, max_live=150)
    d.populate(ch, n_queues=10, n_agents=50)
    for _ in range(20_000):
        d.step(ch)
    d.compare(stats=True)
    assert d.steps == 20_000


# -- a snapshot taken anywhere restores a router that goes on identically ----------------------


def test_a_restored_snapshot_goes_on_as_the_original() -> None:
    from agner import Router

    ch = RandomChooser(777)
    d = Differential(seed=ch.int(0, 2**64 - 1), max_agents=30, max_queues=8, max_live=80)
    d.populate(ch, n_queues=8, n_agents=30)
    restored = 0
    for step in range(6000):
        d.step(ch)
        if step % 500 == 499:
            # From here on the reference is compared with a router rebuilt from
            # bytes: every decision, state and statistic must stay the same.
            d.core = Router.restore(d.core.snapshot())
            for q in d.hooked:  # hooks are not in a snapshot: set them again
                d.core.set_decision_hook(q, _hook, budget_us=10**9)
            d.compare(stats=True)
            restored += 1
    d.compare(stats=True)
    assert restored == 12


def test_a_bad_snapshot_is_refused() -> None:
    from agner import ConfigError, Router

    with pytest.raises(ConfigError):
        Router.restore(b"not a snapshot")
    with pytest.raises(ConfigError):
        Router.restore(Router().snapshot()[:-3])
