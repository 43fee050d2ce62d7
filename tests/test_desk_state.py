"""What an agent's desktop is told about its agent (agent_status, connected,
ended), and the per-tenant counts of agents by state the wallboard reads, kept
as agents move rather than counted by a scan."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest
from test_serve_center import ACME, GLOBEX, ROOT, Driver, Sink

from agner.center import Center, Identity, Refused
from agner.config import load_server_config
from agner.core._api import AgentState, RouterError
from agner.protocol import (
    Accept,
    AgentStatus,
    Answered,
    Arrived,
    CallbackRequest,
    Complete,
    Connected,
    Dial,
    Ended,
    HungUp,
    Login,
    Logout,
    NoAnswer,
    NotReady,
    Offer,
    Ready,
    Revoked,
    Transfer,
)

STATES = [s.name.lower() for s in AgentState]


def scanned(center: Center, tenant: int) -> dict[str, int]:
    """The tenant's agents by state, by asking the core about every agent."""
    counts = dict.fromkeys(STATES, 0)
    for aid, t in enumerate(center.agent_tenant):
        if t == tenant:
            counts[center.router.agent_state(aid).name.lower()] += 1
    return counts


def check_counts(d: Driver) -> dict[str, int]:
    """Both tenants' kept counts equal a scan; returns acme's, without the zeros."""
    for t in (0, 1):
        assert d.center.agent_counts(t) == scanned(d.center, t)
    return {k: v for k, v in d.center.agent_counts(0).items() if v and k != "logged_out"}


def advance(d: Driver, seconds: float) -> None:
    d.now += round(seconds * 1_000_000)
    d.center.advance(d.now)
    for sink, out in d.center.outbox:
        sink.send(out)
    d.center.outbox.clear()


def with_wrap_up(tmp_path: Path, seconds: int) -> Path:
    """examples/center.toml with a wrap-up for acme's sales agents (ann too)."""
    text = (ROOT / "examples" / "center.toml").read_text()
    old = "skills = { sales = 5, support = 1 }\nwrap_up_s = 0"
    assert old in text
    cfg = tmp_path / "center.toml"
    cfg.write_text(text.replace(old, old[:-1] + str(seconds)))
    return cfg


@pytest.fixture
def wrap(tmp_path: Path) -> Driver:
    return Driver(with_wrap_up(tmp_path, 30))


def desk(d: Driver, name: str) -> tuple[Identity, Sink]:
    ident = Identity(0, d.agent(name))
    sink = Sink()
    d.center.attach(ident, sink, switch=False)
    return ident, sink


def statuses(sink: Sink) -> list[tuple[str, int, str | None, str | None]]:
    """(state, reason, call id, phase) of each agent_status the desktop got."""
    return [
        (
            m.state,
            m.reason,
            None if m.contact is None else m.contact.call_id,
            None if m.contact is None else m.contact.phase,
        )
        for m in sink.got
        if isinstance(m, AgentStatus)
    ]


def kinds(sink: Sink) -> list[str]:
    return [type(m).__name__ for m in sink.got]


# ---------------------------------------------------------------- counts


