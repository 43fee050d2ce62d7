"""The semantics of docs/ROUTING.md, one rule at a time, against the core and the reference.

Every test takes ``make_router`` (conftest.py) and so runs twice: once against the
Cython core, once against the pure-Python reference router.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from reference_router import splitmix64  # pinned to known outputs below

from agner.core._api import (
    REASON_RONA,
    AgentState,
    ConfigError,
    ContactState,
    Decision,
    DecisionKind,
    InvalidTransition,
    Strategy,
    TimeError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
)

T = 1_000_000  # one second in microseconds
NEVER_ISSUED = (1 << 62) + 12345  # a contact id neither router has handed out

OFFER, RONA, WRAP_UP_END = DecisionKind.OFFER, DecisionKind.RONA, DecisionKind.WRAP_UP_END
LOGGED_OUT, NOT_READY, READY = AgentState.LOGGED_OUT, AgentState.NOT_READY, AgentState.READY
RESERVED, BUSY, WRAP_UP = AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP
WAITING, OFFERED, ACTIVE = ContactState.WAITING, ContactState.OFFERED, ContactState.ACTIVE


# -- helpers ------------------------------------------------------------------------------


def offer(t: int, contact: int, agent: int, queue: int) -> Decision:
    return Decision(OFFER, t, contact, agent, queue)


def rona(t: int, contact: int, agent: int, queue: int) -> Decision:
    return Decision(RONA, t, contact, agent, queue)


def wrap_up_end(t: int, agent: int) -> Decision:
    return Decision(WRAP_UP_END, t, -1, agent, -1)


def ready_agents(r: Any, skills: list[dict[int, int]], now: int = 0, **kw: Any) -> list[int]:
    """Add one agent per skill map, log each in and make it READY at `now`, in id order."""
    ids = [r.add_agent(s, **kw) for s in skills]
    for a in ids:
        r.login(a, now)
        r.set_ready(a, now)
    return ids


def offered_agent(r: Any) -> int:
    """The agent of the single OFFER decision in the buffer."""
    (d,) = r.take_decisions()
    assert d.kind == OFFER
    return d.agent


def contact_view(r: Any, c: int) -> tuple[ContactState, int | None] | None:
    try:
        return (r.contact_state(c), r.contact_agent(c))
    except UnknownContact:
        return None


def snapshot(r: Any, contacts: Sequence[int] = ()) -> tuple[Any, ...]:
    """Everything observable without changing the router, at the router's own time."""
    now = r.now
    agents = [
        (r.agent_state(a), r.agent_contact(a), r.agent_stats(a, now)) for a in range(r.n_agents)
    ]
    queues = [r.queue_stats(q, now) for q in range(r.n_queues)]
    return (
        now,
        r.n_agents,
        r.n_queues,
        agents,
        queues,
        [contact_view(r, c) for c in contacts],
        r.next_deadline(),
    )


def assert_refused(
    r: Any, exc: type[Exception], call: Any, *args: Any, contacts: Sequence[int] = (), **kw: Any
) -> None:
    """`call(*args, **kw)` raises exactly `exc` and changes nothing observable."""
    r.take_decisions()
    before = snapshot(r, contacts)
    with pytest.raises(exc) as info:
        call(*args, **kw)
    assert type(info.value) is exc
    assert snapshot(r, contacts) == before
    assert r.take_decisions() == []


def test_splitmix64_known_values() -> None:
    s, x = splitmix64(0)
    assert x == 0xE220A8397B1DCDAF
    assert splitmix64(s)[1] == 0x6E789E6AA1B965F4


# -- ids and configuration ----------------------------------------------------------------


def test_dense_ids_and_counts(make_router: Any) -> None:
    r = make_router()
    assert (r.now, r.n_agents, r.n_queues) == (0, 0, 0)
    assert [r.add_queue() for _ in range(3)] == [0, 1, 2]
    assert [r.add_agent({1: 1}) for _ in range(2)] == [0, 1]
    assert r.add_agent({}) == 2  # no skills at all is allowed
    assert (r.n_agents, r.n_queues) == (3, 3)
    assert r.agent_state(2) == LOGGED_OUT
    assert r.agent_contact(2) is None
    assert r.next_deadline() is None
    assert r.take_decisions() == []


