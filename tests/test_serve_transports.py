"""The server over its transports: TCP (MessagePack), WebSocket (JSON), HTTP; bad,
hostile and oversized input gets an error reply and everything survives."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_harness import ACME, ANN, CENTER, GLOBEX, ServerProcess

from agner import protocol as p

_dec = msgspec.msgpack.Decoder(p.ServerMessage)


class Tcp:
    """A blocking client of the TCP transport."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frame(self, payload: bytes) -> None:
        self.raw(len(payload).to_bytes(4, "big") + payload)

    def send(self, msg: Any) -> None:
        self.frame(msgspec.msgpack.encode(msg))

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    def recv(self) -> Any:
        n = int.from_bytes(self._exact(4), "big")
        return _dec.decode(self._exact(n))

    def request(self, msg: Any) -> Any:
        self.send(msg)
        return self.recv()

    def alive(self) -> bool:
        """A ping is answered (after the replies to everything sent before it)."""
        self.send(p.Ping(ref=77))
        while True:
            m = self.recv()
            if isinstance(m, p.Pong):
                return m.ref == 77
            assert isinstance(m, p.Error | p.Ok | p.Connect | p.Revoked)

    def close(self) -> None:
        self.sock.close()


class Ws:
    """A blocking WebSocket client (RFC 6455), masking its frames as a client must."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /v1/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")

    def frame(self, opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> None:
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        m = 0x80 if masked else 0
        if n < 126:
            head += bytes([m | n])
        elif n < 65536:
            head += bytes([m | 126]) + struct.pack(">H", n)
        else:
            head += bytes([m | 127]) + struct.pack(">Q", n)
        if masked:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send(self, msg: Any) -> None:
        self.frame(0x1, msgspec.json.encode(msg))

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self.sock.recv(1)[0], self.sock.recv(1)[0]
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.sock.recv(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.sock.recv(8))[0]
        data = b""
        while len(data) < n:
            data += self.sock.recv(n - len(data))
        return b0 & 0x0F, data

    def recv(self) -> dict[str, Any]:
        opcode, data = self.recv_frame()
        assert opcode == 0x1
        out: dict[str, Any] = json.loads(data)
        return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(CENTER, tmp_path_factory.mktemp("serve")).start()
    yield srv
    assert srv.alive()
    assert srv.stop() == 0


def hello(server: ServerProcess, token: str = ACME, **kw: Any) -> Tcp:
    c = Tcp(server.tcp)
    assert isinstance(c.request(p.Hello(token, **kw)), p.Welcome)
    return c


def test_http_endpoints(server: ServerProcess) -> None:
    status, body = server.get("/healthz")
    assert status == 200 and body["status"] == "ok"
    assert server.get("/v1/queues")[0] == 401
    assert server.get("/v1/queues", "wrong-token-123")[0] == 401
    assert server.get("/v1/queues", ANN)[0] == 403  # a desktop token is not a service
    status, body = server.get("/v1/queues", ACME)
    assert status == 200 and [q["name"] for q in body["queues"]] == ["sales", "support"]
    status, body = server.get("/v1/agents", GLOBEX)
    names = {a["name"] for a in body["agents"]}
    assert "bob" in names and "ann" not in names and len(names) == 21
    assert server.get("/nope")[0] == 404
    status, text = server.get("/metrics")
    assert status == 200 and "agner_inputs_total" in text and "agner_queue_waiting" not in text
    status, text = server.get("/metrics", GLOBEX)
    assert 'agner_queue_waiting{tenant="globex",queue="billing"}' in text
    assert 'queue="sales"' not in text


def test_tcp_session_rules(server: ServerProcess) -> None:
    c = Tcp(server.tcp)
    assert c.request(p.Login(agent="acme-sales-9", ref=1)) == p.Error(
        "unauthorized", "send hello with a token first", 1
    )
    assert c.request(p.Hello("not-a-token", ref=2)).code == "unauthorized"
    assert c.request(p.Hello(ACME, version=99, ref=3)).code == "version"
    welcome = c.request(p.Hello(ACME, ref=4))
    assert (welcome.tenant, welcome.agent, welcome.ref) == ("acme", None, 4)
    assert c.request(p.Hello(ACME, ref=5)).code == "bad_message"
    assert c.request(p.Login(agent="globex-billing-3", ref=6)).code == "unknown"
    assert c.request(p.Login(agent="acme-sales-9", ref=7)) == p.Ok(7)
    assert c.request(p.Login(agent="acme-sales-9", ref=8)).code == "invalid_state"
    assert c.request(p.Logout(agent="acme-sales-9", ref=9)) == p.Ok(9)
    c.close()


def test_hostile_frames_get_errors_and_the_connection_survives(server: ServerProcess) -> None:
    c = hello(server)
    c.frame(b"\xc1")  # never valid MessagePack
    assert c.recv().code == "bad_message"
    c.frame(msgspec.msgpack.encode({"type": "arrived", "call_id": 5}))
    assert c.recv().code == "bad_message"
    c.frame(msgspec.msgpack.encode({"type": "ready", "agent": "x", "extra": 1}))
    assert c.recv().code == "bad_message"
    c.frame(b"x" * 70_000)  # over max_message_bytes: skipped whole
    assert c.recv().code == "too_large"
    big = (200_000).to_bytes(4, "big")
    c.raw(big + b"y" * 1000)  # the rest of it comes later, in pieces
    assert c.recv().code == "too_large"
    for _ in range(199):
        c.raw(b"z" * 1000)
    assert c.alive()
    c.close()
    assert hello(server).alive()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.binary(max_size=64)
        | st.builds(
            lambda tag, fields: msgspec.msgpack.encode({"type": tag, **fields}),
            st.sampled_from(["arrived", "answered", "hung_up", "ready", "login", "complete", "?"]),
            st.dictionaries(
                st.sampled_from(["call_id", "agent", "queue", "reason", "ref", "satisfaction"]),
                st.none() | st.integers(-5, 5) | st.text(max_size=6),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_fuzzed_frames_never_break_the_server(server: ServerProcess, frames: list[bytes]) -> None:
    c = hello(server)
    for f in frames:
        c.frame(f)
    assert c.alive()  # every frame was answered or applied, in order, before the pong
    c.close()


def test_websocket_desktop_gets_its_offer_and_acts_only_as_itself(server: ServerProcess) -> None:
    ws = Ws(server.http)
    ws.send(p.Hello(ANN, ref=1))
    welcome = ws.recv()
    assert (welcome["type"], welcome["tenant"], welcome["agent"]) == ("welcome", "acme", "ann")
    # then where the agent stands, and again at every change, before the reply
    status = ws.recv()
    assert (status["type"], status["state"], status["contact"]) == (
        "agent_status",
        "logged_out",
        None,
    )
    ws.send(p.Login(ref=2))
    status = ws.recv()
    assert (status["type"], status["state"], status["reason"]) == ("agent_status", "not_ready", 0)
    assert status["since_us"] >= welcome["server_time_us"]
    assert ws.recv() == {"type": "ok", "ref": 2, "call_id": None}
    ws.send(p.Ready(agent="acme-sales-1", ref=3))
    assert ws.recv()["code"] == "forbidden"
    ws.send(p.Arrived("ws-x", "sales", ref=4))
    assert ws.recv()["code"] == "forbidden"
    ws.frame(0x1, b"{not json")
    assert ws.recv()["code"] == "bad_message"
    ws.frame(0x9, b"hi")  # ping -> pong
    assert ws.recv_frame() == (0xA, b"hi")
    ws.frame(0x1, b'{"type":"rea', fin=False)  # a fragmented message
    ws.frame(0x0, b'dy","ref":5}')
    assert ws.recv()["state"] == "ready"
    assert ws.recv() == {"type": "ok", "ref": 5, "call_id": None}
    switch = hello(server, switch=True)
    switch.send(p.Arrived("ws-1", "sales", customer="+33142685300", data={"lang": "de"}, ref=6))
    connect, ok = switch.recv(), switch.recv()
    assert connect == p.Connect("ws-1", "ann", "sales", "voice", None) and ok == p.Ok(6)
    offer = ws.recv()
    assert (offer["type"], offer["call_id"], offer["customer"], offer["data"]) == (
        "offer",
        "ws-1",
        "+33142685300",
        {"lang": "de"},
    )
    status = ws.recv()  # behind the offer, which waited for the screen pop
    assert (status["state"], status["contact"]["call_id"], status["contact"]["phase"]) == (
        "reserved",
        "ws-1",
        "ringing",
    )
    ws.send(p.Accept("ws-1", ref=7))
    connected = ws.recv()
    assert (connected["type"], connected["call_id"]) == ("connected", "ws-1")
    status = ws.recv()
    assert (status["state"], status["contact"]["phase"]) == ("busy", "answered")
    assert status["contact"]["answered_us"] == connected["answered_us"]
    assert ws.recv()["type"] == "ok"
    ws.send(p.Complete("ws-1", disposition="info", satisfaction=4, ref=8))
    # a wrap-up of 0 s ends at once: the desktop hears it, then the reply
    assert ws.recv() == {"type": "agent_ready", "agent": "ann", "state": "ready", "ref": 0}
    status = ws.recv()
    assert (status["type"], status["state"], status["contact"]) == ("agent_status", "ready", None)
    assert ws.recv()["type"] == "ok"
    ws.send(p.Logout(ref=9))
    assert ws.recv()["state"] == "logged_out"
    assert ws.recv()["type"] == "ok"
    ws.frame(0x1, b"{}", masked=False)  # a client must mask: closed with 1002
    assert ws.recv_frame() == (0x8, (1002).to_bytes(2, "big"))
    switch.close()
    from agner.crm import open_store

    with open_store(f"sqlite:///{server.data / 'crm.db'}") as store:
        deadline = time.monotonic() + 10
        while not (recs := store.interactions("acme")) and time.monotonic() < deadline:
            time.sleep(0.05)  # written by the server's worker thread
        rec = next(r for r in recs if r.ref is not None and r.ref.startswith("ws-1@"))
    assert (rec.agent, rec.disposition, rec.satisfaction, rec.outcome) == (
        "ann",
        "info",
        4,
        "answered",
    )
    assert rec.caller == "+33142685300" and rec.lead_id is not None
    assert offer["new_lead"] is True
    assert offer["screen_pop"]["kind"] == "new_lead"


def test_rate_limit_replies_and_keeps_the_connection(tmp_path: Path) -> None:
    text = (
        CENTER.read_text()
        .replace("rate_per_s = 50000", "rate_per_s = 1")
        .replace("burst = 100000", "burst = 5")
    )
    cfg = tmp_path / "slow.toml"
    cfg.write_text(text)
    srv = ServerProcess(cfg, tmp_path).start()
    try:
        c = hello(srv)
        for i in range(10):
            c.send(p.Ping(ref=i + 1))
        replies = [c.recv() for _ in range(10)]
        assert sum(isinstance(r, p.Pong) for r in replies) == 4  # burst 5, hello took one
        assert {r.code for r in replies if isinstance(r, p.Error)} == {"rate_limited"}
        c.close()
    finally:
        assert srv.stop() == 0
