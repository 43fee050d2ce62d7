"""What the browser pages rely on, over the wire: the WebSocket handshake a browser
checks, the pages' files, live statistics pushed on change (and only the
tenant's), and the desktop's new powers (dial, save_lead) held to its agent."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from serve_harness import ACME, ANN, CENTER, GLOBEX, ServerProcess
from test_serve_transports import Tcp, Ws, hello

from agner import protocol as p


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(CENTER, tmp_path_factory.mktemp("web")).start()
    yield srv
    assert srv.stop() == 0


def ws_hello(server: ServerProcess, token: str) -> Ws:
    ws = Ws(server.http)
    ws.send(p.Hello(token, ref=1))
    assert ws.recv()["type"] == "welcome"
    return ws


def reply(ws: Ws, msg: Any) -> dict[str, Any]:
    """Send with a ref and return the reply of that ref (skipping events)."""
    ws.send(msg)
    while True:
        got = ws.recv()
        if got.get("ref") == msg.ref:
            return got


def test_websocket_accept_key_is_rfc_6455s(server: ServerProcess) -> None:
    """Browsers check it: the example of RFC 6455 section 1.3."""
    host, port = server.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = s.recv(4096)
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


def test_pages_and_their_files_are_served(server: ServerProcess) -> None:
    for path, ctype in [
        ("/desktop", "text/html"),
        ("/wallboard", "text/html"),
        ("/web/app.js", "text/javascript"),
        ("/web/style.css", "text/css"),
    ]:
        with urllib.request.urlopen(f"http://{server.http}{path}", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith(ctype)
            body = resp.read()
        assert body
        if ctype == "text/html":
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            assert b"/web/app.js" in body
    for path in ["/web/nope.js", "/web/server.py", "/web/..%2Fserver.py", "/desktop.html"]:
        status, _ = server.get(path)
        assert status == 404, path
    status, _ = server.get("/web/../server.py")  # a raw dot-dot, not normalised
    assert status == 404


def test_a_desktop_dials_and_saves_leads_only_as_itself(server: ServerProcess) -> None:
    ann = ws_hello(server, ANN)
    assert reply(ann, p.Dial("sales", "+33142685300", agent="acme-sales-1", ref=2)) == {
        "type": "error",
        "code": "forbidden",
        "message": "an agent can act only as itself",
        "ref": 2,
    }
    got = reply(ann, p.Complete("x", agent="acme-sales-1", notes="n", ref=3))
    assert got["code"] == "forbidden"
    assert reply(ann, p.SaveLead(1, name="Eve", ref=4))["code"] == "forbidden"
    assert reply(ann, p.Intraday(ref=5))["code"] == "forbidden"
    assert reply(ann, p.Subscribe(live=True, ref=6))["code"] == "forbidden"
    bob = ws_hello(server, "bob-desktop-token")  # globex: acme's queue is unknown to it
    assert reply(bob, p.Dial("sales", "+33142685300", ref=2))["code"] == "unknown"

    # ann's own dial is held for ann, though another agent is ready first
    switch = hello(server, switch=True)
    switch.send(p.Login(agent="acme-sales-1"))
    switch.send(p.Ready(agent="acme-sales-1", ref=10))
    assert switch.recv() == p.Ok(10)
    assert reply(ann, p.Dial("sales", "+33142685300", ref=7))["call_id"] == "out-1"
    assert reply(ann, p.Login(ref=8))["type"] == "ok"
    ann.send(p.Ready(ref=9))  # ready, and at once offered the held call: reserved
    assert switch.recv() == p.Connect("out-1", "ann", "sales", "voice", "+33142685300")
    # the offer (with its screen pop), then what followed it, in order
    offer = ann.recv()
    assert (offer["type"], offer["call_id"], offer["dial"]) == ("offer", "out-1", "+33142685300")
    status = ann.recv()
    assert (status["type"], status["state"]) == ("agent_status", "reserved")
    assert (status["contact"]["call_id"], status["contact"]["dial"]) == ("out-1", "+33142685300")
    assert ann.recv() == {"type": "ok", "ref": 9, "call_id": None}
    switch.send(p.HungUp("out-1", ref=11))
    assert switch.recv() == p.Revoked("out-1", "ann", "abandoned")
    assert switch.recv() == p.Ok(11)
    switch.send(p.Logout(agent="ann"))  # the next tests' contacts wait
    switch.send(p.Logout(agent="acme-sales-1", ref=12))
    assert switch.recv() == p.Ok(12)
    for c in (ann, bob):
        c.sock.close()
    switch.close()


def stats(ws: Ws, timeout: float) -> dict[str, Any] | None:
    """The next stats message within `timeout` seconds, or None."""
    ws.sock.settimeout(timeout)
    try:
        got = ws.recv()
    except TimeoutError:
        return None
    finally:
        ws.sock.settimeout(10)
    assert got["type"] == "stats", got
    return got


def test_live_stats_are_pushed_on_change_and_only_the_tenants(server: ServerProcess) -> None:
    board = ws_hello(server, ACME)
    assert reply(board, p.Subscribe(live=True, agents=True, interval_ms=100, ref=2)) == {
        "type": "ok",
        "ref": 2,
        "call_id": None,
    }
    first = stats(board, 5)
    assert first is not None
    assert [q["name"] for q in first["queues"]] == ["sales", "support"]
    assert first["queues"][0]["threshold_s"] == 20 and first["queues"][0]["target"] == 0.8
    assert sum(first["agents"].values()) == 81  # acme's 80 + ann; not globex's 21
    assert stats(board, 0.6) is None  # nothing changed: nothing sent, though 100 ms
    globex: Tcp = hello(server, GLOBEX, switch=True)
    for i in range(5):
        globex.send(p.Arrived(f"g{i}", "billing", ref=i + 1))
    globex.send(p.Login(agent="bob"))
    globex.send(p.HungUp("g0", ref=9))
    assert [globex.recv() for _ in range(6)] == [p.Ok(i) for i in (1, 2, 3, 4, 5, 9)]
    assert stats(board, 0.6) is None  # another tenant's traffic: nothing

    acme = hello(server, switch=True)
    t0 = time.monotonic()
    acme.send(p.Arrived("a1", "support", ref=1))
    pushed = stats(board, 2)
    assert pushed is not None and time.monotonic() - t0 < 1.0
    assert pushed["queues"][1]["waiting"] == 1
    text = msgspec.json.encode(pushed)
    assert b"billing" not in text and b"g1" not in text
    for c in (acme, globex):
        c.close()
    board.sock.close()


def test_intraday_reports_only_the_tenants_queues(server: ServerProcess) -> None:
    globex: Tcp = hello(server, GLOBEX, switch=True)
    globex.send(p.Arrived("gi", "billing", ref=1))
    globex.send(p.HungUp("gi", ref=2))
    assert [globex.recv(), globex.recv()] == [p.Ok(1), p.Ok(2)]
    acme = hello(server, switch=True)
    acme.send(p.Arrived("ai", "support", ref=1))
    acme.send(p.HungUp("ai", ref=2))
    assert [acme.recv(), acme.recv()] == [p.Ok(1), p.Ok(2)]
    board = ws_hello(server, ACME)
    deadline = time.monotonic() + 5
    while True:  # records reach the store in batches every 200 ms
        got = reply(board, p.Intraday(interval_s=900, ref=3))
        support = {q["name"]: q for q in got["queues"]}["support"]
        if support["intervals"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got["type"] == "intraday_report" and got["interval_s"] == 900
    assert [q["name"] for q in got["queues"]] == ["sales", "support"]
    assert (support["threshold_s"], support["target"]) == (60, 0.8)
    assert sum(iv["abandoned"] for iv in support["intervals"]) >= 1
    assert all(iv["start_us"] >= got["since_us"] for iv in support["intervals"])
    assert reply(board, p.Intraday(interval_s=7, ref=4))["code"] == "bad_message"
    acme.close()
    globex.close()
    board.sock.close()


def counts_of_agents(server: ServerProcess) -> dict[str, int]:
    """acme's agents by state, from /v1/agents (a snapshot of every agent)."""
    status, body = server.get("/v1/agents", ACME)
    assert status == 200
    counts: dict[str, int] = {}
    for a in body["agents"]:
        counts[a["state"]] = counts.get(a["state"], 0) + 1
    return counts