def test_contact_ids_are_distinct_and_die_with_the_contact(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    cs = [r.arrive(q, 0) for _ in range(5)]
    assert len(set(cs)) == 5 and all(c >= 0 for c in cs)
    r.abandon(cs[2], 1)
    with pytest.raises(UnknownContact):
        r.contact_state(cs[2])
    new = r.arrive(q, 2)
    assert new not in cs  # ids are never reused, even when storage is
    assert r.contact_state(new) == WAITING
    assert r.contact_agent(new) is None


def test_empty_skills_agent_only_serves_empty_requirements(make_router: Any) -> None:
    r = make_router()
    q_any = r.add_queue()
    q_sk = r.add_queue({1: 1})
    (a,) = ready_agents(r, [{}])
    c1 = r.arrive(q_sk, 0)
    assert r.contact_state(c1) == WAITING
    c2 = r.arrive(q_any, 0)
    assert r.take_decisions() == [offer(0, c2, a, q_any)]


# -- strategies ---------------------------------------------------------------------------


def test_longest_idle(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LONGEST_IDLE)
    a = [r.add_agent({1: 1}) for _ in range(3)]
    for x in a:
        r.login(x, 0)
    r.set_ready(a[2], 10)
    r.set_ready(a[0], 20)
    r.set_ready(a[1], 30)
    c = [r.arrive(q, 40) for _ in range(3)]
    assert r.take_decisions() == [
        offer(40, c[0], a[2], q),
        offer(40, c[1], a[0], q),
        offer(40, c[2], a[1], q),
    ]


def test_longest_idle_is_the_default_strategy(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a = [r.add_agent({}) for _ in range(2)]
    for x in a:
        r.login(x, 0)
    r.set_ready(a[1], 1)
    r.set_ready(a[0], 2)
    r.arrive(q, 3)
    assert offered_agent(r) == a[1]


def test_idle_since_is_reset_by_an_abandoned_offer(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a0, a1 = ready_agents(r, [{}, {}])  # both idle since 0: a0 wins the tie
    c = r.arrive(q, 5)
    assert offered_agent(r) == a0
    r.abandon(c, 7)  # a0 READY again, idle since 7; a1 idle since 0
    assert r.agent_state(a0) == READY
    r.arrive(q, 8)
    assert offered_agent(r) == a1


def test_round_robin_memory_and_wrap_around(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.ROUND_ROBIN)
    a = ready_agents(r, [{1: 1}] * 4)
    # Idle times would favour agent 3: round robin ignores them.
    r.set_not_ready(a[3], 1)
    r.set_ready(a[3], 1)
    c0 = r.arrive(q, 2)
    assert offered_agent(r) == a[0]  # memory starts at -1
    c1 = r.arrive(q, 2)
    assert offered_agent(r) == a[1]
    r.abandon(c0, 3)  # agent 0 READY again
    r.abandon(c1, 3)  # agent 1 READY again
    r.arrive(q, 4)
    assert offered_agent(r) == a[2]  # smallest id greater than 1
    r.arrive(q, 4)
    assert offered_agent(r) == a[3]
    r.arrive(q, 4)
    assert offered_agent(r) == a[0]  # wrapped round
    r.arrive(q, 4)
    assert offered_agent(r) == a[1]


def test_round_robin_skips_agents_that_are_not_ready(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.ROUND_ROBIN)
    a = ready_agents(r, [{1: 1}] * 4)
    r.arrive(q, 1)
    assert offered_agent(r) == a[0]
    r.set_not_ready(a[1], 1)
    r.set_not_ready(a[2], 1)
    r.arrive(q, 2)
    assert offered_agent(r) == a[3]
    r.set_ready(a[1], 3)
    r.arrive(q, 4)
    assert offered_agent(r) == a[1]  # wrapped round past 0 (RESERVED) to 1


def test_round_robin_memory_is_per_queue_and_updated_by_agent_side_offers(
    make_router: Any,
) -> None:
    r = make_router()
    qa = r.add_queue(strategy=Strategy.ROUND_ROBIN)
    qb = r.add_queue(strategy=Strategy.ROUND_ROBIN)
    a = [r.add_agent({}) for _ in range(4)]
    for x in a:
        r.login(x, 0)
    # An agent becoming READY takes a waiting contact of qa: qa now remembers agent 2.
    r.arrive(qa, 1)
    r.set_ready(a[2], 2)
    assert r.take_decisions()[0].agent == a[2]
    for x in (a[0], a[1], a[3]):
        r.set_ready(x, 3)
    r.arrive(qa, 4)
    assert offered_agent(r) == a[3]  # after 2 comes 3
    r.arrive(qb, 4)
    assert offered_agent(r) == a[0]  # qb has its own memory (-1)
    r.arrive(qa, 4)
    assert offered_agent(r) == a[1]  # qa: after 3 wraps round; 0 is busy with qb


def test_fewest_contacts(make_router: Any) -> None:
    r = make_router()
    own = [r.add_queue({100 + i: 1}, ring_timeout_us=0) for i in range(3)]
    q = r.add_queue(strategy=Strategy.FEWEST_CONTACTS)
    a = ready_agents(r, [{100 + i: 1} for i in range(3)])
    # Agent 0 handles two contacts, agent 1 one, agent 2 none.
    t = 1
    for i, n in ((0, 2), (1, 1)):
        for _ in range(n):
            c = r.arrive(own[i], t)
            assert offered_agent(r) == a[i]
            r.accept(a[i], c, t)
            t += 1
            r.complete(a[i], c, t)  # released, idle since t
    r.set_not_ready(a[2], t)
    r.set_ready(a[2], t)  # the latest idle_since of the three
    r.arrive(q, t)
    assert offered_agent(r) == a[2]  # fewest contacts beats idle time
    r.arrive(q, t)
    assert offered_agent(r) == a[1]
    r.arrive(q, t)
    assert offered_agent(r) == a[0]


def test_fewest_contacts_ties_by_idle_since(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.FEWEST_CONTACTS)
    a = [r.add_agent({}) for _ in range(3)]
    for x in a:
        r.login(x, 0)
    r.set_ready(a[1], 5)
    r.set_ready(a[2], 6)
    r.set_ready(a[0], 7)
    r.arrive(q, 8)
    assert offered_agent(r) == a[1]


def test_least_talk_time(make_router: Any) -> None:
    r = make_router()
    own = [r.add_queue({100 + i: 1}, ring_timeout_us=0) for i in range(3)]
    q = r.add_queue(strategy=Strategy.LEAST_TALK_TIME)
    a = ready_agents(r, [{100 + i: 1} for i in range(3)])
    # Talk times: agent 0 two contacts of 1 s (2 s), agent 1 one of 5 s, agent 2 one of 3 s.
    # Agent 0 has handled the most contacts and is idle since the latest time.
    t = 0
    for i, talks in ((1, [5]), (2, [3]), (0, [1, 1])):
        for s in talks:
            c = r.arrive(own[i], t)
            assert offered_agent(r) == a[i]
            r.accept(a[i], c, t)
            t += s * T
            r.complete(a[i], c, t)
    r.arrive(q, t)
    assert offered_agent(r) == a[0]
    r.arrive(q, t)
    assert offered_agent(r) == a[2]
    r.arrive(q, t)
    assert offered_agent(r) == a[1]


def test_least_talk_time_ties_by_idle_since_and_counts_only_completed_talk(
    make_router: Any,
) -> None:
    r = make_router()
    q_lin = r.add_queue(strategy=Strategy.LINEAR, ring_timeout_us=0)
    q = r.add_queue(strategy=Strategy.LEAST_TALK_TIME)
    a = [r.add_agent({}) for _ in range(3)]
    for x in a:
        r.login(x, 0)
    r.set_ready(a[0], 1)
    c = r.arrive(q_lin, 1)  # agent 0 talks 0 us: still 0 talk time, but handled 1
    r.accept(a[0], c, 1)
    r.complete(a[0], c, 1)  # idle since 1
    r.set_ready(a[2], 2)
    r.set_ready(a[1], 3)
    r.take_decisions()
    r.arrive(q, 4)
    assert offered_agent(r) == a[0]  # all 0 talk time; idle since 1, 2, 3
    r.arrive(q, 4)
    assert offered_agent(r) == a[2]


def test_most_skilled_sums_levels_over_required_skills(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 1, 2: 1}, strategy=Strategy.MOST_SKILLED)
    a = ready_agents(
        r,
        [
            {1: 5, 2: 1},  # 6
            {1: 3, 2: 4},  # 7
            {1: 900},  # not eligible: no skill 2
            {1: 2, 2: 5, 3: 1000},  # 7: skill 3 is not required and does not count
            {1: 1, 2: 1},  # 2
        ],
    )
    r.arrive(q, 1)
    assert offered_agent(r) == a[1]  # 7, tie with agent 3 falls to the lower id
    r.arrive(q, 1)
    assert offered_agent(r) == a[3]
    r.arrive(q, 1)
    assert offered_agent(r) == a[0]
    r.arrive(q, 1)
    assert offered_agent(r) == a[4]
    c = r.arrive(q, 1)
    assert r.contact_state(c) == WAITING


def test_most_skilled_ties_by_idle_since_and_counts_require(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 1}, strategy=Strategy.MOST_SKILLED)
    a = [r.add_agent(s) for s in ({1: 4, 2: 1}, {1: 4, 2: 1}, {1: 2, 2: 9})]
    for x in a:
        r.login(x, 0)
    r.set_ready(a[1], 1)
    r.set_ready(a[0], 2)
    r.set_ready(a[2], 3)
    r.arrive(q, 4)
    assert offered_agent(r) == a[1]  # sum 4 for agents 0 and 1: agent 1 idle longer
    r.take_decisions()
    # With require={2: 1} the sum covers skills 1 and 2: agent 2 has 11, agent 0 has 5.
    r.arrive(q, 5, require={2: 1})
    assert offered_agent(r) == a[2]


def test_random_uses_splitmix64(make_router: Any) -> None:
    seed = 12345
    r = make_router(seed=seed)
    q = r.add_queue({1: 1}, strategy=Strategy.RANDOM)
    q_lin = r.add_queue({1: 1}, strategy=Strategy.LINEAR)
    a = ready_agents(r, [{1: 1}, {1: 1}, {2: 1}, {1: 1}, {1: 1}, {1: 1}, {1: 2}, {1: 3}])
    eligible = [x for x in a if x != a[2]]  # agent 2 lacks skill 1
    state = seed
    for _ in range(3):
        state, x = splitmix64(state)
        expected = eligible[x % len(eligible)]
        r.arrive(q, 1)
        assert offered_agent(r) == expected
        eligible.remove(expected)
        # A LINEAR choice in between does not draw from the generator.
        r.arrive(q_lin, 1)
        eligible.remove(offered_agent(r))


def test_random_with_other_seeds(make_router: Any) -> None:
    for seed in (0, 1, 2**63 + 5):
        r = make_router(seed=seed)
        q = r.add_queue(strategy=Strategy.RANDOM)
        a = ready_agents(r, [{}] * 7)
        _, x = splitmix64(seed)
        r.arrive(q, 1)
        assert offered_agent(r) == a[x % 7]


def test_random_draws_even_for_a_single_eligible_agent(make_router: Any) -> None:
    # "Drawn once per RANDOM choice": a choice among one agent is still a choice.
    seed = 99
    r = make_router(seed=seed)
    q = r.add_queue(strategy=Strategy.RANDOM)
    (first,) = ready_agents(r, [{}])
    r.arrive(q, 1)
    assert offered_agent(r) == first
    others = ready_agents(r, [{}] * 4, now=2)
    state, _ = splitmix64(seed)
    _, x = splitmix64(state)
    r.arrive(q, 3)
    assert offered_agent(r) == others[x % 4]


def test_linear_takes_the_smallest_id(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR)
    a = [r.add_agent({}) for _ in range(3)]
    for x in a:
        r.login(x, 0)
    for t, x in enumerate(reversed(a)):
        r.set_ready(x, t)  # agent 2 idle longest
    r.arrive(q, 20)
    assert offered_agent(r) == a[0]
    r.arrive(q, 20)
    assert offered_agent(r) == a[1]


@pytest.mark.parametrize("strategy", [s for s in Strategy if s != Strategy.RANDOM])
def test_ties_fall_to_the_lower_agent_id(make_router: Any, strategy: Strategy) -> None:
    r = make_router()
    q = r.add_queue({7: 1}, strategy=strategy)
    a = [r.add_agent({7: 3}) for _ in range(4)]
    for x in (a[3], a[1], a[2], a[0]):  # logged in and made ready in scrambled order
        r.login(x, 5)
    for x in (a[2], a[3], a[1], a[0]):
        r.set_ready(x, 5)
    r.set_not_ready(a[0], 5)
    r.arrive(q, 6)
    assert offered_agent(r) == a[1]


# -- agent transitions --------------------------------------------------------------------


def put_agent_in(r: Any, state: AgentState) -> tuple[int, int | None, int]:
    """A fresh router's agent in `state` at time 0: (agent, its contact or None, queue)."""
    q = r.add_queue({1: 1}, ring_timeout_us=10 * T)
    a = r.add_agent({1: 1}, wrap_up_us=30 * T)
    c = None
    if state == LOGGED_OUT:
        return a, c, q
    r.login(a, 0)
    if state == NOT_READY:
        return a, c, q
    r.set_ready(a, 0)
    if state == READY:
        return a, c, q
    c = r.arrive(q, 0)
    if state == RESERVED:
        return a, c, q
    r.accept(a, c, 0)
    if state == BUSY:
        return a, c, q
    r.complete(a, c, 0)
    assert state == WRAP_UP
    return a, None, q


AGENT_TABLE = {
    "login": {LOGGED_OUT: NOT_READY},
    "logout": {NOT_READY: LOGGED_OUT, READY: LOGGED_OUT, WRAP_UP: LOGGED_OUT, RESERVED: LOGGED_OUT},
    "set_ready": {NOT_READY: READY, WRAP_UP: READY},
    "set_not_ready": {
        READY: NOT_READY,
        NOT_READY: NOT_READY,
        WRAP_UP: NOT_READY,
        RESERVED: RESERVED,
        BUSY: BUSY,
    },
}


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("call", list(AGENT_TABLE))
def test_agent_transition_table(make_router: Any, call: str, state: AgentState) -> None:
    r = make_router()
    a, c, _ = put_agent_in(r, state)
    assert r.agent_state(a) == state
    r.take_decisions()
    method = getattr(r, call)
    target = AGENT_TABLE[call].get(state)
    contacts = [c] if c is not None else []
    if target is None:
        assert_refused(r, InvalidTransition, method, a, 0, contacts=contacts)
        assert r.agent_state(a) == state
    else:
        method(a, 1)
        assert r.agent_state(a) == target
        assert r.now == 1


def test_login_sets_reason_zero(make_router: Any) -> None:
    r = make_router()
    a = r.add_agent({})
    r.login(a, 3)
    st = r.agent_stats(a, 3)
    assert (st.state, st.reason) == (NOT_READY, 0)


def test_logout_from_wrap_up_cancels_the_wrap_up(make_router: Any) -> None:
    r = make_router()
    a, _, _ = put_agent_in(r, WRAP_UP)
    assert r.next_deadline() == 30 * T
    r.take_decisions()
    r.logout(a, 1)
    assert r.next_deadline() is None
    r.advance(100 * T)
    assert r.take_decisions() == []
    assert r.agent_state(a) == LOGGED_OUT


def test_logout_while_reserved_returns_the_contact_without_rona(make_router: Any) -> None:
    r = make_router()
    a, c, q = put_agent_in(r, RESERVED)
    b = r.add_agent({1: 1})
    r.login(b, 0)
    r.take_decisions()
    r.logout(a, 2)
    assert r.agent_state(a) == LOGGED_OUT
    assert r.agent_contact(a) is None
    assert r.contact_state(c) == WAITING
    assert r.next_deadline() is None  # the ring timer is gone
    assert r.take_decisions() == []  # no RONA
    assert r.queue_stats(q, 2).ring_no_answer == 0
    assert r.agent_stats(a, 2).rona == 0
    assert r.queue_stats(q, 2).longest_wait_us == 2  # still counted from arrival at 0
    r.set_ready(b, 3)
    assert r.take_decisions() == [offer(3, c, b, q)]


def test_logout_while_reserved_redispatches_at_once(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a, b = ready_agents(r, [{}, {}])
    c = r.arrive(q, 1)
    assert offered_agent(r) == a
    r.logout(a, 2)
    assert r.take_decisions() == [offer(2, c, b, q)]
    assert r.contact_agent(c) == b
    assert r.next_deadline() == 2 + 15 * T  # default ring timeout from the new offer


def test_logout_clears_a_pending_not_ready(make_router: Any) -> None:
    r = make_router()
    a, c, _ = put_agent_in(r, RESERVED)
    r.set_not_ready(a, 0, 4)
    r.logout(a, 1)
    r.login(a, 2)
    r.set_ready(a, 3)  # takes the waiting contact back: nothing pending any more
    r.take_decisions()
    r.accept(a, c, 4)
    r.complete(a, c, 5, wrap_up_us=0)
    assert r.agent_state(a) == READY


def test_set_ready_in_reserved_or_busy_drops_a_pending_not_ready(make_router: Any) -> None:
    r = make_router()
    a, c, _ = put_agent_in(r, RESERVED)
    r.set_not_ready(a, 1, 5)
    r.set_ready(a, 2)
    assert r.agent_state(a) == RESERVED
    r.accept(a, c, 3)
    r.set_not_ready(a, 4, 6)
    r.set_ready(a, 5)
    assert r.agent_state(a) == BUSY
    # Nothing pending now: a second set_ready is refused.
    assert_refused(r, InvalidTransition, r.set_ready, a, 5, contacts=[c])
    r.complete(a, c, 6, wrap_up_us=0)
    assert r.agent_state(a) == READY


def test_set_ready_ends_wrap_up_early_and_drops_pending(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    (a,) = ready_agents(r, [{}], wrap_up_us=30 * T)
    c = r.arrive(q, 0)
    r.accept(a, c, 1)
    r.set_not_ready(a, 2, 9)  # pending
    r.complete(a, c, 3)
    assert r.agent_state(a) == WRAP_UP
    assert r.next_deadline() == 3 + 30 * T
    r.take_decisions()
    r.set_ready(a, 4)
    assert r.agent_state(a) == READY
    assert r.next_deadline() is None
    r.advance(100 * T)
    assert r.take_decisions() == []  # no WRAP_UP_END
    assert r.agent_state(a) == READY


def test_set_not_ready_in_wrap_up_cancels_it(make_router: Any) -> None:
    r = make_router()
    a, _, _ = put_agent_in(r, WRAP_UP)
    r.take_decisions()
    r.set_not_ready(a, 1, 3)
    st = r.agent_stats(a, 1)
    assert (st.state, st.reason) == (NOT_READY, 3)
    assert r.next_deadline() is None
    r.advance(100 * T)
    assert r.take_decisions() == []


def test_set_not_ready_changes_the_reason_without_a_state_change(make_router: Any) -> None:
    r = make_router()
    a = r.add_agent({})
    r.login(a, 0)
    r.set_not_ready(a, 10, 7)
    r.set_not_ready(a, 20, 8)
    st = r.agent_stats(a, 30)
    assert (st.state, st.reason) == (NOT_READY, 8)
    assert st.time_in_state_us == (0, 30, 0, 0, 0, 0)


@pytest.mark.parametrize("release", ["complete", "wrap_up", "abandon"])
def test_pending_not_ready_applies_on_release(make_router: Any, release: str) -> None:
    r = make_router()
    q = r.add_queue()
    (a,) = ready_agents(r, [{}], wrap_up_us=5 * T)
    c = r.arrive(q, 0)
    r.set_not_ready(a, 1, 11)
    if release == "abandon":
        r.abandon(c, 2)
    else:
        r.accept(a, c, 1)
        r.set_not_ready(a, 2, 12)  # a later pending replaces the earlier one
        if release == "complete":
            r.complete(a, c, 3, wrap_up_us=0)
        else:
            r.complete(a, c, 3)
            assert r.agent_state(a) == WRAP_UP
            r.take_decisions()
            r.advance(3 + 5 * T)
            assert r.take_decisions() == [wrap_up_end(3 + 5 * T, a)]
    st = r.agent_stats(a, r.now)
    assert (st.state, st.reason) == (NOT_READY, 11 if release == "abandon" else 12)
    # The pending not-ready is used up: a waiting contact is not offered.
    c2 = r.arrive(q, r.now)
    assert r.contact_state(c2) == WAITING


def test_no_answer_drops_a_pending_not_ready(make_router: Any) -> None:
    r = make_router()
    a, c, q = put_agent_in(r, RESERVED)
    r.set_not_ready(a, 1, 7)
    r.no_answer(a, c, 2)
    st = r.agent_stats(a, 2)
    assert (st.state, st.reason, st.rona) == (NOT_READY, REASON_RONA, 1)
    r.set_ready(a, 3)  # gets the contact again
    assert r.take_decisions()[-1] == offer(3, c, a, q)


def test_offer_accept_complete(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=10 * T)
    (a,) = ready_agents(r, [{}])
    c = r.arrive(q, 1)
    assert r.take_decisions() == [offer(1, c, a, q)]
    assert (r.agent_state(a), r.agent_contact(a)) == (RESERVED, c)
    assert (r.contact_state(c), r.contact_agent(c)) == (OFFERED, a)
    assert r.next_deadline() == 1 + 10 * T
    r.accept(a, c, 2)
    assert (r.agent_state(a), r.agent_contact(a)) == (BUSY, c)
    assert (r.contact_state(c), r.contact_agent(c)) == (ACTIVE, a)
    assert r.next_deadline() is None  # the ring timer is cancelled
    r.complete(a, c, 9)
    assert (r.agent_state(a), r.agent_contact(a)) == (READY, None)
    with pytest.raises(UnknownContact):
        r.contact_state(c)
    with pytest.raises(UnknownContact):
        r.contact_agent(c)
    assert r.take_decisions() == []


def test_complete_wrap_up_default_and_override(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    a0, a1 = ready_agents(r, [{}, {}], wrap_up_us=4 * T)
    a2 = r.add_agent({}, wrap_up_us=0)
    r.login(a2, 0)
    r.set_ready(a2, 0)
    cs = [r.arrive(q, 0) for _ in range(3)]
    for a, c in zip((a0, a1, a2), cs, strict=True):
        r.accept(a, c, 0)
    r.take_decisions()
    r.complete(a0, cs[0], 1)  # the agent's default: 4 s
    r.complete(a1, cs[1], 1, wrap_up_us=0)  # override: released at once
    r.complete(a2, cs[2], 1, wrap_up_us=2 * T)  # override on an agent with no wrap-up
    assert [r.agent_state(a) for a in (a0, a1, a2)] == [WRAP_UP, READY, WRAP_UP]
    assert r.next_deadline() == 1 + 2 * T
    r.advance(1 + 4 * T)
    assert r.take_decisions() == [wrap_up_end(1 + 2 * T, a2), wrap_up_end(1 + 4 * T, a0)]
    assert [r.agent_state(a) for a in (a0, a1, a2)] == [READY] * 3


def test_wrap_up_end_offers_a_waiting_contact(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    (a,) = ready_agents(r, [{}], wrap_up_us=5 * T)
    c = r.arrive(q, 0)
    r.accept(a, c, 0)
    r.complete(a, c, 1 * T)
    c2 = r.arrive(q, 2 * T)
    r.take_decisions()
    r.advance(10 * T)
    assert r.take_decisions() == [wrap_up_end(6 * T, a), offer(6 * T, c2, a, q)]
    st = r.agent_stats(a, 10 * T)
    assert st.time_in_state_us[RESERVED] == 4 * T  # from the deadline, not from now


# -- contact transitions ------------------------------------------------------------------


def test_arrival_waits_without_an_eligible_ready_agent(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 5})
    (a,) = ready_agents(r, [{1: 4}])
    c = r.arrive(q, 1)
    assert (r.contact_state(c), r.contact_agent(c)) == (WAITING, None)
    assert r.take_decisions() == []
    assert r.agent_state(a) == READY


def test_abandon_waiting(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    c = r.arrive(q, 1)
    r.abandon(c, 2)
    assert contact_view(r, c) is None
    assert r.queue_stats(q, 2).waiting == 0
    assert r.take_decisions() == []


def test_abandon_offered_releases_the_agent(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 1})
    q2 = r.add_queue({2: 1})
    (a,) = ready_agents(r, [{1: 1, 2: 1}])
    c = r.arrive(q, 1)
    c2 = r.arrive(q2, 2)  # waits: the only agent is RESERVED
    r.take_decisions()
    r.abandon(c, 3)
    assert contact_view(r, c) is None
    assert r.take_decisions() == [offer(3, c2, a, q2)]
    assert r.next_deadline() == 3 + 15 * T  # only c2's ring timer is left
    r.abandon(c2, 4)
    assert (r.agent_state(a), r.agent_contact(a)) == (READY, None)
    assert r.next_deadline() is None
    assert r.take_decisions() == []


def test_abandon_active_is_refused(make_router: Any) -> None:
    r = make_router()
    _, c, _ = put_agent_in(r, BUSY)
    assert_refused(r, InvalidTransition, r.abandon, c, 0, contacts=[c])


def test_require_on_arrive_adds_to_the_queue_requirement(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 3}, strategy=Strategy.LINEAR)
    a = ready_agents(r, [{1: 4, 2: 5}, {1: 5, 2: 2}, {1: 9}])
    r.arrive(q, 1, require={1: 5, 2: 2})
    assert offered_agent(r) == a[1]
    r.arrive(q, 1, require={2: 3})
    assert offered_agent(r) == a[0]
    c = r.arrive(q, 1, require={3: 1})
    assert r.contact_state(c) == WAITING


def test_require_on_arrive_keeps_the_higher_minimum(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({1: 5}, strategy=Strategy.LINEAR)
    a = ready_agents(r, [{1: 3}, {1: 5}])
    r.arrive(q, 1, require={1: 2})  # the queue's 5 wins over 2
    assert offered_agent(r) == a[1]
    r.arrive(q, 1, require={1: 2})
    assert r.take_decisions() == []


def test_require_on_arrive_applies_when_an_agent_becomes_ready(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    c1 = r.arrive(q, 1, require={4: 2})
    c2 = r.arrive(q, 2)
    (a,) = ready_agents(r, [{4: 1}], now=3)
    assert r.take_decisions() == [offer(3, c2, a, q)]
    assert r.contact_state(c1) == WAITING


def test_channel_is_accepted_and_does_not_route(make_router: Any) -> None:
    from agner.core._api import Channel

    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR)
    a = ready_agents(r, [{}, {}])
    for ch in Channel:
        c = r.arrive(q, 1, channel=ch)
        if ch == Channel.VOICE:
            assert offered_agent(r) == a[0]
        elif ch == Channel.CHAT:
            assert offered_agent(r) == a[1]
        else:
            assert r.contact_state(c) == WAITING


# -- dispatch -----------------------------------------------------------------------------


def test_agent_side_dispatch_priority_then_arrival_then_sequence(make_router: Any) -> None:
    r = make_router()
    q_lo = r.add_queue({1: 1}, priority=0)
    q_hi = r.add_queue({2: 1}, priority=10)
    q_other = r.add_queue({3: 1}, priority=100)  # the agent is not eligible here
    a = r.add_agent({1: 1, 2: 1}, wrap_up_us=0)
    r.login(a, 0)
    c_lo1 = r.arrive(q_lo, 1)
    c_hi1 = r.arrive(q_hi, 2)
    c_lo_vip = r.arrive(q_lo, 3, priority=10)  # same priority as q_hi, later arrival
    c_lo2 = r.arrive(q_lo, 3)
    c_hi2 = r.arrive(q_hi, 3)  # same time and priority as c_lo_vip: later sequence
    c_low = r.arrive(q_hi, 3, priority=-5)
    r.arrive(q_other, 0 + 3)
    order = []
    t = 4
    r.set_ready(a, t)
    for _ in range(6):
        (d,) = r.take_decisions()
        assert (d.kind, d.agent, d.time) == (OFFER, a, t)
        order.append((d.contact, d.queue))
        t += 1
        r.accept(a, d.contact, t)
        r.complete(a, d.contact, t)
    assert order == [
        (c_hi1, q_hi),
        (c_lo_vip, q_lo),
        (c_hi2, q_hi),
        (c_lo1, q_lo),
        (c_lo2, q_lo),
        (c_low, q_hi),
    ]
    assert r.agent_state(a) == READY
    assert r.queue_stats(q_other, t).waiting == 1


def test_strategy_does_not_choose_the_contact(make_router: Any) -> None:
    r = make_router()
    q_rr = r.add_queue(strategy=Strategy.ROUND_ROBIN, priority=0)
    q_lin = r.add_queue(strategy=Strategy.LINEAR, priority=0)
    a = r.add_agent({})
    r.login(a, 0)
    c1 = r.arrive(q_lin, 1)
    r.arrive(q_rr, 2)
    r.set_ready(a, 3)
    assert r.take_decisions() == [offer(3, c1, a, q_lin)]


# -- ring-no-answer -----------------------------------------------------------------------


def test_rona_by_timer_keeps_arrival_time(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=15 * T)
    a0, a1 = (r.add_agent({}) for _ in range(2))
    r.login(a0, 0)
    r.login(a1, 0)
    r.set_ready(a0, 0)
    c1 = r.arrive(q, 1 * T)
    c2 = r.arrive(q, 2 * T)
    assert r.take_decisions() == [offer(1 * T, c1, a0, q)]
    assert r.next_deadline() == 16 * T
    r.advance(16 * T - 1)
    assert r.take_decisions() == []
    r.advance(16 * T)
    assert r.take_decisions() == [rona(16 * T, c1, a0, q)]
    st = r.agent_stats(a0, 16 * T)
    assert (st.state, st.reason, st.rona) == (NOT_READY, REASON_RONA, 1)
    assert r.contact_state(c1) == WAITING
    qs = r.queue_stats(q, 17 * T)
    assert (qs.waiting, qs.longest_wait_us, qs.ring_no_answer) == (2, 16 * T, 1)
    r.set_ready(a1, 17 * T)
    assert r.take_decisions() == [offer(17 * T, c1, a1, q)]  # ahead of c2
    assert r.contact_state(c2) == WAITING


def test_rona_by_no_answer_keeps_arrival_time(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR)
    a0, a1 = ready_agents(r, [{}, {}])
    r.set_not_ready(a1, 0)
    c1 = r.arrive(q, 1)
    c2 = r.arrive(q, 2)
    r.take_decisions()
    r.no_answer(a0, c1, 3)
    assert r.take_decisions() == []  # the driver's call: no decision of its own
    assert r.next_deadline() is None
    assert r.agent_stats(a0, 3).rona == 1
    assert r.queue_stats(q, 3).ring_no_answer == 1
    r.set_ready(a1, 4)
    assert r.take_decisions() == [offer(4, c1, a1, q)]
    r.set_ready(a0, 5)
    assert r.take_decisions() == [offer(5, c2, a0, q)]


def test_returned_contact_is_redispatched_at_once(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR, ring_timeout_us=10)
    a0, a1 = ready_agents(r, [{}, {}])
    c = r.arrive(q, 0)
    r.advance(100)
    # The RONA at 10 re-offers to agent 1 at 10, whose ring runs out at 20: then the
    # contact waits (agent 0 is NOT_READY(RONA)).
    assert r.take_decisions() == [
        offer(0, c, a0, q),
        rona(10, c, a0, q),
        offer(10, c, a1, q),
        rona(20, c, a1, q),
    ]
    assert r.contact_state(c) == WAITING
    assert r.queue_stats(q, 100).ring_no_answer == 2


def test_ring_timeout_zero_means_no_timer(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=0)
    (a,) = ready_agents(r, [{}])
    c = r.arrive(q, 0)
    assert r.next_deadline() is None
    r.advance(10**12)
    assert (r.agent_state(a), r.contact_state(c)) == (RESERVED, OFFERED)


# -- timers -------------------------------------------------------------------------------


def test_timers_at_the_same_deadline_fire_in_creation_order(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR, ring_timeout_us=10 * T)
    a0, a1, a2 = ready_agents(r, [{}, {}, {}])
    ca = r.arrive(q, 0)
    cb = r.arrive(q, 0)
    r.accept(a0, ca, 1)
    r.complete(a0, ca, 1, wrap_up_us=10 * T - 1)  # wrap-up ends at 10 s, created after
    assert r.next_deadline() == 10 * T
    r.take_decisions()
    r.advance(10 * T)
    # cb's ring (created at 0) fires first; its contact goes to agent 2 (agent 0 in
    # wrap-up); then agent 0's wrap-up ends and nothing is waiting.
    assert r.take_decisions() == [
        rona(10 * T, cb, a1, q),
        offer(10 * T, cb, a2, q),
        wrap_up_end(10 * T, a0),
    ]
    assert r.agent_state(a0) == READY


def test_earlier_created_wrap_up_fires_before_a_ring_at_the_same_deadline(
    make_router: Any,
) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR, ring_timeout_us=8 * T)
    a0, a1 = ready_agents(r, [{}, {}])
    ca = r.arrive(q, 0)
    r.accept(a0, ca, 0)
    r.complete(a0, ca, 0, wrap_up_us=10 * T)  # wrap-up timer: created first, ends at 10 s
    cb = r.arrive(q, 2 * T)  # to agent 1; its ring timer ends at 10 s too
    r.take_decisions()
    r.advance(10 * T)
    assert r.take_decisions() == [
        wrap_up_end(10 * T, a0),  # agent 0 READY: nothing waiting
        rona(10 * T, cb, a1, q),
        offer(10 * T, cb, a0, q),  # the returned contact finds agent 0
    ]


def test_same_deadline_rings_fire_in_offer_order(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(strategy=Strategy.LINEAR, ring_timeout_us=5)
    a = ready_agents(r, [{}, {}, {}])
    cs = [r.arrive(q, 0) for _ in range(3)]
    r.take_decisions()
    r.advance(5)
    assert r.take_decisions() == [rona(5, c, x, q) for c, x in zip(cs, a, strict=True)]


def test_timers_act_at_their_deadline_not_at_now(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=3 * T)
    a0 = r.add_agent({}, wrap_up_us=2 * T)
    r.login(a0, 0)
    r.set_ready(a0, 0)
    c = r.arrive(q, 0)
    r.accept(a0, c, 1 * T)
    r.complete(a0, c, 2 * T)  # wrap-up to 4 s
    r.take_decisions()
    c2 = r.arrive(q, 3 * T)  # waits
    r.advance(20 * T)
    # Released at 4 s, offered c2 at 4 s, RONA at 7 s; nothing else.
    assert r.take_decisions() == [
        wrap_up_end(4 * T, a0),
        offer(4 * T, c2, a0, q),
        rona(7 * T, c2, a0, q),
    ]
    st = r.agent_stats(a0, 20 * T)
    assert st.time_in_state_us == (0, 13 * T, 0 * T, 4 * T, 1 * T, 2 * T)
    assert r.now == 20 * T
    assert r.next_deadline() is None


def test_every_event_method_advances_first(make_router: Any) -> None:
    for call in ("login", "arrive", "advance", "set_not_ready", "abandon_other"):
        r = make_router()
        q = r.add_queue(ring_timeout_us=10)
        a = r.add_agent({})
        b = r.add_agent({})
        r.login(a, 0)
        r.set_ready(a, 0)
        c = r.arrive(q, 0)
        other = r.arrive(q, 0)
        r.take_decisions()
        if call == "login":
            r.login(b, 50)
        elif call == "arrive":
            r.arrive(q, 50)
        elif call == "advance":
            r.advance(50)
        elif call == "set_not_ready":
            r.set_not_ready(a, 50)
        else:
            r.abandon(other, 50)
        d = r.take_decisions()
        assert d[0] == rona(10, c, a, q), call
        assert r.now == 50


def test_next_deadline_is_the_earliest(make_router: Any) -> None:
    r = make_router()
    q_slow = r.add_queue(ring_timeout_us=30)
    q_fast = r.add_queue(ring_timeout_us=20)
    ready_agents(r, [{}, {}])
    r.arrive(q_slow, 0)
    assert r.next_deadline() == 30
    r.arrive(q_fast, 5)
    assert r.next_deadline() == 25
    r.advance(25)
    assert r.next_deadline() == 30
    r.advance(30)
    assert r.next_deadline() is None


# -- errors -------------------------------------------------------------------------------


def test_unknown_ids(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a = r.add_agent({})
    r.login(a, 0)
    for bad in (-1, 1, 1000):
        for call, args in (
            (r.login, (bad, 0)),
            (r.logout, (bad, 0)),
            (r.set_ready, (bad, 0)),
            (r.set_not_ready, (bad, 0)),
            (r.accept, (bad, 0, 0)),
            (r.no_answer, (bad, 0, 0)),
            (r.complete, (bad, 0, 0)),
            (r.agent_state, (bad,)),
            (r.agent_contact, (bad,)),
            (r.agent_stats, (bad, 0)),
        ):
            assert_refused(r, UnknownAgent, call, *args)
        assert_refused(r, UnknownQueue, r.arrive, bad, 0)
        assert_refused(r, UnknownQueue, r.queue_stats, bad, 0)
    c = r.arrive(q, 0)
    for bad in (-1, NEVER_ISSUED):
        for call, args in (
            (r.contact_state, (bad,)),
            (r.contact_agent, (bad,)),
            (r.abandon, (bad, 0)),
            (r.accept, (a, bad, 0)),
            (r.no_answer, (a, bad, 0)),
            (r.complete, (a, bad, 0)),
        ):
            assert_refused(r, UnknownContact, call, *args, contacts=[c])


def test_ended_contacts_are_unknown(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    (a,) = ready_agents(r, [{}])
    done = r.arrive(q, 0)
    r.accept(a, done, 0)
    r.complete(a, done, 1)
    gone = r.arrive(q, 1)
    r.abandon(gone, 2)
    r.take_decisions()
    for c in (done, gone):
        for call, args in (
            (r.contact_state, (c,)),
            (r.contact_agent, (c,)),
            (r.abandon, (c, 2)),
            (r.accept, (a, c, 2)),
            (r.no_answer, (a, c, 2)),
            (r.complete, (a, c, 2)),
        ):
            assert_refused(r, UnknownContact, call, *args)


def test_config_errors(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a = r.add_agent({1: 1})
    r.login(a, 0)
    bad_maps = [{-1: 1}, {65536: 1}, {1: 0}, {1: 1001}, {1: -3}]
    for m in bad_maps:
        assert_refused(r, ConfigError, r.add_queue, m)
        assert_refused(r, ConfigError, r.add_agent, m)
        assert_refused(r, ConfigError, r.arrive, q, 0, require=m)
    for kw in (
        {"priority": 1_000_001},
        {"priority": -1_000_001},
        {"ring_timeout_us": -1},
        {"sl_threshold_us": -1},
        {"strategy": 99},
        {"strategy": -1},
    ):
        assert_refused(r, ConfigError, r.add_queue, **kw)
    assert_refused(r, ConfigError, r.add_agent, {1: 1}, wrap_up_us=-1)
    assert_refused(r, ConfigError, r.arrive, q, 0, priority=1_000_001)
    assert_refused(r, ConfigError, r.arrive, q, 0, priority=-1_000_001)
    assert_refused(r, ConfigError, r.set_not_ready, a, 0, -1)
    assert_refused(r, ConfigError, r.set_not_ready, a, 0, -7)
    for call, args in (
        (r.login, (a, -1)),
        (r.logout, (a, -1)),
        (r.set_ready, (a, -1)),
        (r.set_not_ready, (a, -1)),
        (r.arrive, (q, -1)),
        (r.accept, (a, 0, -1)),
        (r.no_answer, (a, 0, -1)),
        (r.complete, (a, 0, -1)),
        (r.abandon, (0, -1)),
        (r.advance, (-1,)),
        (r.queue_stats, (q, -1)),
        (r.agent_stats, (a, -1)),
    ):
        assert_refused(r, ConfigError, call, *args)


def test_limits_are_inclusive(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue({0: 1, 65535: 1000}, priority=1_000_000, ring_timeout_us=0, sl_threshold_us=0)
    r.add_queue(priority=-1_000_000)
    a = r.add_agent({0: 1000, 65535: 1000}, wrap_up_us=0)
    r.login(a, 0)
    r.set_not_ready(a, 0, 0)
    r.set_ready(a, 0)
    c = r.arrive(q, 0, priority=-1_000_000, require={0: 1000})
    assert r.take_decisions() == [offer(0, c, a, q)]
    c2 = r.arrive(q, 0, priority=1_000_000)
    r.accept(a, c, 0)
    r.complete(a, c, 0, wrap_up_us=0)
    assert r.take_decisions() == [offer(0, c2, a, q)]


def test_time_errors(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    (a,) = ready_agents(r, [{}])
    c = r.arrive(q, 10)
    r.take_decisions()
    for call, args in (
        (r.login, (a, 9)),
        (r.logout, (a, 9)),
        (r.set_ready, (a, 9)),
        (r.set_not_ready, (a, 9)),
        (r.arrive, (q, 9)),
        (r.accept, (a, c, 9)),
        (r.no_answer, (a, c, 9)),
        (r.complete, (a, c, 9)),
        (r.abandon, (c, 9)),
        (r.advance, (9,)),
        (r.queue_stats, (q, 9)),
        (r.agent_stats, (a, 9)),
    ):
        assert_refused(r, TimeError, call, *args, contacts=[c])
    r.accept(a, c, 10)  # the same time is fine


def test_error_check_order(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=10)
    (a,) = ready_agents(r, [{}])
    c = r.arrive(q, 5)
    r.take_decisions()
    # 1. ids before values; values before time.
    assert_refused(r, UnknownAgent, r.login, 7, -1)
    assert_refused(r, UnknownQueue, r.arrive, 7, -1, priority=10**9)
    assert_refused(r, UnknownAgent, r.set_not_ready, 7, 0, -5)
    assert_refused(r, UnknownAgent, r.complete, 7, c, 0, wrap_up_us=-1)
    assert_refused(r, ConfigError, r.set_not_ready, a, 0, -5)
    assert_refused(r, ConfigError, r.complete, a, c, 0, wrap_up_us=-1)
    assert_refused(r, ConfigError, r.arrive, q, 0, priority=10**9)
    # 2. time before contacts: a stale time with an unknown contact is a TimeError.
    assert_refused(r, TimeError, r.accept, a, NEVER_ISSUED, 0)
    assert_refused(r, TimeError, r.abandon, NEVER_ISSUED, 0)
    # 4. UnknownContact before InvalidTransition.
    assert_refused(r, UnknownContact, r.complete, a, NEVER_ISSUED, 5)
    # 3. before 4: the ring timer (deadline 15) fires, then the call is refused.
    with pytest.raises(InvalidTransition):
        r.accept(a, c, 20)
    assert r.take_decisions() == [rona(15, c, a, q)]
    assert r.agent_state(a) == NOT_READY
    assert r.contact_state(c) == WAITING
    assert r.now == 20


def test_invalid_contact_calls(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a, b = ready_agents(r, [{}, {}])
    c = r.arrive(q, 0)  # offered to a
    w = r.arrive(q, 0)  # offered to b
    r.set_not_ready(b, 0)  # pending
    w2 = r.arrive(q, 0)  # waiting
    r.take_decisions()
    cs = [c, w, w2]
    refused = [
        (r.accept, (b, c, 0)),  # offered to another agent
        (r.no_answer, (b, c, 0)),
        (r.complete, (a, c, 0)),  # not answered yet
        (r.accept, (a, w2, 0)),  # waiting
        (r.no_answer, (a, w2, 0)),
        (r.complete, (a, w2, 0)),
    ]
    for call, args in refused:
        assert_refused(r, InvalidTransition, call, *args, contacts=cs)
    r.accept(a, c, 1)
    for call, args in (
        (r.accept, (a, c, 1)),  # already answered
        (r.no_answer, (a, c, 1)),
        (r.complete, (b, c, 1)),  # handled by another agent
        (r.abandon, (c, 1)),
    ):
        assert_refused(r, InvalidTransition, call, *args, contacts=cs)


def test_refused_config_adds_nothing(make_router: Any) -> None:
    r = make_router()
    with pytest.raises(ConfigError):
        r.add_queue({1: 0})
    with pytest.raises(ConfigError):
        r.add_agent({70000: 1})
    assert (r.n_queues, r.n_agents) == (0, 0)
    assert r.add_queue() == 0
    assert r.add_agent({}) == 0


# -- statistics ---------------------------------------------------------------------------


def test_queue_and_agent_statistics(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(sl_threshold_us=10 * T, ring_timeout_us=15 * T)
    a0 = r.add_agent({})
    a1 = r.add_agent({})
    r.login(a0, 0)
    r.login(a1, 0)
    c0 = r.arrive(q, 0)
    c1 = r.arrive(q, 1 * T)
    c2 = r.arrive(q, 2 * T)
    c3 = r.arrive(q, 3 * T)
    qs = r.queue_stats(q, 5 * T)
    assert qs == (4, 0, 0, 0, 4, 5 * T, 0, 0, None, 0, 0.0, None, None, 0, 0, 0, 0, 0, 0)
    r.set_ready(a0, 5 * T)  # offered c0
    r.accept(a0, c0, 6 * T)  # waited 6 s: within the service level
    r.abandon(c1, 8 * T)  # waited 7 s: a short abandon
    r.set_ready(a1, 12 * T)  # offered c2
    qs = r.queue_stats(q, 12 * T)
    assert (qs.waiting, qs.longest_wait_us) == (1, 9 * T)  # only c3: OFFERED is not waiting
    r.no_answer(a1, c2, 13 * T)
    qs = r.queue_stats(q, 13 * T)
    assert (qs.waiting, qs.longest_wait_us) == (2, 11 * T)  # c2 keeps its arrival time
    st = r.agent_stats(a1, 13 * T + 500)
    assert (st.state, st.reason) == (NOT_READY, REASON_RONA)
    r.set_ready(a1, 14 * T)  # offered c2 again
    r.accept(a1, c2, 16 * T)  # waited 14 s: outside the service level
    r.complete(a0, c0, 20 * T, wrap_up_us=4 * T)
    r.take_decisions()
    r.abandon(c3, 25 * T)  # fires a0's wrap-up end at 24 s (c3 offered), then abandons
    assert r.take_decisions() == [wrap_up_end(24 * T, a0), offer(24 * T, c3, a0, q)]
    qs = r.queue_stats(q, 30 * T)
    assert qs.offered == 4
    assert qs.answered == 2
    assert qs.abandoned == 2
    assert qs.abandoned_within_sl == 1
    assert qs.waiting == 0
    assert qs.longest_wait_us == 0
    assert qs.answered_within_sl == 1
    assert qs.wait_answered_us == 20 * T
    assert qs.asa_us == 10 * T
    assert qs.ring_no_answer == 1
    assert qs.service_level_offered == 1 / 4
    assert qs.service_level_answered == 1 / 2
    assert qs.service_level_excluding_short_abandons == 1 / 3
    s0 = r.agent_stats(a0, 30 * T)
    assert s0.state == READY
    assert s0.reason == 0
    assert s0.handled == 1
    assert s0.talk_time_us == 14 * T
    assert s0.rona == 0
    assert s0.time_in_state_us == (0, 5 * T, 5 * T, 2 * T, 14 * T, 4 * T)
    assert s0.idle_time_us == 5 * T
    assert s0.occupancy == 20 / 25
    s1 = r.agent_stats(a1, 30 * T)
    assert (s1.state, s1.handled, s1.talk_time_us, s1.rona) == (BUSY, 0, 0, 1)
    assert s1.time_in_state_us == (0, 13 * T, 0, 3 * T, 14 * T, 0)
    assert s1.idle_time_us == 0
    assert s1.occupancy == 1.0
    r.complete(a1, c2, 30 * T)
    s1 = r.agent_stats(a1, 31 * T)
    assert (s1.state, s1.handled, s1.talk_time_us) == (READY, 1, 14 * T)
    assert s1.time_in_state_us == (0, 13 * T, 1 * T, 3 * T, 14 * T, 0)
    assert s1.occupancy == 17 / 18


def test_service_level_threshold_is_inclusive(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(sl_threshold_us=10)
    (a,) = ready_agents(r, [{}])
    r.set_not_ready(a, 0)
    c_in = r.arrive(q, 0)
    c_out = r.arrive(q, 0)
    c_ab_in = r.arrive(q, 0)
    c_ab_out = r.arrive(q, 0)
    r.abandon(c_ab_in, 10)
    r.set_ready(a, 10)
    r.accept(a, c_in, 10)
    r.complete(a, c_in, 10)
    r.abandon(c_ab_out, 11)
    r.accept(a, c_out, 11)
    qs = r.queue_stats(q, 11)
    assert (qs.answered, qs.answered_within_sl) == (2, 1)
    assert (qs.abandoned, qs.abandoned_within_sl) == (2, 1)
    assert qs.wait_answered_us == 21
    assert qs.asa_us == 10.5
    assert qs.service_level_excluding_short_abandons == 1 / 3


def test_abandon_of_an_offered_contact_counts_its_whole_wait(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(sl_threshold_us=10)
    (a,) = ready_agents(r, [{}])
    r.set_not_ready(a, 0)
    c = r.arrive(q, 0)
    r.set_ready(a, 8)
    r.abandon(c, 11)
    qs = r.queue_stats(q, 11)
    assert (qs.abandoned, qs.abandoned_within_sl, qs.answered) == (1, 0, 0)
    assert qs.service_level_excluding_short_abandons == 0.0
    assert qs.service_level_answered is None
    assert qs.asa_us is None


def test_stats_of_fresh_objects(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    a = r.add_agent({})
    assert r.queue_stats(q, 0) == (
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        None,
        0,
        None,
        None,
        None,
        0,
        0,
        0,
        0,
        0,
        0,
    )
    st = r.agent_stats(a, 7)
    assert st == (LOGGED_OUT, 0, 0, 0, 0, (7, 0, 0, 0, 0, 0), 0, None)
    r.login(a, 7)
    assert r.agent_stats(a, 9).occupancy is None


def test_reason_is_reported_only_while_not_ready(make_router: Any) -> None:
    # A reason belongs to NOT_READY; in every other state agent_stats reports 0.
    r = make_router()
    q = r.add_queue(ring_timeout_us=10)
    a = r.add_agent({})

    def reason(now: int) -> tuple[AgentState, int]:
        st = r.agent_stats(a, now)
        return st.state, st.reason

    r.login(a, 0)
    assert reason(0) == (NOT_READY, 0)
    r.set_not_ready(a, 1, 5)
    assert reason(1) == (NOT_READY, 5)
    r.set_ready(a, 2)
    assert reason(2) == (READY, 0)
    c = r.arrive(q, 3)
    r.set_not_ready(a, 3, 7)  # pending: not yet the agent's reason
    assert reason(3) == (RESERVED, 0)
    r.advance(13)  # ring timeout: NOT_READY(RONA), the pending reason dropped
    assert reason(13) == (NOT_READY, REASON_RONA)
    r.set_ready(a, 14)  # offered c again
    assert reason(14) == (RESERVED, 0)
    r.accept(a, c, 15)
    assert reason(15) == (BUSY, 0)
    r.set_not_ready(a, 16, 8)
    r.complete(a, c, 17)  # released into the pending NOT_READY(8)
    assert reason(17) == (NOT_READY, 8)
    r.logout(a, 18)
    assert reason(18) == (LOGGED_OUT, 0)


def test_logged_out_time_starts_when_the_agent_is_added(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    r.arrive(q, 100)
    a = r.add_agent({})
    assert r.agent_stats(a, 150).time_in_state_us == (50, 0, 0, 0, 0, 0)


def test_stats_queries_change_nothing(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue(ring_timeout_us=10)
    (a,) = ready_agents(r, [{}])
    c = r.arrive(q, 5)
    r.take_decisions()
    st = r.agent_stats(a, 100)  # past the ring deadline: no timer fires
    assert st.state == RESERVED
    assert st.time_in_state_us[RESERVED] == 95
    assert r.queue_stats(q, 100).ring_no_answer == 0
    assert r.next_deadline() == 15
    assert r.take_decisions() == []
    assert r.now == 5
    r.accept(a, c, 12)  # the query did not move the clock
    assert r.contact_state(c) == ACTIVE


def test_longest_wait(make_router: Any) -> None:
    r = make_router()
    q = r.add_queue()
    q2 = r.add_queue()
    r.arrive(q2, 0)
    c1 = r.arrive(q, 3)
    r.arrive(q, 4)
    assert r.queue_stats(q, 10).longest_wait_us == 7
    r.abandon(c1, 10)
    assert r.queue_stats(q, 10).longest_wait_us == 6
    assert r.queue_stats(q2, 10).longest_wait_us == 10
