"""The server and the CRM store: routing hints on arrival, screen pops, records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from serve_harness import ACME, CENTER, ServerProcess
from test_serve_transports import Tcp, hello

from agner import protocol as p
from agner.crm import open_store

GOLD = "+33142685300"
FRENCH = "+33142685301"


def test_known_callers_get_their_tier_priority_and_language(tmp_path: Path) -> None:
    cfg = tmp_path / "center.toml"
    cfg.write_text(
        CENTER.read_text().replace(
            "skills = { support = 4 }", "skills = { support = 4, lang_fr = 1 }"
        )
    )
    with open_store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.create_customer("acme", name="Ada", phones=[GOLD], tier="gold")
        store.create_customer("acme", name="Jean", phones=[FRENCH], language="fr")
    srv = ServerProcess(cfg, tmp_path).start()
    try:
        c: Tcp = hello(srv, switch=True)
        c.send(p.Arrived("plain", "sales", ref=1))
        c.send(p.Arrived("vip", "sales", customer=GOLD, ref=2))
        c.send(p.Arrived("gone", "sales", customer=GOLD, ref=3))
        c.send(p.HungUp("gone", ref=4))  # waits behind the look-up, in order
        c.send(p.Arrived("fr", "support", customer=FRENCH, ref=5))
        c.send(p.Arrived("any", "support", customer="+33100000000", ref=6))
        assert [c.recv() for _ in range(6)] == [p.Ok(i) for i in range(1, 7)]
        _, body = srv.get("/v1/queues", ACME)
        waiting = {q["name"]: q["waiting_calls"] for q in body["queues"]}
        assert waiting["sales"] == ["vip", "plain"]  # gold: queue priority 1 + 2
        # the French speaker needs lang_fr, which only acme-support agents have
        c.send(p.Login(agent="acme-sales-1"))
        c.send(p.Ready(agent="acme-sales-1", ref=7))
        got = [c.recv(), c.recv()]
        assert got == [p.Connect("vip", "acme-sales-1", "sales", "voice", None), p.Ok(7)]
        c.send(p.Logout(agent="acme-sales-1"))  # ringing: back to the queue
        c.send(p.Login(agent="ann"))
        c.send(p.Ready(agent="ann", ref=8))
        got = [c.recv(), c.recv(), c.recv()]
        assert got[0].reason == "logout" and got[1].call_id == "vip"
        assert got[2] == p.Ok(8)
        for i, call in [(2, "plain"), (3, "any")]:  # "fr" waits longer, but not for them
            c.send(p.Login(agent=f"acme-sales-{i}"))
            c.send(p.Ready(agent=f"acme-sales-{i}"))
            assert c.recv().call_id == call
        c.send(p.Login(agent="acme-support-1"))
        c.send(p.Ready(agent="acme-support-1", ref=9))
        assert c.recv() == p.Connect("fr", "acme-support-1", "support", "voice", None)
        c.close()
    finally:
        assert srv.stop() == 0


def test_an_arrival_is_routed_without_hints_when_the_store_fails(tmp_path: Path) -> None:
    # The embedded store is asked in the server's loop: a look-up that raises
    # routes the caller as an unknown one, and the server goes on.
    with open_store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.create_customer("acme", name="Ada", phones=[GOLD], tier="gold")
    srv = ServerProcess(CENTER, tmp_path).start()
    try:
        c: Tcp = hello(srv, switch=True)
        c.send(p.Arrived("before", "sales", customer=GOLD, ref=1))
        assert c.recv() == p.Ok(1)
        db = sqlite3.connect(tmp_path / "crm.db")
        db.execute("ALTER TABLE customers RENAME TO customers_gone")
        db.commit()
        db.close()
        c.send(p.Arrived("plain", "sales", ref=2))
        c.send(p.Arrived("vip", "sales", customer=GOLD, ref=3))  # the look-up fails
        assert [c.recv(), c.recv()] == [p.Ok(2), p.Ok(3)]
        _, body = srv.get("/v1/queues", ACME)
        waiting = {q["name"]: q["waiting_calls"] for q in body["queues"]}
        # "before" got its gold priority; "vip", looked up in vain, none: it waits
        # behind "plain", which came first
        assert waiting["sales"] == ["before", "plain", "vip"]
        c.close()
    finally:
        assert srv.stop() == 0


def test_records_of_callers_the_store_refuses_are_written_without_the_caller(
    tmp_path: Path,
) -> None:
    # A SIP From user is often no phone number: those records go in without
    # the caller, the others of the same batch with theirs.
    srv = ServerProcess(CENTER, tmp_path).start()
    try:
        c: Tcp = hello(srv, switch=True)
        callers = {"sip-1": "caller1", "good": "+33 1 42 68 53 00", "sip-2": "anonymous"}
        for n, (call_id, caller) in enumerate(callers.items()):
            c.send(p.Arrived(call_id, "sales", customer=caller))
            c.send(p.HungUp(call_id, ref=n + 1))
        assert [c.recv() for _ in callers] == [p.Ok(n + 1) for n in range(len(callers))]
        c.close()
    finally:
        assert srv.stop() == 0
    with open_store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        got = {i.ref: (i.outcome, i.caller) for i in store.interactions("acme", limit=10)}
    assert {ref.rsplit("@", 1)[0]: v for ref, v in got.items()} == {
        "sip-1": ("abandoned", None),
        "good": ("abandoned", "+33142685300"),
        "sip-2": ("abandoned", None),
    }