def pushed_counts(board: Ws) -> dict[str, int]:
    """The agents of the latest stats push (after the pushes settle)."""
    last = stats(board, 5)
    assert last is not None
    while (more := stats(board, 0.4)) is not None:
        last = more
    return {k: v for k, v in last["agents"].items() if v}


def test_wallboard_agent_counts_stay_right_through_traffic_and_a_restart(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "center.toml"  # a snapshot every 10 entries: the restart restores one
    cfg.write_text(CENTER.read_text().replace("[server]\n", "[server]\nsnapshot_every = 10\n", 1))
    srv = ServerProcess(cfg, tmp_path).start()
    try:
        board = ws_hello(srv, ACME)
        reply(board, p.Subscribe(live=True, agents=True, interval_ms=100, ref=2))
        switch = hello(srv, switch=True)
        for i in range(1, 7):
            switch.send(p.Login(agent=f"acme-sales-{i}"))
            switch.send(p.Ready(agent=f"acme-sales-{i}"))
        for i in range(1, 5):
            switch.send(p.Arrived(f"c{i}", "sales"))  # four of the six ring
        switch.send(p.NoAnswer("c1"))  # RONA: not ready; c1 rings a fifth
        switch.send(p.Answered("c2"))
        switch.send(p.Answered("c3", ref=1))
        agent_of, rung = {}, set()
        while (m := switch.recv()) != p.Ok(1):
            assert isinstance(m, p.Connect | p.Revoked), m
            if isinstance(m, p.Connect):
                agent_of[m.call_id] = m.agent
                rung.add(m.agent)
        switch.send(p.Complete("c3", agent=agent_of["c3"], wrap_up_s=600))  # in wrap-up
        switch.send(p.HungUp("c4"))  # abandoned while it rang
        (idle,) = {f"acme-sales-{i}" for i in range(1, 7)} - rung
        switch.send(p.Logout(agent=idle, ref=2))
        while (m := switch.recv()) != p.Ok(2):
            assert isinstance(m, p.Connect | p.Revoked), m
        expected = counts_of_agents(srv)
        assert expected == {
            "logged_out": 76,
            "not_ready": 1,
            "ready": 1,
            "reserved": 1,
            "busy": 1,
            "wrap_up": 1,
        }
        assert pushed_counts(board) == expected
        switch.close()
        board.sock.close()
        assert srv.stop() == 0
        assert list(tmp_path.glob("snapshot-*.bin"))
        srv = ServerProcess(cfg, tmp_path).start()  # the snapshot, then the journal after it
        board = ws_hello(srv, ACME)
        reply(board, p.Subscribe(live=True, agents=True, interval_ms=100, ref=2))
        assert counts_of_agents(srv) == expected
        assert pushed_counts(board) == expected
        board.sock.close()
    finally:
        assert srv.stop() == 0
