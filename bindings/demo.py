"""``agner demo``: one simulated hour of a small center, routed by the real core.

The center (three queues, four agent groups with overlapping skills) is built in
here, so the demo runs with no file at all. Callers arrive at random (Poisson),
talk for an exponential time, and hang up if they wait longer than their
exponential patience. A small event loop drives :class:`agner.Router` through
its Python API. This is a demonstration of the router; ``agner simulate``
(the capacity planner's simulator) is the tool for planning.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from agner.core._api import AgentState, DecisionKind, QueueStats, Strategy
from agner.core.router import Router

SECOND = 1_000_000

__all__ = ["DEFAULT_CENTER", "DemoCenter", "DemoResult", "run_demo", "format_demo"]


@dataclass(frozen=True)
class DemoQueue:
    name: str
    require: dict[int, int]
    strategy: Strategy
    priority: int
    calls_per_hour: float
    mean_handle_s: float
    mean_patience_s: float


@dataclass(frozen=True)
class DemoGroup:
    name: str
    count: int
    skills: dict[int, int]
    wrap_up_s: float


@dataclass(frozen=True)
class DemoCenter:
    skills: tuple[str, ...]
    queues: tuple[DemoQueue, ...]
    groups: tuple[DemoGroup, ...]
    service_level_s: float = 20.0
    ring_timeout_s: float = 15.0
    no_answer_share: float = 0.02


# skills: 0 sales, 1 support, 2 billing, 3 spanish
DEFAULT_CENTER = DemoCenter(
    skills=("sales", "support", "billing", "spanish"),
    queues=(
        DemoQueue("sales", {0: 3}, Strategy.LONGEST_IDLE, 1, 240, 180, 120),
        DemoQueue("support", {1: 1}, Strategy.MOST_SKILLED, 0, 300, 300, 180),
        DemoQueue("billing", {2: 1}, Strategy.ROUND_ROBIN, 0, 120, 240, 150),
        DemoQueue("ventas", {0: 1, 3: 1}, Strategy.FEWEST_CONTACTS, 2, 60, 200, 120),
    ),
    groups=(
        DemoGroup("sales", 14, {0: 5, 2: 2}, 10),
        DemoGroup("support", 26, {1: 4}, 20),
        DemoGroup("billing-support", 10, {2: 4, 1: 2}, 15),
        DemoGroup("bilingual", 6, {0: 3, 3: 5, 1: 1}, 10),
    ),
)


@dataclass
class DemoResult:
    center: DemoCenter
    duration_s: float
    queues: list[QueueStats]
    occupancy: dict[str, float | None]
    agents_by_state: dict[str, int]
    decisions: int = 0
    events: int = 0
    rona: int = 0
    notes: list[str] = field(default_factory=list)


def run_demo(
    center: DemoCenter = DEFAULT_CENTER, *, duration_s: float = 3600.0, seed: int = 7
) -> DemoResult:
    """Simulate `duration_s` seconds of `center` and return the router's statistics."""
    rng = np.random.default_rng(seed)
    r = Router(seed=seed)
    ring = round(center.ring_timeout_s * SECOND)
    sl = round(center.service_level_s * SECOND)
    for q in center.queues:
        r.add_queue(
            q.require,
            strategy=q.strategy,
            priority=q.priority,
            ring_timeout_us=ring,
            sl_threshold_us=sl,
        )
    group_of: list[int] = []
    for g_index, g in enumerate(center.groups):
        for _ in range(g.count):
            a = r.add_agent(g.skills, wrap_up_us=round(g.wrap_up_s * SECOND))
            group_of.append(g_index)
            r.login(a, 0)
            r.set_ready(a, 0)

    end = round(duration_s * SECOND)
    # (time, order, kind, a, b): kinds 0 arrival(queue), 1 complete(agent, contact),
    # 2 abandon(contact), 3 break over(agent). `order` keeps same-time events FIFO.
    events: list[tuple[int, int, int, int, int]] = []
    order = 0

    def push(t: int, kind: int, a: int, b: int) -> None:
        nonlocal order
        heapq.heappush(events, (t, order, kind, a, b))
        order += 1

    def next_arrival(qi: int, now: int) -> None:
        gap = rng.exponential(3600.0 / center.queues[qi].calls_per_hour)
        push(now + max(1, round(gap * SECOND)), 0, qi, 0)

    for qi in range(len(center.queues)):
        next_arrival(qi, 0)

    unanswered: set[int] = set()  # arrived, not yet answered nor abandoned
    n_events = n_decisions = 0
    while events and events[0][0] <= end:
        deadline = r.next_deadline()
        if deadline is not None and deadline <= events[0][0]:
            r.advance(deadline)
        else:
            t, _, kind, x, y = heapq.heappop(events)
            if kind == 0:
                c = r.arrive(x, t)
                unanswered.add(c)
                patience = rng.exponential(center.queues[x].mean_patience_s)
                push(t + max(1, round(patience * SECOND)), 2, c, 0)
                next_arrival(x, t)
            elif kind == 1:
                r.complete(x, y, t)
            elif kind == 2:
                if x in unanswered:
                    r.abandon(x, t)
                    unanswered.discard(x)
            else:
                r.set_ready(x, t)
        n_events += 1
        for d in r.take_decisions():
            n_decisions += 1
            if d.kind == DecisionKind.OFFER:
                if rng.random() < center.no_answer_share:
                    continue  # the agent lets it ring: the ring timer will fire
                r.accept(d.agent, d.contact, d.time)
                unanswered.discard(d.contact)
                handle = rng.exponential(center.queues[d.queue].mean_handle_s)
                push(d.time + max(1, round(handle * SECOND)), 1, d.agent, d.contact)
            elif d.kind == DecisionKind.RONA:
                push(d.time + 30 * SECOND, 3, d.agent, 0)
    r.advance(end)

    stats = [r.queue_stats(q, end) for q in range(len(center.queues))]
    busy: dict[str, list[int]] = {g.name: [0, 0] for g in center.groups}
    by_state = {s.name: 0 for s in AgentState}
    rona = 0
    for a, g_index in enumerate(group_of):
        st = r.agent_stats(a, end)
        tis = st.time_in_state_us
        handling = tis[AgentState.RESERVED] + tis[AgentState.BUSY] + tis[AgentState.WRAP_UP]
        acc = busy[center.groups[g_index].name]
        acc[0] += handling
        acc[1] += handling + tis[AgentState.READY]
        by_state[st.state.name] += 1
        rona += st.rona
    occupancy = {k: (v[0] / v[1] if v[1] else None) for k, v in busy.items()}
    return DemoResult(center, duration_s, stats, occupancy, by_state, n_decisions, n_events, rona)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def format_demo(res: DemoResult) -> str:
    """A plain-text report of a demo run."""
    c = res.center
    lines = [
        f"agner demo: {res.duration_s / 3600:g} h of a {sum(g.count for g in c.groups)}-agent "
        f"center, {len(c.queues)} queues (service level: answered within "
        f"{c.service_level_s:g} s)",
        "",
        f"{'queue':<10} {'strategy':<16} {'offered':>7} {'answered':>8} {'abandoned':>9} "
        f"{'waiting':>7} {'ASA s':>6} {'SL/offered':>10} {'SL/answered':>11}",
    ]
    for q, st in zip(c.queues, res.queues, strict=True):
        asa = "-" if st.asa_us is None else f"{st.asa_us / SECOND:6.1f}"
        lines.append(
            f"{q.name:<10} {q.strategy.name.lower():<16} {st.offered:>7} {st.answered:>8} "
            f"{st.abandoned:>9} {st.waiting:>7} {asa:>6} {_pct(st.service_level_offered):>10} "
            f"{_pct(st.service_level_answered):>11}"
        )
    lines += ["", f"{'agent group':<16} {'agents':>6} {'occupancy':>9}"]
    for g in c.groups:
        lines.append(f"{g.name:<16} {g.count:>6} {_pct(res.occupancy[g.name]):>9}")
    states = ", ".join(f"{k.lower()} {v}" for k, v in res.agents_by_state.items() if v)
    lines += [
        "",
        f"agents at the end: {states}",
        f"router events: {res.events}, decisions: {res.decisions}, ring-no-answer: {res.rona}",
    ]
    return "\n".join(lines)
