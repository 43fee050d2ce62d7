"""The live center without I/O: contact events, agent and CTI commands, tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agner.center import Center, Identity, Refused
from agner.config import load_server_config
from agner.crm import RoutingHints
from agner.protocol import (
    Accept,
    AgentReady,
    AgentStatus,
    Answered,
    Arrived,
    CallbackRequest,
    Complete,
    Connect,
    Dial,
    Diverted,
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

ROOT = Path(__file__).resolve().parent.parent
ACME, GLOBEX = Identity(0), Identity(1)


class Sink:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def send(self, msg: Any) -> None:
        self.got.append(msg)


class Driver:
    """A Center with a switch session per tenant and a clock in microseconds."""

    def __init__(self, config: Path = ROOT / "examples" / "center.toml") -> None:
        self.center = Center(load_server_config(config))
        self.now = 1_000_000
        self.switch = [Sink(), Sink()]
        for t in (0, 1):
            self.center.attach(Identity(t), self.switch[t], switch=True)
        self.journal: list[tuple[int, Identity, Any]] = []
        self.center.journal = lambda now, ident, msg: self.journal.append((now, ident, msg))

    def __call__(self, ident: Identity, msg: Any, dt_us: int = 1000) -> str | None:
        self.now += dt_us
        result = self.center.apply(ident, msg, self.now)
        for sink, out in self.center.outbox:
            sink.send(out)
        self.center.outbox.clear()
        return result

    def agent(self, name: str) -> int:
        return self.center.ids.agent_id[name]

    def ready(self, ident: Identity, *names: str) -> None:
        for n in names:
            self(ident, Login(agent=n))
            self(ident, Ready(agent=n))


@pytest.fixture
def d() -> Driver:
    return Driver()


def test_arrival_is_connected_to_a_ready_agent_and_completes(d: Driver) -> None:
    d.ready(ACME, "acme-sales-1")
    d(ACME, Arrived("c1", "sales", customer="+4930123"))
    (connect,) = d.switch[0].got
    assert connect == Connect("c1", "acme-sales-1", "sales", "voice", None)
    assert d.switch[1].got == []  # the other tenant's switch hears nothing
    d(ACME, Answered("c1"))
    d(ACME, HungUp("c1"))
    assert d.center.records == []  # waits for the agent's disposition
    d(ACME, Complete("c1", agent="acme-sales-1", disposition="sold", satisfaction=5))
    (rec,) = d.center.records
    assert (rec.call_id, rec.agent, rec.outcome) == ("c1", "acme-sales-1", "completed")
    assert (rec.disposition, rec.satisfaction, rec.customer) == ("sold", 5, "+4930123")
    assert rec.answered_us is not None and rec.arrived_us < rec.answered_us < rec.ended_us
    assert d.center.live == {}


def test_waiting_order_and_abandon(d: Driver) -> None:
    for i in range(4):
        d(ACME, Arrived(f"w{i}", "sales", priority=5 if i == 2 else None))
    (q,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "sales"]
    assert q.waiting_calls == ["w2", "w0", "w1", "w3"]
    d(ACME, HungUp("w0"))
    (rec,) = d.center.records
    assert (rec.call_id, rec.outcome, rec.agent) == ("w0", "abandoned", None)
    d.ready(ACME, "acme-sales-1")
    assert d.switch[0].got[-1].call_id == "w2"


def test_tenants_never_cross(d: Driver) -> None:
    d.ready(GLOBEX, "globex-billing-1")
    with pytest.raises(Refused, match="no queue"):
        d(GLOBEX, Arrived("x", "sales"))
    with pytest.raises(Refused, match="no agent"):
        d(GLOBEX, Login(agent="acme-sales-1"))
    d(ACME, Arrived("a1", "support"))
    with pytest.raises(Refused, match="no live contact"):
        d(GLOBEX, HungUp("a1"))
    assert d.switch[1].got == []
    # the same call id may live in two tenants
    d(GLOBEX, Arrived("a1", "billing"))
    assert d.switch[1].got[-1] == Connect("a1", "globex-billing-1", "billing", "voice", None)
    assert [q.name for q in d.center.queue_snapshots(1, d.now)] == ["billing"]
    assert {a.name for a in d.center.agent_snapshots(1, d.now)} == {
        f"globex-billing-{i}" for i in range(1, 21)
    } | {"bob"}


def test_an_agent_acts_only_as_itself(d: Driver) -> None:
    ann = Identity(0, d.agent("ann"))
    desk = Sink()
    d.center.attach(ann, desk, switch=False)
    d(ann, Login())
    d(ann, Ready())
    with pytest.raises(Refused, match="only as itself"):
        d(ann, NotReady(agent="acme-sales-1"))
    with pytest.raises(Refused, match="only send agent commands"):
        d(ann, Arrived("z", "sales"))
    d(ACME, Arrived("c", "sales", customer="a@b.c", data={"ivr": "1"}))
    (offer,) = [m for m in desk.got if isinstance(m, Offer)]
    assert isinstance(offer, Offer)
    assert (offer.call_id, offer.agent, offer.customer, offer.data) == (
        "c",
        "ann",
        "a@b.c",
        {"ivr": "1"},
    )
    d(ann, Accept("c"))
    d(ann, Complete("c", disposition="ok", wrap_up_s=2))
    assert d.center.router.agent_state(d.agent("ann")).name == "WRAP_UP"
    d.now += 3_000_000
    d.center.advance(d.now)
    for sink, out in d.center.outbox:
        sink.send(out)
    assert desk.got[-2] == AgentReady("ann", "ready")
    assert isinstance(desk.got[-1], AgentStatus) and desk.got[-1].state == "ready"


def test_no_answer_revokes_and_reoffers(d: Driver) -> None:
    d.ready(ACME, "acme-sales-1", "acme-sales-2")
    d(ACME, Arrived("c", "sales"))
    first = d.switch[0].got[-1].agent
    d(ACME, NoAnswer("c"))
    revoked, connect = d.switch[0].got[-2:]
    assert revoked == Revoked("c", first, "rona")
    assert connect.call_id == "c" and connect.agent != first


def test_logout_of_a_ringing_agent_returns_the_contact(d: Driver) -> None:
    d.ready(ACME, "acme-sales-1")
    d(ACME, Arrived("c", "sales"))
    d(ACME, Logout(agent="acme-sales-1"))
    assert d.switch[0].got[-1] == Revoked("c", "acme-sales-1", "logout")
    (q,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "sales"]
    assert q.waiting_calls == ["c"]


def test_transfer_to_a_queue_keeps_the_call_id(d: Driver) -> None:
    d.ready(ACME, "acme-sales-1")
    d(ACME, Arrived("c", "sales", customer="+1"))
    d(ACME, Answered("c"))
    d(ACME, Transfer("c", "support"))
    (rec,) = d.center.records
    assert (rec.outcome, rec.agent) == ("transferred", "acme-sales-1")
    # the first agent is still busy when the contact arrives anew; it is the only
    # one who can take it, so it gets it back ...
    (q,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "support"]
    assert q.waiting_calls == [] and d.switch[0].got[-1].agent == "acme-sales-1"
    d(ACME, HungUp("c"))
    d(ACME, Arrived("c2", "sales"))
    d(ACME, Answered("c2"))
    d.ready(ACME, "acme-support-1")
    d(ACME, Transfer("c2", "support"))  # ... or goes to someone free
    assert d.switch[0].got[-1] == Connect("c2", "acme-support-1", "support", "voice", None)
    with pytest.raises(Refused, match="no queue"):
        d(ACME, Transfer("c2", "billing"))  # another tenant's queue


def test_dial_and_callback_tell_the_switch_to_dial(d: Driver) -> None:
    assert d(ACME, Dial("sales", "+49301")) == "out-1"
    d(ACME, Arrived("in", "sales"))
    d(ACME, CallbackRequest("in", "+49302"))
    d(ACME, HungUp("in"))  # the caller leaves the line, the place is kept
    (q,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "sales"]
    assert q.waiting_calls == ["out-1", "in"]
    d.ready(ACME, "acme-sales-1", "acme-sales-2")
    assert d.switch[0].got == [
        Connect("out-1", "acme-sales-1", "sales", "voice", "+49301"),
        Connect("in", "acme-sales-2", "sales", "callback", "+49302"),
    ]


def test_refused_inputs_are_not_journaled_and_change_nothing(d: Driver) -> None:
    d(ACME, Arrived("c", "sales"))
    n = len(d.journal)
    for ident, msg in [
        (ACME, Arrived("c", "sales")),  # already live
        (ACME, Arrived("d", "sales", require={"spanish": 1})),  # no such skill
        (ACME, Arrived("d", "nope")),
        (ACME, Answered("nope")),
        (ACME, NoAnswer("c")),  # not ringing
        (ACME, Complete("c", agent="acme-sales-1", satisfaction=9)),
        (ACME, NotReady(agent="acme-sales-1", reason=-1)),
    ]:
        with pytest.raises(Refused):
            d(ident, msg)
    assert len(d.journal) == n
    # a core refusal (an agent not logged in) is journaled and changes nothing
    with pytest.raises(Refused, match="InvalidTransition"):
        d(ACME, Ready(agent="acme-sales-1"))
    assert len(d.journal) == n + 1
    assert d.center.router.agent_state(d.agent("acme-sales-1")).name == "LOGGED_OUT"


def limited(tmp_path: Path) -> Driver:
    """The example center with limits: support holds one waiting contact and sends
    the next to sales; billing rejects when no agent is logged in; sales ages and
    rings two agents at once."""
    text = (ROOT / "examples" / "center.toml").read_text()
    support = "require = { support = 1 }"
    text = text.replace(support, f'{support}\nmax_waiting = 1\noverflow = "sales"')
    billing = "require = { billing = 1 }"
    text = text.replace(billing, f'{billing}\nwhen_unstaffed = "reject"')
    text = text.replace("priority = 1\n", "priority = 1\npriority_weight_s = 10\nparallel = 2\n", 1)
    path = tmp_path / "limited.toml"
    path.write_text(text)
    return Driver(path)


def test_limits_overflow_and_reject_reach_the_switch_and_the_records(tmp_path: Path) -> None:
    d = limited(tmp_path)
    d(GLOBEX, Arrived("b1", "billing", customer="+33142685300"))
    assert d.switch[1].got == [Diverted("b1", "billing", "rejected")]
    (rec,) = d.center.records
    assert (rec.call_id, rec.outcome) == ("b1", "rejected") and d.center.live == {}
    d(ACME, Arrived("s1", "support"))
    d(ACME, Arrived("s2", "support"))  # support is full: on to sales
    assert d.switch[0].got == [Diverted("s2", "sales", "queue")]
    waiting = {q.name: q.waiting_calls for q in d.center.queue_snapshots(0, d.now)}
    assert waiting == {"sales": ["s2"], "support": ["s1"]}
    (support,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "support"]
    assert support.overflowed == 1
    # aging in sales: 10 s of waiting is worth one priority level
    d(ACME, Arrived("p3", "sales", priority=3), dt_us=1_000_000)
    d(ACME, Arrived("late", "sales"), dt_us=25_000_000)
    waiting = {q.name: q.waiting_calls for q in d.center.queue_snapshots(0, d.now)}
    assert waiting["sales"] == ["p3", "s2", "late"]  # s2: 1 + 2.6 levels of wait < 3 + 2.5


def test_callback_request_goes_through_the_core(tmp_path: Path) -> None:
    d = limited(tmp_path)
    d(ACME, Arrived("cb", "sales", customer="+33142685300"))
    d(ACME, CallbackRequest("cb", "+33142685300"))
    with pytest.raises(Refused, match="InvalidTransition"):
        d(ACME, CallbackRequest("cb", "+33142685300"))  # already a callback
    (sales,) = [q for q in d.center.queue_snapshots(0, d.now) if q.name == "sales"]
    assert sales.callbacks == 1 and sales.waiting_calls == ["cb"]
    d.ready(ACME, "acme-sales-1")
    assert d.switch[0].got[-1] == Connect("cb", "acme-sales-1", "sales", "callback", "+33142685300")


def test_preferred_agents_and_transfer_to_an_agent(d: Driver) -> None:
    d.ready(ACME, "acme-sales-1", "acme-sales-2", "ann")
    d(ACME, Arrived("p", "sales", preferred=["ann", "acme-sales-2"]))
    assert d.switch[0].got[-1].agent == "ann"  # first ready one, in list order
    with pytest.raises(Refused, match="no agent"):
        d(ACME, Arrived("q", "sales", preferred=["bob"]))  # another tenant's
    with pytest.raises(Refused, match="at most 4"):
        d(ACME, Arrived("q", "sales", preferred=["ann"] * 2))
    d(ACME, Answered("p"))
    d.ready(ACME, "acme-support-1")
    # only acme-sales-2 may take it for preferred_s, though acme-support-1 is ready
    d(ACME, Transfer("p", "support", agent="acme-sales-2"))
    assert d.switch[0].got[-1] == Connect("p", "acme-sales-2", "support", "voice", None)


def test_crm_hints_prefer_the_agents_who_served_the_customer() -> None:
    d = Driver()
    hints = RoutingHints(known=True, priority=2, preferred_agents=("bob", "acme-sales-2", "nobody"))
    msg = d.center.with_hints(ACME, Arrived("h", "sales", customer="+1"), hints)
    assert (msg.priority, msg.preferred) == (3, ["acme-sales-2"])  # acme's agents only
    assert d.center.with_hints(ACME, msg, None) == msg


def test_parallel_offers_ring_several_and_release_the_others(tmp_path: Path) -> None:
    d = limited(tmp_path)  # sales rings 2 agents at once
    assert d.center.cfg.queues[0].parallel == 2
    d.ready(ACME, "acme-sales-1", "acme-sales-2")
    d(ACME, Arrived("p", "sales"))
    rung = {m.agent for m in d.switch[0].got if isinstance(m, Connect)}
    assert rung == {"acme-sales-1", "acme-sales-2"}
    status = d.center.contact_status(ACME, "p", d.now)
    assert (status.state, sorted(status.agents)) == ("ringing", sorted(rung))
    with pytest.raises(Refused, match="name the agent"):
        d(ACME, Answered("p"))
    d(ACME, Answered("p", agent="acme-sales-2"))
    assert d.switch[0].got[-1] == Revoked("p", "acme-sales-1", "taken")
    status = d.center.contact_status(ACME, "p", d.now)
    assert (status.state, status.agents) == ("answered", ["acme-sales-2"])


def test_position_and_estimated_wait_of_a_waiting_contact(d: Driver) -> None:
    for i in range(3):
        d(ACME, Arrived(f"w{i}", "support"))
    status = d.center.contact_status(ACME, "w2", d.now)
    assert (status.state, status.position, status.agents) == ("waiting", 3, [])
    assert status.estimated_wait_s is None  # nobody who can take it is working
    d(ACME, Login(agent="acme-support-1"))
    d(ACME, NotReady(agent="acme-support-1"))
    d(ACME, Login(agent="acme-support-2"))
    d(ACME, Logout(agent="acme-support-2"))
    status = d.center.contact_status(ACME, "w2", d.now)
    assert status.position == 3
    with pytest.raises(Refused, match="no live contact"):
        d.center.contact_status(GLOBEX, "w2", d.now)
