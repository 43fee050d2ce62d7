"""The routing of issue 3, one rule at a time, against the core and the reference.

Requirement steps, priority aging, queue limits and overflow, callbacks and
tenants (docs/ROUTING.md, "Steps, aging, limits, callbacks, tenants"). Every test
takes ``make_router`` (conftest.py) and so runs against both routers.
"""

from __future__ import annotations

from typing import Any

import pytest

from agner.core._api import (
    AgentState,
    Channel,
    ConfigError,
    ContactState,
    Decision,
    DecisionKind,
    InvalidTransition,
    Strategy,
    UnknownAgent,
    UnknownContact,
)

T = 1_000_000  # one second in microseconds
D = DecisionKind


def agents(r: Any, *skills: dict[int, int], now: int = 0, **kw: Any) -> list[int]:
    """Add one agent per skill map, logged in and READY at `now`."""
    ids = [r.add_agent(s, **kw) for s in skills]
    for a in ids:
        r.login(a, now)
        r.set_ready(a, now)
    return ids


def offered_to(r: Any) -> list[tuple[int, int, int]]:
    """(time, contact, agent) of the OFFER decisions since the last take."""
    return [(d.time, d.contact, d.agent) for d in r.take_decisions() if d.kind == D.OFFER]


# -- requirement steps -----------------------------------------------------------------------


def test_a_step_widens_the_agents_at_its_time(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (30 * T, {1: 1})], ring_timeout_us=0)
    (junior,) = agents(r, {1: 2})
    c = r.arrive(q, 0)
    assert r.contact_state(c) == ContactState.WAITING
    assert r.next_deadline() == 30 * T  # a timer in the core, not polling
    r.advance(30 * T - 1)
    assert r.take_decisions() == []
    r.advance(40 * T)
    assert r.take_decisions() == [Decision(D.OFFER, 30 * T, c, junior, q)]


def test_steps_add_agents_and_never_remove_any(make_router: Any) -> None:
    # Level 5 sales at 0 s, the overflow group (another skill) at 10 s: from then on
    # both the sales agents and the overflow group may take the contact.
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (10 * T, {2: 1})], ring_timeout_us=0)
    sales = r.add_agent({1: 7})
    (overflow,) = agents(r, {2: 1})
    r.login(sales, 0)
    first = r.arrive(q, 0)
    second = r.arrive(q, 1 * T)
    r.advance(10 * T)
    assert offered_to(r) == [(10 * T, first, overflow)]
    r.set_ready(sales, 12 * T)  # a step-0 agent still takes it after the widening
    r.advance(12 * T)
    # `second` entered at 1 s: it widens at 11 s, and its step-0 agent is READY at 12 s.
    assert offered_to(r) == [(12 * T, second, sales)]


def offered_after_widening(r: Any, strategy: Strategy) -> int:
    """The agent a contact at step 2 of three is offered to, when agents of all
    three steps are READY: it rang agent 1, who did not answer, and comes back.

    Agents (id: skills, the first step they meet, READY since): 0: {1: 6}, step
    0, 13 s; 1: {2: 1}, step 2, rings; 2: {1: 2}, step 1, 14 s; 3: {1: 9}, step
    0, 15 s; 4: {2: 3}, step 2, 12 s.
    """
    q = r.add_queue(
        steps=[(0, {1: 5}), (5 * T, {1: 1}), (10 * T, {2: 1})],
        strategy=strategy,
        ring_timeout_us=0,
    )
    ids = [r.add_agent(s) for s in ({1: 6}, {2: 1}, {1: 2}, {1: 9}, {2: 3})]
    for a in ids:
        r.login(a, 0)
    c = r.arrive(q, 0)
    r.set_ready(1, 11 * T)
    assert offered_to(r) == [(11 * T, c, 1)]
    for a, t in ((4, 12), (0, 13), (2, 14), (3, 15)):
        r.set_ready(a, t * T)
    r.no_answer(1, c, 16 * T)
    (got,) = offered_to(r)
    assert got[:2] == (16 * T, c)
    return got[2]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.LONGEST_IDLE, 4),  # READY longest, though only in the last step
        (Strategy.LINEAR, 0),
        (Strategy.ROUND_ROBIN, 2),  # the first after agent 1, the last offered to
        (Strategy.FEWEST_CONTACTS, 4),  # all at 0: the longest idle
        (Strategy.LEAST_TALK_TIME, 4),
        (Strategy.MOST_SKILLED, 3),  # 9 on skill 1
    ],
)
def test_a_widened_step_chooses_over_the_agents_of_every_step(
    make_router: Any, strategy: Strategy, expected: int
) -> None:
    # The core keeps one pool per step (an agent in the first it meets) and a
    # route spans them; the choice is the strategy's over their union.
    assert offered_after_widening(make_router(), strategy) == expected


def test_random_chooses_uniformly_over_the_agents_of_every_step(make_router: Any) -> None:
    seen = [offered_after_widening(make_router(seed=seed), Strategy.RANDOM) for seed in range(60)]
    assert set(seen) == {0, 2, 3, 4}
    assert all(seen.count(a) >= 5 for a in (0, 2, 3, 4))