def test_counts_follow_logins_offers_rona_wrap_up_and_logouts(wrap: Driver) -> None:
    d = wrap
    assert check_counts(d) == {}
    assert d.center.agent_counts(0)["logged_out"] == 81
    d(ACME, Login(agent="acme-sales-1"))
    d(ACME, Login(agent="acme-sales-2"))
    d(ACME, Login(agent="acme-support-1"))
    assert check_counts(d) == {"not_ready": 3}
    d(ACME, Ready(agent="acme-sales-1"))
    d(ACME, Ready(agent="acme-support-1"))
    assert check_counts(d) == {"not_ready": 1, "ready": 2}
    d(ACME, Arrived("c1", "sales"))  # offered: reserved
    assert check_counts(d) == {"not_ready": 1, "ready": 1, "reserved": 1}
    advance(d, 16)  # the ring timer: RONA, the agent goes not ready
    assert d.switch[0].got[-1] == Revoked("c1", "acme-sales-1", "rona")
    assert check_counts(d) == {"not_ready": 2, "ready": 1}
    d(ACME, Ready(agent="acme-sales-2"))  # takes the waiting c1 at once
    assert check_counts(d) == {"not_ready": 1, "ready": 1, "reserved": 1}
    d(ACME, NoAnswer("c1"))  # the switch's ring-no-answer
    assert check_counts(d) == {"not_ready": 2, "ready": 1}
    d(ACME, Ready(agent="acme-sales-1"))
    d(ACME, Answered("c1"))
    assert check_counts(d) == {"not_ready": 1, "ready": 1, "busy": 1}
    d(ACME, HungUp("c1"))  # the group's wrap-up of 30 s
    assert check_counts(d) == {"not_ready": 1, "ready": 1, "wrap_up": 1}
    advance(d, 31)
    assert check_counts(d) == {"not_ready": 1, "ready": 2}
    d(ACME, Arrived("c2", "sales"))
    d(ACME, Answered("c2"))
    d(ACME, Complete("c2", agent="acme-sales-1", wrap_up_s=5))
    assert check_counts(d) == {"not_ready": 1, "ready": 1, "wrap_up": 1}
    d(ACME, NotReady(agent="acme-support-1", reason=2))
    advance(d, 6)
    assert check_counts(d) == {"not_ready": 2, "ready": 1}
    d(ACME, Arrived("c3", "sales"))  # reserved, then its agent logs out
    assert check_counts(d) == {"not_ready": 2, "reserved": 1}
    d(ACME, Logout(agent="acme-sales-1"))
    d(ACME, Logout(agent="acme-sales-2"))
    d(ACME, Logout(agent="acme-support-1"))
    assert check_counts(d) == {}
    assert d.center.agent_counts(0)["logged_out"] == 81
    assert sum(d.center.agent_counts(1).values()) == 21


def test_counts_follow_transfers_parallel_offers_and_abandons(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "center.toml").read_text()
    assert 'strategy = "longest_idle"' in text
    cfg = tmp_path / "center.toml"
    cfg.write_text(
        text.replace('strategy = "longest_idle"', 'strategy = "longest_idle"\nparallel = 3')
    )
    d = Driver(cfg)
    d.ready(ACME, "acme-sales-1", "acme-sales-2", "acme-sales-3", "acme-support-1")
    d(ACME, Arrived("p", "sales"))  # rings three agents at once
    assert check_counts(d) == {"ready": 1, "reserved": 3}
    d(ACME, Answered("p", agent="acme-sales-2"))  # the others are released
    assert check_counts(d) == {"ready": 3, "busy": 1}
    d(ACME, Transfer("p", "support"))  # to support's ready agent
    assert check_counts(d) == {"ready": 3, "reserved": 1}
    d(ACME, Arrived("q", "sales"))
    assert check_counts(d) == {"reserved": 4}
    d(ACME, HungUp("q"))  # abandoned while ringing: the three are ready again
    assert check_counts(d) == {"ready": 3, "reserved": 1}
    d(GLOBEX, Login(agent="bob"))
    assert d.center.agent_counts(1)["not_ready"] == 1
    assert check_counts(d) == {"ready": 3, "reserved": 1}  # acme's did not move


def random_input(d: Driver, rng: random.Random, n: int) -> Any:
    """A plausible input for the center as it stands (a switch and agents at work),
    and now and then one it refuses."""
    agents = [f"acme-sales-{i}" for i in range(1, 6)] + ["acme-support-1", "ann"]
    agent = rng.choice(agents)
    center = d.center
    live = list(center.by_call[0].items())
    roll = rng.random()
    if roll < 0.25:
        return rng.choice(
            [
                Login(agent=agent),
                Logout(agent=agent),
                Ready(agent=agent),
                Ready(agent=agent),
                Ready(agent=agent),
                NotReady(agent=agent, reason=rng.randrange(3)),
            ]
        )
    if roll < 0.33 or not live:
        if rng.random() < 0.2:
            return Dial("sales", "+33142685300", call_id=f"d{n}", agent=agent)
        return Arrived(f"c{n}", rng.choice(["sales", "sales", "support"]))
    call, c = rng.choice(live)
    ringing = center.live[c].ringing
    handler = center.router.contact_agent(c)
    if ringing:
        who = center.ids.agents[rng.choice(ringing)]
        answered = Answered(call, agent=who)
        return rng.choice([answered, answered, answered, NoAnswer(call, agent=who), HungUp(call)])
    if handler is not None:
        who = center.ids.agents[handler]
        wrap = rng.choice([None, 0, 3])
        return rng.choice(
            [
                HungUp(call),
                HungUp(call),
                Complete(call, agent=who, wrap_up_s=wrap),
                Complete(call, agent=who, wrap_up_s=wrap),
                Transfer(call, rng.choice(["sales", "support"])),
            ]
        )
    for aid, pending in center.pending.items():  # a disposition owed after a hang-up
        if rng.random() < 0.5:
            return Complete(pending.live.call_id, agent=center.ids.agents[aid])
    hung_up = HungUp(call)
    return rng.choice(
        [hung_up, hung_up, hung_up, CallbackRequest(call, "+33142685300"), Accept(call, agent)]
    )


