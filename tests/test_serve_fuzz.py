"""Property-based fuzzing of the live center's handlers: any sequence of inputs, from
any session, leaves a consistent state (no agent with two contacts, no contact
offered across tenants), refusals change nothing, and replaying the journal
reaches the same state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agner.center import Center, Identity, Refused
from agner.config import ServerConfig, check_server
from agner.core._api import ContactState
from agner.protocol import (
    Accept,
    Answered,
    Arrived,
    CallbackRequest,
    Complete,
    Dial,
    HungUp,
    Login,
    Logout,
    NoAnswer,
    NotReady,
    Ready,
    Transfer,
)

ROOT = Path(__file__).resolve().parent.parent
_TEXT = (ROOT / "examples" / "center.toml").read_text()
# The example, and the example with limits, overflow, rejection and aging.
_LIMITED = (
    _TEXT.replace(
        "require = { support = 1 }",
        'require = { support = 1 }\nmax_waiting = 1\noverflow = "sales"',
    )
    .replace(
        "require = { billing = 1 }",
        'require = { billing = 1 }\nwhen_unstaffed = "reject"\nmax_wait_s = 30',
    )
    .replace("priority = 1\n", "priority = 1\npriority_weight_s = 10\nparallel = 2\n", 1)
)
CFGS = [msgspec.toml.decode(t.encode(), type=ServerConfig) for t in (_TEXT, _LIMITED)]
for _cfg in CFGS:
    check_server(_cfg)

# Mostly acme's names (most inputs come from acme's service session), so that
# many inputs get through; the others test the refusals.
AGENTS = ["acme-sales-1", "acme-sales-2", "acme-support-1", "ann"] * 3 + ["globex-billing-1", "x"]
QUEUES = ["sales", "sales", "support", "billing", "x"]
CALLS = ["c0", "c1"]
agent = st.sampled_from([*AGENTS, None])
call = st.sampled_from(CALLS)
queue = st.sampled_from(QUEUES)

messages = st.one_of(
    st.builds(
        Arrived,
        call,
        queue,
        st.sampled_from(["voice", "chat", "email", "callback"]),
        st.none() | st.integers(-3, 3),
        st.none()
        | st.dictionaries(
            st.sampled_from(["sales", "support", "billing", "zz"]),
            st.integers(1, 6),
            max_size=2,
        ),
        st.none() | st.sampled_from(["+1", "a@b"]),
    ),
    st.builds(Answered, call, agent),
    st.builds(Accept, call, agent),
    st.builds(HungUp, call),
    st.builds(NoAnswer, call),
    st.builds(Transfer, call, queue),
    st.builds(Login, agent),
    st.builds(Logout, agent),
    st.builds(Ready, agent),
    st.builds(NotReady, agent, st.integers(-1, 3)),
    st.builds(
        Complete,
        call,
        agent,
        st.none() | st.just("done"),
        st.none() | st.integers(0, 6),
        st.none() | st.sampled_from([0.0, 1.0, -1.0]),
    ),
    st.builds(Dial, queue, st.just("+49"), st.none() | call),
    st.builds(CallbackRequest, call, st.just("+49")),
)
# more of what makes state: arrivals, logins, ready, answers
messages = st.one_of(
    messages,
    st.builds(Arrived, call, st.sampled_from(["sales", "support"])),
    st.builds(Login, agent),
    st.builds(Ready, agent),
    st.builds(Answered, call),
    st.builds(NoAnswer, call, agent),
)
# service sessions of both tenants, ann's and bob's desktops
idents = st.sampled_from([Identity(0)] * 6 + [Identity(1), Identity(0, 100), Identity(1, 101)])
steps = st.lists(st.tuples(idents, messages, st.integers(0, 20_000_000)), max_size=80)


def _state(c: Center, now: int) -> Any:
    return (
        [c.queue_snapshots(t, now) for t in range(len(c.tenants))],
        [c.agent_snapshots(t, now) for t in range(len(c.tenants))],
        sorted((k, v.call_id, v.tenant, v.queue, v.dial, v.callback) for k, v in c.live.items()),
        sorted((a, p.live.call_id) for a, p in c.pending.items()),
        c.dials,
    )


def _check_invariants(c: Center) -> None:
    r = c.router
    seen: set[int] = set()
    for a in range(r.n_agents):
        contact = r.agent_contact(a)
        if contact is not None:
            live = c.live[contact]
            assert live.tenant == c.agent_tenant[a]  # never across tenants
            if r.contact_state(contact) is ContactState.ACTIVE:
                assert contact not in seen  # one agent per answered contact
                seen.add(contact)
                assert r.contact_agent(contact) == a and live.ringing == []
            else:  # ringing, maybe with others (parallel offers)
                assert a in live.ringing
    for contact, live in c.live.items():
        for a in live.ringing:
            assert r.agent_contact(a) == contact
    for t, calls in enumerate(c.by_call):
        for call_id, contact in calls.items():
            assert c.live[contact].call_id == call_id and c.live[contact].tenant == t
            r.contact_state(contact)  # a live contact id is valid in the core
    assert sum(len(x) for x in c.by_call) == len(c.live)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CFGS), steps)
def test_any_input_sequence_keeps_the_center_consistent_and_replayable(
    cfg: ServerConfig, seq: list[tuple[Identity, Any, int]]
) -> None:
    center = Center(cfg)
    journal: list[tuple[int, Identity, Any]] = []
    center.journal = lambda now, ident, msg: journal.append((now, ident, msg))
    now = 0
    prefix = [Login(agent=a) for a in AGENTS[:4]] + [Ready(agent=a) for a in AGENTS[:4]]
    seq = [(Identity(0), m, 1) for m in prefix] + seq  # agents to offer to
    for ident, msg, dt in seq:
        now += dt
        center.advance(now)  # what apply does first (timers are not journaled)
        before = _state(center, now)
        n = len(journal)
        try:
            center.apply(ident, msg, now)
        except Refused as exc:
            if len(journal) == n:  # refused before the journal: nothing changed
                assert _state(center, now) == before, exc
        _check_invariants(center)
        center.outbox.clear()
    again = Center(cfg)
    for t, ident, msg in journal:
        again.replay(t, ident, msg)
    again.advance(now)
    center.advance(now)
    assert _state(again, now) == _state(center, now)