def test_most_skilled_scores_an_agent_over_every_step_of_the_queue(make_router: Any) -> None:
    # Step 0 wants skill 1 at 5, step 1 skill 2 at 1. `generalist` meets step 0
    # with 5, and step 1 with 9: its score for the queue is 9 from the start,
    # so it beats `specialist` (step 0 with 8) even before the widening.
    r = make_router()
    q = r.add_queue(
        steps=[(0, {1: 5}), (30 * T, {2: 1})], strategy=Strategy.MOST_SKILLED, ring_timeout_us=0
    )
    specialist, generalist = agents(r, {1: 8}, {1: 5, 2: 9})
    c = r.arrive(q, T)
    assert offered_to(r) == [(T, c, generalist)]
    r.accept(generalist, c, T)
    d = r.arrive(q, 2 * T)
    assert offered_to(r) == [(2 * T, d, specialist)]


def test_steps_count_from_entering_the_queue_and_stop_once_answered(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (5 * T, {1: 1}), (9 * T, {})], ring_timeout_us=0)
    (a,) = agents(r, {1: 6})
    c = r.arrive(q, 2 * T)
    assert offered_to(r) == [(2 * T, c, a)]
    r.accept(a, c, 3 * T)
    assert r.next_deadline() is None  # no step fires on an answered contact


def test_a_step_while_ringing_applies_when_the_contact_comes_back(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (5 * T, {2: 1})], ring_timeout_us=0)
    (senior,) = agents(r, {1: 5})
    c = r.arrive(q, 0)
    other = r.add_agent({2: 1})
    r.login(other, 0)
    r.set_ready(other, 0)
    r.take_decisions()
    r.advance(6 * T)  # the step fires while the offer rings
    r.no_answer(senior, c, 7 * T)
    assert offered_to(r) == [(7 * T, c, other)]


def test_an_extra_requirement_applies_to_every_step(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (5 * T, {1: 1})], ring_timeout_us=0)
    (english_only,) = agents(r, {1: 3})
    (spanish,) = agents(r, {1: 3, 9: 1})
    c = r.arrive(q, 0, require={9: 1})
    r.advance(5 * T)
    assert offered_to(r) == [(5 * T, c, spanish)]
    assert r.agent_state(english_only) == AgentState.READY


@pytest.mark.parametrize(
    "steps",
    [
        [(1, {1: 1})],  # the first step is not at 0
        [(0, {1: 1}), (5, {})],
        [(0, {1: 1}), (5, {}), (5, {2: 1})],  # not increasing
        [],
        [(0, {1: 0})],  # a level out of range
        [(0,)],
    ],
)
def test_bad_steps_are_refused(make_router: Any, steps: Any) -> None:
    r = make_router()
    if steps == [(0, {1: 1}), (5, {})]:
        with pytest.raises(ConfigError):
            r.add_queue({1: 1}, steps=steps)  # require and steps together
        return
    with pytest.raises(ConfigError):
        r.add_queue(steps=steps)
    assert r.n_queues == 0


# -- priority aging --------------------------------------------------------------------------


def test_priority_is_strict_by_default(make_router: Any) -> None:
    r = make_router()
    low = r.add_queue(ring_timeout_us=0)
    high = r.add_queue(priority=1, ring_timeout_us=0)
    old = r.arrive(low, 0)
    new = r.arrive(high, 3600 * T)
    (a,) = agents(r, {}, now=3600 * T)
    assert offered_to(r) == [(3600 * T, new, a)]
    assert r.contact_state(old) == ContactState.WAITING


@pytest.mark.parametrize(("high_arrives_s", "first"), [(5, "high"), (15, "low")])
def test_aging_ranks_by_wait_plus_priority_times_weight(
    make_router: Any, high_arrives_s: int, first: str
) -> None:
    # One level is worth 10 s of waiting, in both queues: at 20 s the low contact
    # ranks 20 + 0, the high one (20 - arrival) + 10.
    r = make_router()
    low = r.add_queue(priority=0, priority_weight_us=10 * T, ring_timeout_us=0)
    high = r.add_queue(priority=1, priority_weight_us=10 * T, ring_timeout_us=0)
    c_low = r.arrive(low, 0)
    c_high = r.arrive(high, high_arrives_s * T)
    (a,) = agents(r, {}, now=20 * T)
    want = c_high if first == "high" else c_low
    assert offered_to(r) == [(20 * T, want, a)]


def test_equal_rank_is_first_come_first_served(make_router: Any) -> None:
    # Ranks tie (10 s of wait = one level): the earlier arrival goes first.
    r = make_router()
    low = r.add_queue(priority=0, priority_weight_us=10 * T, ring_timeout_us=0)
    high = r.add_queue(priority=1, priority_weight_us=10 * T, ring_timeout_us=0)
    c_low = r.arrive(low, 0)
    r.arrive(high, 10 * T)
    (a,) = agents(r, {}, now=30 * T)
    assert offered_to(r) == [(30 * T, c_low, a)]