@pytest.mark.parametrize("parallel", [1, 2])
def test_counts_equal_a_scan_through_random_inputs_and_a_replay(
    tmp_path: Path, parallel: int
) -> None:
    """Differential: after every input of a random stream (refused ones too), the
    kept counts are the scan's; a center replaying the journal keeps the same."""
    cfg = with_wrap_up(tmp_path, 20)
    text = cfg.read_text()
    old = 'strategy = "longest_idle"'
    cfg.write_text(text.replace(old, f"{old}\nparallel = {parallel}", 1))
    d = Driver(cfg)
    seen = dict.fromkeys(STATES, 0)
    applied = 0
    rng = random.Random(parallel)
    for n in range(2000):
        msg = random_input(d, rng, n)
        with contextlib.suppress(Refused, RouterError):
            d(ACME, msg, dt_us=rng.randrange(1, 4_000_000))
            applied += 1
        for state in check_counts(d):
            seen[state] += 1
    assert applied > 1200
    assert all(seen[s] > 100 for s in STATES if s != "logged_out"), seen  # every state met
    again = Center(load_server_config(cfg))
    for now, ident, m in d.journal:
        again.replay(now, ident, m)
    again.advance(d.now)
    d.center.advance(d.now)
    for t in (0, 1):
        assert again.agent_counts(t) == d.center.agent_counts(t) == scanned(again, t)
    restored = Center.restore(load_server_config(cfg), d.center.dump([]))  # a snapshot
    for t in (0, 1):
        assert restored.agent_counts(t) == d.center.agent_counts(t)


# ---------------------------------------------------------------- the desktop


def test_the_desktop_hears_the_switch_answer_and_the_caller_hang_up(wrap: Driver) -> None:
    d = wrap
    ann, sink = desk(d, "ann")
    d(ann, Login())
    d(ann, Ready())
    d(ACME, Arrived("c", "sales", customer="+33142685300", data={"ivr": "2"}))
    d(ACME, Answered("c"))
    d(ACME, HungUp("c"))
    assert kinds(sink) == [
        "AgentStatus",  # not ready
        "AgentStatus",  # ready
        "Offer",
        "AgentStatus",  # reserved, ringing c
        "Connected",
        "AgentStatus",  # busy, c answered
        "Ended",
        "AgentStatus",  # wrap-up, c ended: the disposition is owed
    ]
    assert statuses(sink) == [
        ("not_ready", 0, None, None),
        ("ready", 0, None, None),
        ("reserved", 0, "c", "ringing"),
        ("busy", 0, "c", "answered"),
        ("wrap_up", 0, "c", "ended"),
    ]
    connected = sink.got[4]
    assert connected == Connected("c", "ann", d.now - 1000)
    assert sink.got[6] == Ended("c", "ann", "hung_up", d.now)
    last = sink.got[-1]
    assert last.since_us == d.now
    assert last.contact is not None
    assert (last.contact.customer, last.contact.data, last.contact.queue) == (
        "+33142685300",
        {"ivr": "2"},
        "sales",
    )
    assert (last.contact.answered_us, last.contact.ended_us) == (d.now - 1000, d.now)
    # the disposition after the hang-up: nothing owed any more, still in wrap-up
    d(ann, Complete("c", disposition="sale"))
    assert statuses(sink)[-1] == ("wrap_up", 0, None, None)
    advance(d, 31)
    assert kinds(sink)[-2:] == ["AgentReady", "AgentStatus"]
    assert statuses(sink)[-1] == ("ready", 0, None, None)


