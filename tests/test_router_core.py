"""Paths of the compiled core that random streams reach rarely, against the reference."""

from __future__ import annotations

from typing import Any

import pytest

from agner.core._api import AgentState, DecisionKind, Strategy

T = 1_000_000


@pytest.mark.parametrize("n", [40, 300])  # sorted by insertion (<= 64 idle agents), by radix
def test_pool_built_while_agents_idle_keeps_longest_idle_order(make_router: Any, n: int) -> None:
    # `require=` builds a new pool on the spot; agents already idle join it in id
    # order, not in the order they became idle, and LONGEST_IDLE must still hold.
    r = make_router()
    q = r.add_queue({0: 1}, strategy=Strategy.LONGEST_IDLE)
    agents = [r.add_agent({0: 5, 1: 5}) for _ in range(n)]
    for a in agents:
        r.login(a, 0)
    # Agents become ready in a scrambled order, several at the same time, over
    # a span of idle times wider than one 11-bit radix digit.
    order = sorted(agents, key=lambda a: (a * 7919) % n)
    for i, a in enumerate(order):
        r.set_ready(a, T + (i // 3) * T)
    r.take_decisions()
    offered = []
    for k in range(n):
        c = r.arrive(q, 1000 * T + k, require={1: 2})
        (d,) = r.take_decisions()
        assert d.kind == DecisionKind.OFFER and d.contact == c
        offered.append(d.agent)
    # Longest idle first; equal idle times by agent id.
    expected = sorted(agents, key=lambda a: (order.index(a) // 3, a))
    assert offered == expected


def test_stale_entries_are_compacted_without_changing_choices() -> None:
    # Agents serve many queues and become idle and busy again many times, so the
    # core's pools fill with stale entries and compact. Its choices must stay
    # those of the reference, which has no such machinery.
    from reference_router import ReferenceRouter

    from agner import Router

    logs = []
    for router_cls in (Router, ReferenceRouter):
        r = router_cls(seed=3)
        queues = [r.add_queue({s: 1}, strategy=st) for s in range(4) for st in Strategy]
        agents = [r.add_agent({0: 1 + a % 3, 1: 2, 2: 1 + a % 5, 3: 4}) for a in range(30)]
        for a in agents:
            r.login(a, 0)
            r.set_ready(a, 0)
        t = T
        log = []
        for round_ in range(150):
            for k, q in enumerate(queues):
                if k % 3 != round_ % 3:
                    continue
                r.arrive(q, t)
                for d in r.take_decisions():
                    log.append((d.kind, d.agent, d.queue, d.time))
                    r.accept(d.agent, d.contact, t)
                    r.complete(d.agent, d.contact, t + 1)
                t += 2
        logs.append(log)
    assert len(logs[0]) > 1000
    assert logs[0] == logs[1]


def pools_cold(r: Any) -> list[int]:
    """The core's cold flag per pool, from its snapshot."""
    import msgspec

    return list(msgspec.msgpack.decode(r.snapshot())["pool_cold"])


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.name)
def test_a_cold_pool_warms_to_the_choices_its_kept_order_would_make(strategy: Strategy) -> None:
    # Every agent is in the pools of a busy queue and of a rare one. They take
    # busy-queue contacts until the rare queue's pool, joined members + 64 times
    # and never read, goes cold; then contacts arrive on the rare queue. The
    # rebuilt order must give the reference's choices (which keeps no such
    # state), and the pool must be warm again after.
    from reference_router import ReferenceRouter

    from agner import Router

    logs = []
    for router_cls in (Router, ReferenceRouter):
        r = router_cls(seed=5)
        busy = r.add_queue({0: 1}, strategy=strategy, ring_timeout_us=0)
        rare = r.add_queue({1: 1}, strategy=strategy, ring_timeout_us=0)
        # Wrap-ups of different lengths: agents come back in a shuffled order.
        # More than 64 of them idle: the rebuild sorts by radix, not by insertion.
        agents = [r.add_agent({0: 1, 1: 1 + a % 4}, wrap_up_us=1 + a * 7 % 11) for a in range(80)]
        for a in agents:
            r.login(a, 0)
        for a in agents:
            r.set_ready(a, a)  # distinct idle times
        t = 100
        log = []
        for _ in range(10 * len(agents)):
            t += 3
            r.advance(t)
            r.take_decisions()
            c = r.arrive(busy, t)
            (d,) = [d for d in r.take_decisions() if d.kind == DecisionKind.OFFER]
            log.append(d.agent)
            r.accept(d.agent, c, t)
            r.complete(d.agent, c, t + 1 + d.agent % 2)  # different talk times
            r.take_decisions()
        if router_cls is Router:
            assert pools_cold(r) == [0, 1]  # the busy queue's pool, the rare one's
        for _ in range(4):
            t += 10
            c = r.arrive(rare, t)
            (d,) = [d for d in r.take_decisions() if d.kind == DecisionKind.OFFER]
            log.append(("rare", d.agent))
            r.accept(d.agent, c, t)
        if router_cls is Router:
            assert pools_cold(r) == [0, 0]
        logs.append(log)
    assert logs[0] == logs[1]


def test_times_and_ids_of_any_size_are_refused_cleanly(make_router: Any) -> None:
    # Found by the differential work: 2**62 + 2**62 wrapped the core's int64
    # deadlines, and 2**63 raised OverflowError instead of a RouterError.
    from agner.core._api import ConfigError, UnknownAgent, UnknownContact

    big = 2**62
    r = make_router()
    with pytest.raises(ConfigError):
        r.add_queue(ring_timeout_us=big)
    q = r.add_queue(ring_timeout_us=big - 1)
    a = r.add_agent({})
    r.login(a, 0)
    r.set_ready(a, 0)
    c = r.arrive(q, big - 1)
    assert r.next_deadline() == 2 * (big - 1)  # far, but not wrapped around
    for now in (big, 2**63, 2**80):
        with pytest.raises(ConfigError):
            r.advance(now)
        with pytest.raises(ConfigError):
            r.queue_stats(q, now)
    with pytest.raises(UnknownAgent):
        r.login(2**70, 0)
    with pytest.raises(UnknownContact):
        r.contact_state(2**80)
    with pytest.raises(ConfigError):
        r.set_not_ready(a, big - 1, 2**31)
    r.set_not_ready(a, big - 1, 2**31 - 1)  # pending: the agent has the contact
    assert r.contact_agent(c) == a


def test_pools_made_after_the_agents_fill_and_regrow_their_lists() -> None:
    # Each new `require` (and each new channel of a queue) makes pools after the
    # agents exist: their memberships go in the room after each agent's list,
    # and when an agent has none left the whole array is laid out again. With
    # 40 pools over 12 agents that happens many times; the choices must stay
    # the reference's, with agents idle, busy and logged out (the count of
    # logged-in members a queue's `when_unstaffed` reads) all along, and a
    # snapshot (which packs the lists) must go on as the original.
    from reference_router import ReferenceRouter

    from agner import Router
    from agner.core._api import Channel

    def run(r: Any, snap_at: int | None = None) -> list[tuple[Any, ...]]:
        queues = [r.add_queue({0: 1}, strategy=st, when_unstaffed="reject") for st in Strategy]
        agents = [r.add_agent({0: 1 + a % 4, 1: 1 + a % 7, 2: 1 + a % 3, 3: 2}) for a in range(12)]
        for a in agents:
            r.login(a, 0)
            r.set_ready(a, 0)
        log: list[tuple[Any, ...]] = []
        busy: list[tuple[int, int]] = []
        out: list[int] = []

        def decided(t: int) -> None:
            for d in r.take_decisions():
                log.append((d.kind, d.agent, d.queue, d.time))
                if d.kind == DecisionKind.OFFER:
                    r.accept(d.agent, d.contact, t)
                    busy.append((d.agent, d.contact))

        t = T
        for k in range(200):
            if snap_at is not None and k == snap_at:
                r = type(r).restore(r.snapshot())
            if k % 9 == 0:
                held = {a for a, _ in busy}
                idle = [a for a in agents if a not in held and a not in out]
                if idle:
                    out.append(idle[k % len(idle)])
                    r.logout(out[-1], t)
            elif k % 9 == 4 and out:
                a = out.pop(0)
                r.login(a, t)
                r.set_ready(a, t)
                decided(t)
            q = queues[k % len(queues)]
            channel = (Channel.VOICE, Channel.CHAT, Channel.EMAIL)[k % 3]
            r.arrive(q, t, channel=channel, require={1 + k % 3: 1 + (k // 3) % 7})
            decided(t)
            if len(busy) > 6 or k % 5 == 4:
                while len(busy) > 2:
                    a, c = busy.pop(0)
                    r.complete(a, c, t + 1)
                    decided(t + 1)
            t += 2
        return log

    core = run(Router(seed=4))
    ref = run(ReferenceRouter(seed=4))
    kinds = [x[0] for x in core]
    assert kinds.count(DecisionKind.OFFER) > 80 and DecisionKind.REJECT in kinds
    assert core == ref
    restored = run(Router(seed=4), snap_at=100)
    assert restored == core


def keyed_pools(r: Any) -> list[int]:
    """Per pool, whether the core keeps a fifo per key (its `use_keyed` flag)."""
    import msgspec

    pool_t = msgspec.msgpack.decode(r.snapshot())["pools"]
    # pool_t: strategy, channel, idle (24 bytes), ready (16), unread,
    # cold_after, n_keyed, then use_keyed at byte 60.
    return [int.from_bytes(p[0][60:64], "little") for p in pool_t]


KEYED = (Strategy.FEWEST_CONTACTS, Strategy.MOST_SKILLED)


@pytest.mark.parametrize(
    "strategy", [s for s in Strategy if s != Strategy.LONGEST_IDLE], ids=lambda s: s.name
)
def test_large_pools_keep_the_reference_order(strategy: Strategy) -> None:
    # Pools of 2,100 members (the other queue's LONGEST_IDLE pool too). A
    # FEWEST_CONTACTS or MOST_SKILLED pool of 2,048 members or more keeps a fifo
    # per key (kbuck_t) in a window of keys; a key too far from the others
    # (MOST_SKILLED: sums of two levels from 2 to 2,000) goes to the heap beside
    # it. The bitset pools keep a Fenwick tree over their words. Keys below and
    # above the window, agents leaving (not ready, logged out) and coming back,
    # the pool going cold and warm again, and a snapshot restored mid-stream
    # must all give the reference's choices.
    import random

    from reference_router import ReferenceRouter

    from agner import Router

    n = 2_100

    def run(r: Any, snap_at: int | None = None) -> list[Any]:
        rng = random.Random(7)
        q = r.add_queue({0: 1, 1: 1}, strategy=strategy, ring_timeout_us=0)
        other = r.add_queue({0: 1}, strategy=Strategy.LONGEST_IDLE, ring_timeout_us=0)
        for a in range(n):
            # Levels spread so that MOST_SKILLED sums span more than the window.
            r.add_agent({0: 1 + (a * 389) % 1000, 1: 1 + (a * 7) % 1000})
        for a in range(n):
            r.login(a, 0)
        for a in sorted(range(n), key=lambda a: (a * 13) % 97):
            r.set_ready(a, 1 + (a * 13) % 97)  # many at the same time
        r.take_decisions()
        busy: dict[int, int] = {}
        away: list[int] = []
        log: list[Any] = []
        t = T
        for k in range(2_000):
            if snap_at is not None and k == snap_at:
                r = type(r).restore(r.snapshot())
            t += rng.randrange(1, 4)
            if k == 1_000:
                # Every idle agent takes two breaks and comes back: more pushes
                # than the pool has members, none read, so the pool goes cold
                # (and warms again at the next contact).
                idle = [a for a in range(n) if a not in busy and a not in away]
                for _ in range(2):
                    for a in idle:
                        r.set_not_ready(a, t, 2)
                    # Back in the reverse of member order, a few at a time:
                    # the rebuild must sort each key's agents by idle time.
                    for i, a in enumerate(reversed(idle)):
                        r.set_ready(a, t + i // 3)
                    t += len(idle) // 3 + 1
                if isinstance(r, Router):
                    assert pools_cold(r)[0] == 1
            queue = other if rng.random() < 0.3 else q
            r.arrive(queue, t)
            for d in r.take_decisions():
                log.append((d.kind, d.agent, d.queue))
                if d.kind == DecisionKind.OFFER:
                    r.accept(d.agent, d.contact, t)
                    busy[d.agent] = d.contact
            while len(busy) > 40 or (busy and rng.random() < 0.5):
                a = rng.choice(sorted(busy))
                r.complete(a, busy.pop(a), t)
                for d in r.take_decisions():
                    log.append((d.kind, d.agent, d.queue))
                    if d.kind == DecisionKind.OFFER:
                        r.accept(d.agent, d.contact, t)
                        busy[d.agent] = d.contact
            if k % 50 == 25:
                idle = [a for a in range(0, n, 97) if a not in busy and a not in away]
                a = idle[k % len(idle)]
                away.append(a)
                if k % 100 == 25:
                    r.set_not_ready(a, t, 1)
                else:
                    r.logout(a, t)
            elif k % 50 == 0 and away:
                a = away.pop(0)
                if r.agent_state(a) == AgentState.LOGGED_OUT:
                    r.login(a, t)
                r.set_ready(a, t)
            r.take_decisions()
        if isinstance(r, Router):
            assert keyed_pools(r) == [int(strategy in KEYED), 0]
        return log

    core = run(Router(seed=2))
    ref = run(ReferenceRouter(seed=2))
    assert sum(1 for x in core if x[0] == DecisionKind.OFFER and x[2] == 0) > 1_000
    assert core == ref
    assert run(Router(seed=2), snap_at=1_300) == core


@pytest.mark.parametrize("restore", [False, True])
def test_a_preferred_agent_freed_finds_its_contact_and_then_routes_as_before(
    make_router: Any, restore: bool
) -> None:
    # An agent freed reads its heap of contacts waiting for it as a preferred
    # agent only while something was put there (agent_t.has_pref), which a
    # snapshot carries; once the heap is empty the agent routes as any other.
    r = make_router()
    q = r.add_queue()
    fav, other = r.add_agent({}), r.add_agent({})
    for a in (fav, other):
        r.login(a, 0)
    r.set_ready(other, 0)
    gone = r.arrive(q, T, preferred=[fav], preferred_us=60 * T)
    kept = r.arrive(q, 2 * T, preferred=[fav], preferred_us=60 * T)
    assert r.take_decisions() == []  # `other` is not a preferred agent
    r.abandon(gone, 3 * T)
    if restore and hasattr(r, "snapshot"):
        r = type(r).restore(r.snapshot())
    r.set_ready(fav, 4 * T)  # skips the abandoned one, takes the other
    (d,) = r.take_decisions()
    assert (d.kind, d.contact, d.agent) == (DecisionKind.OFFER, kept, fav)
    r.accept(fav, kept, 5 * T)
    r.complete(fav, kept, 6 * T, wrap_up_us=0)
    assert r.agent_state(fav) == AgentState.READY
    # Nothing waits for it now: the next contact goes to the longest idle.
    c = r.arrive(q, 7 * T)
    (d,) = r.take_decisions()
    assert (d.contact, d.agent) == (c, other)
    c = r.arrive(q, 8 * T)
    (d,) = r.take_decisions()
    assert (d.contact, d.agent) == (c, fav)