def test_zero_weight_ignores_priority(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(priority_weight_us=0, ring_timeout_us=0)
    first = r.arrive(q, 0, priority=-5)
    r.arrive(q, 1, priority=50)
    (a,) = agents(r, {}, now=2)
    assert offered_to(r) == [(2, first, a)]


# -- queue limits and overflow -------------------------------------------------------------


def test_a_full_queue_rejects_a_newcomer(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_waiting=1, ring_timeout_us=0)
    (busy,) = agents(r, {})
    r.arrive(q, 0)  # offered at once: not waiting
    waiting = r.arrive(q, 1)
    rejected = r.arrive(q, 2)
    assert r.take_decisions()[1:] == [Decision(D.REJECT, 2, rejected, -1, q)]
    with pytest.raises(UnknownContact):
        r.contact_state(rejected)
    assert r.contact_state(waiting) == ContactState.WAITING
    s = r.queue_stats(q, 2)
    assert (s.offered, s.rejected, s.waiting) == (3, 1, 1)
    assert r.agent_state(busy) == AgentState.RESERVED


def test_a_full_queue_still_takes_a_contact_an_idle_agent_can_answer(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_waiting=1, ring_timeout_us=0)
    (a,) = agents(r, {1: 1})
    spanish = r.arrive(q, 0, require={9: 1})  # waits: the queue is full now
    c = r.arrive(q, 1)  # but the idle agent can take this one: no rejection
    assert r.take_decisions() == [Decision(D.OFFER, 1, c, a, q)]
    assert r.contact_state(spanish) == ContactState.WAITING


def test_callbacks_do_not_count_toward_max_waiting(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_waiting=1, ring_timeout_us=0)
    first = r.arrive(q, 0)
    r.request_callback(first, 1)
    second = r.arrive(q, 2)
    assert r.contact_state(second) == ContactState.WAITING
    assert r.take_decisions() == []
    s = r.queue_stats(q, 2)
    assert (s.waiting, s.waiting_callbacks, s.callbacks) == (2, 1, 1)


def test_a_full_queue_overflows_to_its_target(make_router: Any) -> None:
    r = make_router()
    backup = r.add_queue({2: 1}, priority=7, ring_timeout_us=0)
    front = r.add_queue({1: 1}, max_waiting=1, overflow=backup, ring_timeout_us=0)
    r.arrive(front, 0)
    c = r.arrive(front, 1)
    assert r.take_decisions() == [Decision(D.OVERFLOW, 1, c, -1, backup)]
    assert r.contact_queue(c) == backup
    (b,) = agents(r, {2: 1}, now=2)
    assert offered_to(r) == [(2, c, b)]
    assert r.queue_stats(front, 2).overflowed == 1
    assert r.queue_stats(backup, 2).offered == 1


def test_max_wait_without_a_target_times_out(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_wait_us=10 * T, sl_threshold_us=20 * T)
    c = r.arrive(q, 0)
    assert r.next_deadline() == 10 * T
    r.advance(11 * T)
    assert r.take_decisions() == [Decision(D.TIMEOUT, 10 * T, c, -1, q)]
    s = r.queue_stats(q, 11 * T)
    assert (s.offered, s.timed_out, s.waiting, s.abandoned) == (1, 1, 0, 0)


def test_max_wait_overflows_keeping_the_contact_its_rank_and_priority(make_router: Any) -> None:
    r = make_router()
    backup = r.add_queue(priority=3, ring_timeout_us=0)
    front = r.add_queue({1: 1}, max_wait_us=10 * T, overflow=backup, ring_timeout_us=0)
    c = r.arrive(front, 0)
    early = r.arrive(backup, 5 * T, priority=3)
    r.advance(10 * T)
    assert r.take_decisions() == [Decision(D.OVERFLOW, 10 * T, c, -1, backup)]
    (a,) = agents(r, {}, now=12 * T)
    # Both have priority 3 in `backup`; c arrived first (at 0, in another queue).
    assert offered_to(r) == [(12 * T, c, a)]
    assert r.contact_state(early) == ContactState.WAITING


def test_an_explicit_priority_stays_with_the_contact(make_router: Any) -> None:
    r = make_router()
    backup = r.add_queue(priority=9, ring_timeout_us=0)
    front = r.add_queue({1: 1}, max_wait_us=10 * T, overflow=backup, ring_timeout_us=0)
    mine = r.arrive(front, 0, priority=-2)
    theirs = r.arrive(backup, 5 * T)
    r.advance(10 * T)
    (a,) = agents(r, {}, now=11 * T)
    assert offered_to(r) == [(11 * T, theirs, a)]
    assert r.contact_state(mine) == ContactState.WAITING


def test_statistics_of_an_overflow_target_count_from_entering_it(make_router: Any) -> None:
    r = make_router()
    backup = r.add_queue(ring_timeout_us=0, sl_threshold_us=5 * T)
    front = r.add_queue({1: 1}, max_wait_us=30 * T, overflow=backup, ring_timeout_us=0)
    c = r.arrive(front, 0)
    r.advance(30 * T)
    (a,) = agents(r, {}, now=33 * T)
    r.accept(a, c, 33 * T)
    s = r.queue_stats(backup, 33 * T)
    assert (s.answered, s.answered_within_sl, s.wait_answered_us) == (1, 1, 3 * T)


def test_max_wait_to_voicemail(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_wait_us=10 * T, overflow="voicemail")
    c = r.arrive(q, 0)
    r.advance(10 * T)
    assert r.take_decisions() == [Decision(D.VOICEMAIL, 10 * T, c, -1, q)]
    assert r.queue_stats(q, 10 * T).voicemail == 1


def test_max_wait_to_callback_keeps_the_place(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_wait_us=10 * T, overflow="callback", ring_timeout_us=0)
    c = r.arrive(q, 0)
    later = r.arrive(q, 5 * T)
    r.advance(10 * T)
    assert r.take_decisions() == [Decision(D.CALLBACK, 10 * T, c, -1, q)]
    assert r.contact_channel(c) == Channel.CALLBACK
    assert r.next_deadline() == 15 * T  # `later`'s maximum wait; c has none now
    r.advance(15 * T)
    r.take_decisions()
    (a,) = agents(r, {}, now=100 * T)
    assert offered_to(r) == [(100 * T, c, a)]
    assert r.contact_channel(later) == Channel.CALLBACK
    assert r.queue_stats(q, 100 * T).callbacks == 2


def test_max_wait_passing_while_ringing_acts_when_the_offer_fails(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_wait_us=10 * T, overflow="voicemail", ring_timeout_us=30 * T)
    (a,) = agents(r, {})
    c = r.arrive(q, 0)
    r.advance(20 * T)  # no voicemail while an agent's phone rings
    assert [d.kind for d in r.take_decisions()] == [D.OFFER]
    r.no_answer(a, c, 25 * T)
    assert r.take_decisions() == [Decision(D.VOICEMAIL, 25 * T, c, -1, q)]


def test_unstaffed_queue_rejects_or_overflows_on_arrival(make_router: Any) -> None:
    r = make_router()
    backup = r.add_queue(ring_timeout_us=0)
    reject = r.add_queue({1: 1}, when_unstaffed="reject")
    move = r.add_queue({1: 1}, when_unstaffed="overflow", overflow=backup)
    wait = r.add_queue({1: 1})
    r.add_agent({1: 1})  # logged out: does not count
    c1 = r.arrive(reject, 0)
    c2 = r.arrive(move, 0)
    c3 = r.arrive(wait, 0)
    assert r.take_decisions() == [
        Decision(D.REJECT, 0, c1, -1, reject),
        Decision(D.OVERFLOW, 0, c2, -1, backup),
    ]
    assert r.contact_state(c3) == ContactState.WAITING
    # A logged-in agent, even NOT_READY, staffs the queue.
    r.login(0, 1)
    c4 = r.arrive(reject, 2)
    assert r.contact_state(c4) == ContactState.WAITING


def test_unstaffed_counts_the_agents_of_every_step(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(steps=[(0, {1: 5}), (60 * T, {2: 1})], when_unstaffed="reject")
    late = r.add_agent({2: 1})
    r.login(late, 0)
    c = r.arrive(q, 0)
    assert r.contact_state(c) == ContactState.WAITING


@pytest.mark.parametrize(
    "kw",
    [
        {"overflow": 5},
        {"overflow": "elsewhere"},
        {"overflow": True},
        {"when_unstaffed": "overflow"},
        {"when_unstaffed": "hang up"},
        {"max_waiting": -1},
        {"max_wait_us": -1},
        {"priority_weight_us": 2**40 + 1},
        {"tenant": -1},
    ],
)
def test_bad_limits_are_refused(make_router: Any, kw: dict[str, Any]) -> None:
    r = make_router()
    r.add_queue()
    with pytest.raises(ConfigError):
        r.add_queue(**kw)
    assert r.n_queues == 1


# -- callbacks -----------------------------------------------------------------------------


def test_a_callback_keeps_its_place_and_is_offered_as_a_callback(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0, max_wait_us=60 * T)
    first = r.arrive(q, 0)
    second = r.arrive(q, 1 * T)
    r.request_callback(first, 2 * T)
    assert r.contact_channel(first) == Channel.CALLBACK
    assert r.contact_channel(second) == Channel.VOICE
    (a,) = agents(r, {}, now=3 * T)
    assert offered_to(r) == [(3 * T, first, a)]
    r.accept(a, first, 4 * T)
    s = r.queue_stats(q, 4 * T)
    assert (s.answered, s.callbacks, s.abandoned, s.waiting_callbacks) == (1, 1, 0, 0)


def test_a_callback_does_not_time_out(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(max_wait_us=10 * T)
    c = r.arrive(q, 0)
    r.request_callback(c, 1 * T)
    assert r.next_deadline() is None
    r.advance(3600 * T)
    assert r.contact_state(c) == ContactState.WAITING


def test_only_a_waiting_caller_can_ask_for_a_callback(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    (a,) = agents(r, {})
    ringing = r.arrive(q, 0)
    with pytest.raises(InvalidTransition):
        r.request_callback(ringing, 1)
    waiting = r.arrive(q, 1)
    r.request_callback(waiting, 2)
    with pytest.raises(InvalidTransition):
        r.request_callback(waiting, 3)
    with pytest.raises(UnknownContact):
        r.request_callback(12345678, 3)
    assert r.agent_state(a) == AgentState.RESERVED


# -- tenants --------------------------------------------------------------------------------


def test_nothing_crosses_tenants(make_router: Any) -> None:
    r = make_router()
    q0 = r.add_queue(ring_timeout_us=0)
    q1 = r.add_queue(ring_timeout_us=0, tenant=1)
    (a1,) = agents(r, {}, tenant=1)
    c0 = r.arrive(q0, 0)
    assert r.take_decisions() == []  # the only idle agent is another tenant's
    c1 = r.arrive(q1, 1)
    assert offered_to(r) == [(1, c1, a1)]
    (a0,) = agents(r, {}, now=2)
    assert offered_to(r) == [(2, c0, a0)]


def test_overflow_to_another_tenant_is_refused(make_router: Any) -> None:
    r = make_router()
    other = r.add_queue(tenant=2)
    with pytest.raises(ConfigError):
        r.add_queue(overflow=other, max_wait_us=T)


def test_an_unstaffed_check_sees_only_the_queues_tenant(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(when_unstaffed="reject", tenant=3)
    agents(r, {})  # tenant 0
    c = r.arrive(q, 0)
    assert r.take_decisions() == [Decision(D.REJECT, 0, c, -1, q)]


# -- preferred agents -----------------------------------------------------------------------


def test_a_ready_preferred_agent_takes_the_contact_at_once(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    idle_longer, last_agent = agents(r, {}, {})
    c = r.arrive(q, 5, preferred=[last_agent], preferred_us=30 * T)
    assert offered_to(r) == [(5, c, last_agent)]
    assert r.agent_state(idle_longer) == AgentState.READY


def test_the_first_ready_preferred_agent_in_order(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    longest_idle, a1, a2 = agents(r, {}, {}, {})
    c = r.arrive(q, 5, preferred=[a2, a1], preferred_us=30 * T)
    assert offered_to(r) == [(5, c, a2)]
    assert r.agent_state(longest_idle) == AgentState.READY


def test_a_contact_waits_for_its_preferred_agents_until_the_limit(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    (other,) = agents(r, {})
    fav = r.add_agent({})
    r.login(fav, 0)
    c = r.arrive(q, 0, preferred=[fav], preferred_us=30 * T)
    assert r.take_decisions() == []  # the READY agent is not a preferred one
    assert r.contact_state(c) == ContactState.WAITING
    assert r.queue_stats(q, 1).waiting == 1
    r.set_ready(fav, 10 * T)  # a preferred agent frees up: it gets it
    assert offered_to(r) == [(10 * T, c, fav)]
    assert r.agent_state(other) == AgentState.READY


def test_after_the_limit_normal_routing_takes_over(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    (other,) = agents(r, {})
    fav = r.add_agent({})
    c = r.arrive(q, 0, preferred=[fav], preferred_us=30 * T)
    assert r.next_deadline() == 30 * T
    r.advance(31 * T)
    assert offered_to(r) == [(30 * T, c, other)]


def test_preferred_agents_need_no_skill_and_rank_with_the_queue(make_router: Any) -> None:
    # The preferred agent lacks the queue's skill; when it frees up it takes the
    # best-ranked contact among those it may take: here the older queue contact.
    r = make_router()
    q = r.add_queue({1: 5}, ring_timeout_us=0)
    free_q = r.add_queue(ring_timeout_us=0)
    fav = r.add_agent({})
    r.login(fav, 0)
    older = r.arrive(free_q, 0)
    c = r.arrive(q, 1, preferred=[fav], preferred_us=60 * T)
    r.set_ready(fav, 2)
    assert offered_to(r) == [(2, older, fav)]
    r.accept(fav, older, 3)
    r.complete(fav, older, 4)
    assert offered_to(r) == [(4, c, fav)]


def test_a_preferred_agent_that_does_not_answer_leaves_it_to_the_others(
    make_router: Any,
) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a, b = agents(r, {}, {})
    r.set_not_ready(b, 0)
    c = r.arrive(q, 1, preferred=[a, b], preferred_us=60 * T)
    r.take_decisions()
    r.no_answer(a, c, 2)
    assert r.take_decisions() == []  # still only for a or b, and neither is READY
    r.set_ready(b, 3)
    assert offered_to(r) == [(3, c, b)]


@pytest.mark.parametrize(
    "kw",
    [
        {"preferred": [0, 0], "preferred_us": T},
        {"preferred": [0, 1, 2, 3, 4], "preferred_us": T},
        {"preferred": [0], "preferred_us": 0},
        {"preferred": [5], "preferred_us": T},  # another tenant's agent
    ],
)
def test_bad_preferences_are_refused(make_router: Any, kw: dict[str, Any]) -> None:
    r = make_router()
    q = r.add_queue()
    for _ in range(5):
        r.add_agent({})
    r.add_agent({}, tenant=1)
    with pytest.raises(ConfigError):
        r.arrive(q, 0, **kw)
    with pytest.raises(UnknownAgent):
        r.arrive(q, 0, preferred=[99], preferred_us=T)
    assert r.queue_stats(q, 0).offered == 0


# -- parallel offers -------------------------------------------------------------------------


def test_a_parallel_offer_rings_k_agents_in_strategy_order(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(parallel=2, ring_timeout_us=0)
    a0, a1, a2 = agents(r, {}, {}, {})  # idle since 0, in id order
    c = r.arrive(q, 5)
    assert offered_to(r) == [(5, c, a0), (5, c, a1)]
    assert [r.agent_state(a) for a in (a0, a1, a2)] == [
        AgentState.RESERVED,
        AgentState.RESERVED,
        AgentState.READY,
    ]
    assert r.agent_contact(a1) == c
    assert r.contact_agent(c) == a0


def test_the_first_to_accept_takes_it_and_the_others_are_released(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(parallel=0, ring_timeout_us=0)  # ring all
    a0, a1, a2 = agents(r, {}, {}, {})
    c = r.arrive(q, 5)
    later = r.arrive(q, 6)  # every agent rings for c: later waits
    r.take_decisions()
    r.accept(a1, c, 7)
    assert r.take_decisions() == [
        Decision(D.RELEASE, 7, c, a0, q),
        Decision(D.OFFER, 7, later, a0, q),  # a0 is free again: it takes the next one
        Decision(D.RELEASE, 7, c, a2, q),
    ]
    assert r.contact_agent(c) == a1
    assert r.agent_state(a1) == AgentState.BUSY
    assert r.agent_state(a2) == AgentState.READY
    with pytest.raises(InvalidTransition):
        r.accept(a2, c, 8)  # no contact is assigned twice


def test_one_agent_declining_leaves_the_others_ringing(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(parallel=2, ring_timeout_us=0)
    a0, a1 = agents(r, {}, {})
    c = r.arrive(q, 5)
    r.take_decisions()
    r.no_answer(a0, c, 6)
    assert r.agent_state(a0) == AgentState.NOT_READY
    assert r.contact_state(c) == ContactState.OFFERED
    assert r.contact_agent(c) == a1
    r.no_answer(a1, c, 7)  # the last one: the contact goes back to its queue
    assert r.contact_state(c) == ContactState.WAITING
    assert r.queue_stats(q, 7).ring_no_answer == 2


def test_a_ring_timeout_is_ring_no_answer_for_every_agent_ringing(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(parallel=2, ring_timeout_us=10 * T)
    a0, a1 = agents(r, {}, {})
    c = r.arrive(q, 0)
    r.take_decisions()
    r.advance(10 * T)
    assert r.take_decisions() == [
        Decision(D.RONA, 10 * T, c, a0, q),
        Decision(D.RONA, 10 * T, c, a1, q),
    ]
    assert r.contact_state(c) == ContactState.WAITING
    assert r.agent_stats(a1, 10 * T).rona == 1


def test_abandon_and_logout_release_the_agents_ringing(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(parallel=3, ring_timeout_us=0)
    a0, a1, a2 = agents(r, {}, {}, {})
    c = r.arrive(q, 5)
    r.logout(a2, 6)  # the others keep ringing
    assert r.contact_state(c) == ContactState.OFFERED
    r.abandon(c, 7)
    assert [r.agent_state(a) for a in (a0, a1, a2)] == [
        AgentState.READY,
        AgentState.READY,
        AgentState.LOGGED_OUT,
    ]
    assert r.agent_contact(a0) is None and r.agent_contact(a1) is None


# -- position and estimated wait --------------------------------------------------------------


def test_position_follows_the_rank(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    first = r.arrive(q, 0)
    second = r.arrive(q, 1)
    vip = r.arrive(q, 2, priority=5)
    assert [r.position(c) for c in (vip, first, second)] == [1, 2, 3]
    (a,) = agents(r, {}, now=3)
    assert r.agent_contact(a) == vip
    with pytest.raises(InvalidTransition):
        r.position(vip)  # offered: no longer in line
    assert r.position(first) == 1


def test_estimated_wait_is_contacts_ahead_times_handle_over_staff(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0, handle_estimate_us=100 * T)
    a0, a1 = agents(r, {}, {})
    busy = [r.arrive(q, 0), r.arrive(q, 0)]
    for a, c in zip((a0, a1), busy, strict=True):
        r.accept(a, c, 0)
    c1 = r.arrive(q, 1)
    c2 = r.arrive(q, 2)
    # No history yet: the estimate of 100 s a contact, two agents staffed.
    assert r.estimated_wait_us(c1, 2) == 50 * T
    assert r.estimated_wait_us(c2, 2) == 100 * T
    # With history the agents' own mean handle time counts: 60 s talk + 0 wrap-up.
    r.complete(a0, busy[0], 60 * T)  # a0 takes c1
    assert r.estimated_wait_us(c2, 60 * T) == 30 * T  # one ahead of it no more


def test_estimated_wait_is_none_without_staff(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a = r.add_agent({})
    c = r.arrive(q, 0)
    assert r.estimated_wait_us(c, 0) is None
    r.login(a, 1)  # NOT_READY: not staffed
    assert r.estimated_wait_us(c, 1) is None


# -- the decision hook -----------------------------------------------------------------------


def test_a_decision_hook_chooses_among_the_candidates(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a0, a1, a2 = agents(r, {}, {}, {})
    seen: list[Any] = []

    def newest(info: Any) -> int:
        seen.append(info)
        return max(info.candidates)

    r.set_decision_hook(q, newest, budget_us=1_000_000)
    c = r.arrive(q, 5, priority=3)
    assert offered_to(r) == [(5, c, a2)]
    (info,) = seen
    assert (info.queue, info.priority, info.channel, info.arrival_us, info.waited_us) == (
        q,
        3,
        Channel.VOICE,
        5,
        0,
    )
    assert info.candidates == (a0, a1, a2)
    assert r.hook_stats(q)[:3] == (1, 0, 0)


@pytest.mark.parametrize("answer", ["raise", "stranger", "text"])
def test_a_failing_hook_falls_back_on_the_strategy(make_router: Any, answer: str) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a0, _, _ = agents(r, {}, {}, {})

    def bad(info: Any) -> Any:
        if answer == "raise":
            raise RuntimeError("the CRM is down")
        return 99 if answer == "stranger" else "agent 1"

    r.set_decision_hook(q, bad, budget_us=1_000_000)
    c = r.arrive(q, 5)
    assert offered_to(r) == [(5, c, a0)]  # longest idle, as without a hook
    assert r.hook_stats(q)[:3] == (1, 1, 0)


def test_a_late_hook_falls_back_and_can_be_removed(make_router: Any) -> None:
    import time

    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a0, _, a2 = agents(r, {}, {}, {})

    def slow(info: Any) -> int:
        time.sleep(0.01)
        return a2

    r.set_decision_hook(q, slow, budget_us=1)
    c = r.arrive(q, 5)
    assert offered_to(r) == [(5, c, a0)]
    assert r.hook_stats(q)[:3] == (1, 0, 1)
    r.set_decision_hook(q, None)
    assert r.hook_stats(q) == (0, 0, 0, 0)
    with pytest.raises(ConfigError):
        r.set_decision_hook(q, "not callable")


# -- multi-channel agents --------------------------------------------------------------------

CHAT, EMAIL, VOICE = Channel.CHAT, Channel.EMAIL, Channel.VOICE


def chat_agent(r: Any, now: int = 0, **kw: Any) -> int:
    a = r.add_agent({}, **kw)
    r.login(a, now)
    r.set_ready(a, now)
    return int(a)


def test_an_agent_takes_chats_up_to_its_capacity(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={CHAT: 3})
    chats = []
    for t in range(4):
        c = r.arrive(q, t, channel=CHAT)
        chats.append(c)
        if t < 3:
            assert offered_to(r) == [(t, c, a)]
            r.accept(a, c, t)
    assert r.contact_state(chats[3]) == ContactState.WAITING  # at capacity
    assert r.agent_load(a) == (0, 3, 0, 0)
    assert r.agent_contacts(a) == tuple(chats[:3])
    assert r.agent_state(a) == AgentState.BUSY
    r.complete(a, chats[1], 10)  # a place frees up: it takes the waiting chat
    assert offered_to(r) == [(10, chats[3], a)]


def test_voice_closes_every_channel_and_chat_closes_voice(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={VOICE: 1, CHAT: 2, EMAIL: 1})
    call = r.arrive(q, 1, channel=VOICE)
    r.accept(a, call, 1)
    chat = r.arrive(q, 2, channel=CHAT)
    assert r.contact_state(chat) == ContactState.WAITING  # on the phone: no chat
    r.complete(a, call, 3)
    assert offered_to(r)[-1] == (3, chat, a)
    r.accept(a, chat, 3)
    mail = r.arrive(q, 4, channel=EMAIL)  # chats and e-mails mix
    assert offered_to(r) == [(4, mail, a)]
    r.accept(a, mail, 4)
    call2 = r.arrive(q, 5, channel=VOICE)  # but a chat closes voice
    assert r.contact_state(call2) == ContactState.WAITING


def test_blocking_rules_can_be_given(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={VOICE: 1, CHAT: 1}, blocks={CHAT: []})
    chat = r.arrive(q, 1, channel=CHAT)
    r.accept(a, chat, 1)
    call = r.arrive(q, 2, channel=VOICE)  # this agent may take a call while chatting
    assert offered_to(r) == [(1, chat, a), (2, call, a)]


def test_chats_go_round_the_agents_not_to_the_first_one(make_router: Any) -> None:
    # Longest idle per channel: an agent given a chat is idle on chat from then on,
    # so the next chat goes to the other agent, though the first has room.
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a0 = chat_agent(r, capacity={CHAT: 2})
    a1 = chat_agent(r, capacity={CHAT: 2})
    got = []
    for t in range(1, 5):
        c = r.arrive(q, t, channel=CHAT)
        ((_, _, agent),) = offered_to(r)
        r.accept(agent, c, t)
        got.append(agent)
    assert got == [a0, a1, a0, a1]


def test_a_classic_agent_takes_one_contact_of_any_channel(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    (a,) = agents(r, {})
    chat = r.arrive(q, 1, channel=CHAT)
    r.accept(a, chat, 1)
    mail = r.arrive(q, 2, channel=EMAIL)
    assert r.contact_state(mail) == ContactState.WAITING
    assert r.agent_load(a) == (0, 1, 0, 0)
    assert r.agent_contacts(a) == (chat,)


def test_a_multi_channel_agent_not_ready_and_logout(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={CHAT: 2}, wrap_up_us=5 * T)
    c1 = r.arrive(q, 1, channel=CHAT)
    assert offered_to(r) == [(1, c1, a)]
    r.accept(a, c1, 1)
    r.set_not_ready(a, 2, reason=7)  # pending: no new chat, the one open goes on
    c2 = r.arrive(q, 3, channel=CHAT)
    assert r.contact_state(c2) == ContactState.WAITING
    with pytest.raises(InvalidTransition):
        r.logout(a, 4)  # a chat is open
    r.complete(a, c1, 5)  # its wrap-up holds the place until 5 s later
    assert r.agent_state(a) == AgentState.WRAP_UP
    assert r.agent_load(a) == (0, 1, 0, 0)
    r.advance(5 + 5 * T)
    assert r.agent_stats(a, 5 + 5 * T).state == AgentState.NOT_READY
    assert r.agent_stats(a, 5 + 5 * T).reason == 7
    r.set_ready(a, 6 * T)
    assert offered_to(r) == [(6 * T, c2, a)]
    r.logout(a, 7 * T)  # ringing: the chat goes back to its queue
    assert r.contact_state(c2) == ContactState.WAITING


def test_wrap_ups_of_several_chats_end_one_by_one_or_all_at_once(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={CHAT: 3}, wrap_up_us=10 * T)
    chats = []
    for t in (1, 2, 3):
        c = r.arrive(q, t, channel=CHAT)
        r.accept(a, c, t)
        chats.append(c)
    r.take_decisions()
    for k, c in enumerate(chats):  # three wrap-ups, ending at 14, 15, 16 s
        r.complete(a, c, 4 * T + k * T)
    assert r.agent_state(a) == AgentState.WRAP_UP
    assert r.agent_load(a) == (0, 3, 0, 0)
    r.advance(15 * T)  # the first two end by themselves, in order
    ends = [d for d in r.take_decisions() if d.kind == D.WRAP_UP_END]
    assert [(d.time, d.agent) for d in ends] == [(14 * T, a), (15 * T, a)]
    assert r.agent_load(a) == (0, 1, 0, 0)
    r.set_not_ready(a, 15 * T + 1, reason=3)  # ends the last one at once
    assert r.agent_load(a) == (0, 0, 0, 0)
    assert r.agent_state(a) == AgentState.NOT_READY
    r.advance(20 * T)  # its timer is gone: nothing more ends
    assert [d for d in r.take_decisions() if d.kind == D.WRAP_UP_END] == []
    # Again, cut short while all three run: every place comes back at once.
    again = []
    r.set_ready(a, 21 * T)
    for t in (22, 23, 24):
        c = r.arrive(q, t * T, channel=CHAT)
        r.accept(a, c, t * T)
        again.append(c)
    for c in again:
        r.complete(a, c, 25 * T)
    r.set_ready(a, 26 * T)
    assert r.agent_load(a) == (0, 0, 0, 0)
    assert r.agent_state(a) == AgentState.READY
    assert r.next_deadline() is None


@pytest.mark.parametrize(
    "kw",
    [
        {"capacity": {CHAT: 16}},
        {"capacity": {CHAT: 0}},
        {"capacity": {"pigeon": 1}},
        {"blocks": {CHAT: []}},  # blocks without capacity
    ],
)
def test_bad_capacities_are_refused(make_router: Any, kw: dict[str, Any]) -> None:
    r = make_router()
    with pytest.raises(ConfigError):
        r.add_agent({}, **kw)
    assert r.n_agents == 0


def test_a_hook_is_not_given_an_agent_whose_channel_is_full(make_router: Any) -> None:
    # Bug found by the differential tests: a multi-channel agent free for voice
    # but full on chat was a hook's candidate for a chat.
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a = chat_agent(r, capacity={VOICE: 1, CHAT: 1}, blocks={CHAT: []})
    first = r.arrive(q, 1, channel=CHAT)
    r.accept(a, first, 1)
    b = chat_agent(r, now=1)  # a classic agent, free
    seen: list[Any] = []
    r.set_decision_hook(q, lambda info: seen.append(info.candidates) or a, budget_us=10**9)
    second = r.arrive(q, 2, channel=CHAT)
    assert seen == [(b,)]  # a is free for voice only: no candidate for a chat
    assert r.take_decisions()[-1] == Decision(D.OFFER, 2, second, b, q)