def test_the_desktop_hears_transfers_abandons_and_ring_no_answer() -> None:
    d = Driver()
    ann, sink = desk(d, "ann")
    d(ann, Login())
    d(ann, Ready())
    d(ACME, Arrived("c", "sales"))
    d(ann, Accept("c"))
    assert isinstance(sink.got[-2], Connected)  # its own accept too (other tabs)
    d(ACME, Transfer("c", "sales"))  # to sales: ann alone is logged in, takes it back
    ended, offer, _ = sink.got[-3:]
    assert ended == Ended("c", "ann", "transferred", d.now, "sales")
    assert isinstance(offer, Offer) and offer.call_id == "c"  # after the ended, not before
    assert statuses(sink)[-1] == ("reserved", 0, "c", "ringing")
    d(ACME, Logout(agent="ann"))
    d(ACME, Login(agent="acme-sales-1"))
    d(ACME, Ready(agent="acme-sales-1"))  # takes c
    d(ACME, Login(agent="ann"))
    d(ACME, Ready(agent="ann"))
    d(ACME, Answered("c"))
    d(ACME, Transfer("c", "support", agent="ann"))  # to ann in support, from acme-sales-1
    d(ACME, Answered("c"))
    n = len(sink.got)
    d(ACME, Transfer("c", "support", agent="acme-support-1"))  # away from ann
    assert sink.got[n:] == [
        Ended("c", "ann", "transferred", d.now, "support"),
        d.center.agent_status(d.agent("ann"), d.now),
    ]
    assert statuses(sink)[-1] == ("ready", 0, None, None)  # wrap-up 0 s, nothing owed
    d(ACME, Logout(agent="acme-sales-1"))
    d(ACME, Arrived("gone", "sales"))
    d(ACME, HungUp("gone"))  # abandoned while ringing
    assert sink.got[-2] == Revoked("gone", "ann", "abandoned")
    assert statuses(sink)[-2:] == [("reserved", 0, "gone", "ringing"), ("ready", 0, None, None)]
    d(ACME, Arrived("late", "sales"))
    advance(d, 16)
    assert sink.got[-2] == Revoked("late", "ann", "rona")
    assert statuses(sink)[-1] == ("not_ready", -1, None, None)  # -1: ring-no-answer
    n = len(sink.got)
    d(ann, NotReady(reason=3))  # the reason changes, the state does not: said all the same
    assert statuses(sink)[-1] == ("not_ready", 3, None, None) and len(sink.got) == n + 1
    d(ann, NotReady(reason=3))  # nothing changed: nothing sent
    assert len(sink.got) == n + 1


def test_agent_status_tells_a_new_desktop_where_the_agent_stands(wrap: Driver) -> None:
    """What the server sends after a desktop's welcome, in each state."""
    d = wrap
    aid = d.agent("ann")

    def now() -> tuple[str, int, str | None, str | None]:
        s = d.center.agent_status(aid, d.now)
        c = s.contact
        return (s.state, s.reason, None if c is None else c.call_id, None if c is None else c.phase)

    assert now() == ("logged_out", 0, None, None)
    assert d.center.agent_status(aid, d.now).since_us is None  # not since the start
    d(ACME, Login(agent="ann"))
    d(ACME, NotReady(agent="ann", reason=2))
    assert now() == ("not_ready", 2, None, None)
    d(ACME, Ready(agent="ann"))
    assert now() == ("ready", 0, None, None)
    d(ACME, Arrived("c", "sales", customer="a@b.c"))
    assert now() == ("reserved", 0, "c", "ringing")
    d(ACME, Answered("c"))
    assert now() == ("busy", 0, "c", "answered")
    d(ACME, HungUp("c"))
    assert now() == ("wrap_up", 0, "c", "ended")
    d(ACME, Complete("c", agent="ann"))
    assert now() == ("wrap_up", 0, None, None)
    d(ACME, Arrived("cb", "sales"))  # waits: ann is in wrap-up
    advance(d, 31)
    assert now() == ("reserved", 0, "cb", "ringing")


def test_a_desktops_detach_forgets_what_it_was_sent() -> None:
    d = Driver()
    ann, sink = desk(d, "ann")
    d(ann, Login())
    assert d.agent("ann") in d.center.desk_seen
    d.center.detach(ann, sink)
    assert d.agent("ann") not in d.center.desktops
    assert d.agent("ann") not in d.center.desk_seen
    d(ACME, Ready(agent="ann"))  # no desktop: nothing to send, counts still move
    assert d.center.outbox == []
    assert check_counts(d) == {"ready": 1}
    assert not any(isinstance(m, Offer) for m in sink.got)
