"""The Kamailio adapter end to end: sipp callers -> Kamailio (adapters/kamailio.cfg)
-> evapi -> the adapter -> `agner serve` -> back, to sipp agents; checked call by
call on the caller's side, the agent's side and in agner's records."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ACME, ServerProcess
from sip_harness import HOST, Kamailio, Sipp, needs_sip, write_center

from agner.adapters.kamailio import KamailioAdapter
from agner.adapters.link import Backoff
from agner.center import fingerprint
from agner.config import load_server_config
from agner.journal import read_entries
from agner.protocol import Answered, Arrived, Complete, Dial, HungUp, Login, NoAnswer, Ready

pytestmark = needs_sip


class Rig:
    def __init__(
        self,
        tmp: Path,
        *,
        agents: int = 3,
        ring_ms: int = 15000,
        ring_timeout_s: int = 60,
        queue_extra: str = "",
    ) -> None:
        self.tmp = tmp
        center = write_center(tmp / "center.toml", agents, ring_timeout_s, queue_extra=queue_extra)
        self.server = ServerProcess(center, tmp)
        self.kam = Kamailio(tmp, ring_ms=ring_ms)
        self.sipps: list[Sipp] = []
        self.ring_ms = ring_ms

    def __enter__(self) -> Rig:
        self.server.start()
        self.kam.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.sipps:
            s.stop()
        self.kam.stop()
        self.server.stop()

    def sipp(self, name: str, scenario: str, *args: str) -> Sipp:
        s = Sipp(self.tmp, name, scenario, *args)
        self.sipps.append(s)
        return s

    def caller(self, name: str, scenario: str = "caller.xml", *args: str) -> Sipp:
        return self.sipp(name, scenario, "-s", "sales", f"{HOST}:{self.kam.sip_port}", *args)

    def agent(self, name: str, scenario: str, *args: str) -> Sipp:
        return self.sipp(name, scenario, f"{HOST}:{self.kam.sip_port}", *args).start()

    def adapter(self, agents: dict[str, Sipp], **kw: Any) -> KamailioAdapter:
        return KamailioAdapter(
            evapi=self.kam.evapi,
            server=self.server.tcp,
            token=ACME,
            agents={a: f"sip:{a}@{HOST}:{s.port}" for a, s in agents.items()},
            login=list(agents),
            ring_ms=self.ring_ms,
            **kw,
        )

    def records(self, timeout: float = 5.0, want: int = 1) -> dict[str, tuple[Any, ...]]:
        return records(self.tmp, timeout, want)


def records(tmp: Path, timeout: float = 5.0, want: int = 1) -> dict[str, tuple[Any, ...]]:
    """call id -> (outcome, agent) of agner's interaction records (its data in ``tmp``)."""
    deadline = time.monotonic() + timeout
    rows: dict[str, tuple[Any, ...]] = {}
    while time.monotonic() < deadline:
        db = tmp / "crm.db"
        if db.exists():
            with sqlite3.connect(db) as con:
                cols = [r[1] for r in con.execute("PRAGMA table_info(interactions)")]
                if cols:
                    q = "SELECT * FROM interactions"
                    rows = {}
                    for r in con.execute(q):
                        d = dict(zip(cols, r, strict=True))
                        rows[str(d.get("ref", "")).rsplit("@", 1)[0]] = tuple(
                            d.get(k) for k in ("outcome", "agent")
                        )
        if len(rows) >= want:
            return rows
        time.sleep(0.1)
    return rows


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def wait_proc(s: Sipp, timeout: float = 20.0) -> int:
    assert s.proc is not None
    deadline = time.monotonic() + timeout
    while s.proc.poll() is None:
        if time.monotonic() > deadline:
            s.stop()
            raise AssertionError(f"{s.messages.name} did not finish")
        await asyncio.sleep(0.05)
    return s.proc.returncode


def test_answered_call_end_to_end(tmp_path: Path) -> None:
    with Rig(tmp_path) as rig:
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": ann})
            await adapter.start()
            await adapter.wait_up()
            caller = rig.caller("caller", "caller.xml", "-m", "3", "-r", "5", "-d", "200").start()
            assert await wait_proc(caller) == 0
            await until(lambda: not adapter.calls)
            await adapter.close()

        asyncio.run(main())
        calls = rig.sipps[1].seen()
        assert len(calls) == 3
        for cid, seen in calls.items():
            assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen, (cid, seen)
        agent_calls = ann.seen()
        assert set(agent_calls) == set(calls)
        for seen in agent_calls.values():
            assert seen[:3] == ["INVITE", "180", "200"] and "BYE" in seen
        rec = rig.records(want=3)
        assert {cid: r for cid, r in rec.items()} == {cid: ("answered", "ag-1") for cid in calls}


def agent_states(rig: Rig) -> dict[str, str]:
    status, body = rig.server.get("/v1/agents", ACME)
    assert status == 200
    return {a["name"]: a["state"] for a in body["agents"]}


def test_busy_and_ring_no_answer_reroute_the_caller(tmp_path: Path) -> None:
    """ag-1 is busy (486), ag-2 never answers (408 after ring_ms): agner marks
    both not ready and the caller reaches ag-3, with no second ring at either."""
    with Rig(tmp_path, ring_ms=800) as rig:
        busy = rig.agent("busy", "agent_busy.xml")
        deaf = rig.agent("deaf", "agent_noanswer.xml")
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": busy, "ag-2": deaf, "ag-3": ann})
            await adapter.start()
            await adapter.wait_up()
            await until(lambda: agent_states(rig).get("ag-3") == "ready")
            caller = rig.caller("caller", "caller.xml", "-m", "1", "-d", "100").start()
            t0 = time.monotonic()
            assert await wait_proc(caller) == 0
            assert time.monotonic() - t0 >= 0.8  # it rang ag-2 for ring_ms
            await until(lambda: not adapter.calls)
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[3].seen().items()
        assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen
        assert [
            s for s in seen if s in ("486", "408", "487")
        ] == []  # failures stay behind the proxy
        assert busy.seen()[cid][:2] == ["INVITE", "486"]
        assert deaf.seen()[cid][:3] == ["INVITE", "180", "CANCEL"]
        assert ann.seen()[cid][:3] == ["INVITE", "180", "200"]
        assert rig.records() == {cid: ("answered", "ag-3")}
        states = agent_states(rig)
        assert states["ag-1"] == "not_ready" and states["ag-2"] == "not_ready"
        assert states["ag-3"] == "ready"


def test_queued_caller_hears_182_then_180s_and_abandons(tmp_path: Path) -> None:
    """No agent ready: the caller is told it is queued (182), hears a 180 every
    ring_every_s, CANCELs (487): agner records it abandoned; a second caller
    waits until an agent becomes ready and is answered."""
    with Rig(tmp_path) as rig:
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": ann}, ring_every_s=0.3)
            adapter.login = []
            await adapter.start()
            await adapter.wait_up()
            adapter.link.send(Login("ag-1"))
            gone = rig.caller("gone", "caller_cancel.xml", "-m", "1").start()
            assert await wait_proc(gone) == 0
            await until(lambda: not adapter.calls)
            waits = rig.caller("waits", "caller.xml", "-m", "1", "-d", "100").start()
            await until(lambda: len(adapter.calls) == 1)
            await asyncio.sleep(0.5)
            adapter.link.send(Ready("ag-1"))
            assert await wait_proc(waits) == 0
            await until(lambda: not adapter.calls)
            await adapter.close()

        asyncio.run(main())
        (gone_id, gone_seen), *_ = rig.sipps[1].seen().items()
        assert gone_seen[:3] == ["INVITE", "100", "182"]
        assert gone_seen[3] == "180"  # the first periodic 180, then the caller gives up
        assert gone_seen[-3:] == ["487", "ACK", "200"]
        (waits_id, waits_seen), *_ = rig.sipps[2].seen().items()
        assert waits_seen.index("182") < waits_seen.index("200")
        assert waits_seen.count("180") >= 2  # at least one periodic 180, and the agent's
        assert gone_id not in ann.seen() and waits_id in ann.seen()
        assert rig.records(want=2) == {
            gone_id: ("abandoned", None),
            waits_id: ("answered", "ag-1"),
        }


def sip_invite(port: int, call_id: str = "raw-1@test") -> str:
    """Send one INVITE from a bare UDP socket; return the final response's status line."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        me = s.getsockname()[1]
        s.settimeout(3)
        s.sendto(
            (
                f"INVITE sip:sales@{HOST}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK-{call_id}\r\n"
                f"From: <sip:raw@{HOST}>;tag=1\r\nTo: <sip:sales@{HOST}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@{HOST}:{me}>\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            (HOST, port),
        )
        while True:
            line = s.recv(65535).decode().split("\r\n", 1)[0]
            if not line.startswith("SIP/2.0 1"):
                return line


def test_no_adapter_connected_answers_503_at_once(tmp_path: Path) -> None:
    with Rig(tmp_path) as rig:
        # The rig's readiness probe is itself a connection to evapi: until Kamailio
        # has seen it close, an INVITE is relayed to it and never answered. So a
        # fresh call is tried until Kamailio knows nobody is connected, and the
        # one answered must be answered at once.
        for attempt in range(5):
            t0 = time.monotonic()
            try:
                line = sip_invite(rig.kam.sip_port, call_id=f"raw-{attempt}@test")
            except TimeoutError:
                continue
            break
        else:
            raise AssertionError("no final response to five INVITEs")
        assert line.startswith("SIP/2.0 503")
        assert time.monotonic() - t0 < 1.0


def test_bye_while_evapi_is_down_completes_the_call_when_it_is_back(tmp_path: Path) -> None:
    """The caller hangs up while the adapter is cut off from evapi: Kamailio's
    bye event is lost, agner still has the agent talking; once evapi is back
    the adapter asks Kamailio about the call (status: ended) and agner
    completes it and writes its record."""
    with Rig(tmp_path) as rig:
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": ann}, backoff=Backoff(3.0, 3.0))
            await adapter.start()
            await adapter.wait_up()
            await until(lambda: agent_states(rig).get("ag-1") == "ready")
            caller = rig.caller("caller", "caller.xml", "-m", "1", "-d", "600").start()
            await until(lambda: any(c.state == "talking" for c in adapter.calls.values()))
            assert adapter.proto is not None and adapter.proto.transport is not None
            adapter.proto.transport.close()  # evapi drops; the adapter retries in 3 s
            assert await wait_proc(caller) == 0  # BYE and its 200 while evapi is down
            assert adapter.proto is None and len(adapter.calls) == 1
            assert agent_states(rig)["ag-1"] == "busy"  # the bug: still live in agner
            await until(lambda: not adapter.calls, timeout=10)
            assert adapter.evapi_connections == 2
            await until(lambda: agent_states(rig)["ag-1"] == "ready")
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[1].seen().items()
        assert "BYE" in seen and seen[-1] == "200"
        assert rig.records() == {cid: ("answered", "ag-1")}


def test_click_to_dial_rings_the_agent_then_the_customer(tmp_path: Path) -> None:
    """An outbound contact (dial) offered to ag-1: Kamailio rings the agent's
    phone (dlg_bridge), REFERs it to the customer once it answers; the phone
    calls the customer through Kamailio; the call ends with the agent's BYE
    and agner records it answered by ag-1."""
    with Rig(tmp_path) as rig:
        phone = rig.agent("phone", "agent_dial.xml", "-m", "1")
        cust = rig.agent("cust", "agent_answer.xml", "-m", "1")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": phone}, dial_uri=f"sip:{{number}}@{HOST}:{cust.port}")
            await adapter.start()
            await adapter.wait_up()
            await until(lambda: agent_states(rig).get("ag-1") == "ready")
            adapter.link.send(Dial("sales", "5550100", call_id="out-7", agent="ag-1"))
            assert await wait_proc(phone) == 0
            assert await wait_proc(cust) == 0
            await until(lambda: not adapter.calls and not adapter.dials and not adapter.sip_calls)
            await adapter.close()

        asyncio.run(main())
        (_, seen), *_ = phone.seen().items()
        refer = seen.index("REFER")
        assert seen[:4] == ["INVITE", "180", "200", "ACK"]  # the agent's phone rings first
        assert seen[refer : refer + 4] == ["REFER", "202", "BYE", "200"]
        assert seen[refer + 4] == "INVITE" and seen[-2:] == ["BYE", "200"]  # then it calls out
        (_, cseen), *_ = cust.seen().items()
        assert cseen[:4] == ["INVITE", "180", "200", "ACK"] and cseen[-2:] == ["BYE", "200"]
        invite = cust.messages.read_text().split("INVITE sip:", 1)[1].split("\n", 1)[0]
        assert invite.startswith(f"5550100@{HOST}:{cust.port} ") and "agner=" not in invite
        assert rig.records() == {"out-7": ("answered", "ag-1")}


def test_callback_releases_the_caller_and_dials_back_when_an_agent_is_ready(
    tmp_path: Path,
) -> None:
    """The queue overflows to a callback after 1 s: the caller is released with
    480, keeps its place; when ag-1 becomes ready its phone rings, then calls
    the caller's number (its From user) back."""
    with Rig(tmp_path, queue_extra='max_wait_s = 1\noverflow = "callback"') as rig:
        phone = rig.agent("phone", "agent_dial.xml", "-m", "1")
        back = rig.agent("back", "agent_answer.xml", "-m", "1")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": phone}, dial_uri=f"sip:{{number}}@{HOST}:{back.port}")
            adapter.login = []
            await adapter.start()
            await adapter.wait_up()
            adapter.link.send(Login("ag-1"))
            caller = rig.caller("caller", "caller_callback.xml", "-m", "1").start()
            assert await wait_proc(caller) == 0  # 480 Callback Scheduled
            assert not adapter.calls
            adapter.link.send(Ready("ag-1"))
            assert await wait_proc(phone) == 0
            assert await wait_proc(back) == 0
            await until(lambda: not adapter.calls)
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[2].seen().items()
        assert seen[0] == "INVITE" and seen[-2:] == ["480", "ACK"]
        (_, bseen), *_ = back.seen().items()
        assert bseen[:3] == ["INVITE", "180", "200"]
        invite = back.messages.read_text().split("INVITE sip:", 1)[1].split("\n", 1)[0]
        assert invite.startswith("caller1@")  # the caller's number, dialed back
        assert rig.records() == {cid: ("answered", "ag-1")}


def ring_all(tmp: Path, ring_ms: int = 5000) -> Rig:
    """A rig whose queue offers a caller to every ready agent at once."""
    return Rig(tmp, ring_ms=ring_ms, queue_extra="parallel = 0")


async def started(rig: Rig, agents: dict[str, Sipp]) -> KamailioAdapter:
    """The rig's adapter for ``agents``, both links up."""
    adapter = rig.adapter(agents)
    await adapter.start()
    await adapter.wait_up()
    return adapter


def test_parallel_offer_forks_to_both_agents_and_the_first_answer_wins(tmp_path: Path) -> None:
    """A ring-all queue: the INVITE is forked to both ready agents at once;
    ag-2 answers, Kamailio cancels ag-1's branch (it never answers), agner
    releases ag-1 (taken, not blamed) and records the call answered by ag-2,
    long before ag-1 would have rung out."""
    with ring_all(tmp_path) as rig:
        deaf = rig.agent("deaf", "agent_noanswer.xml")
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = await started(rig, {"ag-1": deaf, "ag-2": ann})
            await until(
                lambda: (
                    agent_states(rig) == {"ag-1": "ready", "ag-2": "ready", "ag-3": "logged_out"}
                )
            )
            caller = rig.caller("caller", "caller.xml", "-m", "1", "-d", "100").start()
            t0 = time.monotonic()
            assert await wait_proc(caller) == 0
            assert time.monotonic() - t0 < 4.0  # not after ag-1's ring_ms
            await until(lambda: not adapter.calls)
            await until(lambda: agent_states(rig)["ag-2"] == "ready")
            assert agent_states(rig)["ag-1"] == "ready"
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[2].seen().items()
        assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen
        assert not {"182", "486", "408", "487"} & set(seen)
        assert deaf.seen()[cid][:3] == ["INVITE", "180", "CANCEL"]
        assert ann.seen()[cid][:3] == ["INVITE", "180", "200"]
        assert rig.records() == {cid: ("answered", "ag-2")}


@pytest.mark.parametrize("second", ["agent_busy.xml", "agent_noanswer.xml"])
def test_parallel_offer_both_fail_then_the_next_agent(tmp_path: Path, second: str) -> None:
    """Both agents of a fork fail (busy; or busy, then the other rings out):
    each is marked not ready (RONA) once, as its own branch fails, the
    caller waits again and is answered by ag-3 when it becomes ready (rung
    alone, as a serial offer)."""
    with ring_all(tmp_path, ring_ms=1500) as rig:
        busy1 = rig.agent("busy1", "agent_busy.xml")
        busy2 = rig.agent("busy2", second)
        ann = rig.agent("ann", "agent_answer.xml")

        async def main() -> None:
            adapter = rig.adapter({"ag-1": busy1, "ag-2": busy2, "ag-3": ann})
            adapter.login = ["ag-1", "ag-2"]
            await adapter.start()
            await adapter.wait_up()
            adapter.link.send(Login("ag-3"))
            await until(
                lambda: agent_states(rig) == {"ag-1": "ready", "ag-2": "ready", "ag-3": "not_ready"}
            )
            caller = rig.caller("caller", "caller.xml", "-m", "1", "-d", "100").start()
            if second == "agent_noanswer.xml":  # ag-1's branch failed, ag-2's rings on
                await until(lambda: agent_states(rig)["ag-1"] == "not_ready")
                assert agent_states(rig)["ag-2"] == "reserved"
            await until(
                lambda: agent_states(rig)["ag-1"] == agent_states(rig)["ag-2"] == "not_ready"
            )
            await until(lambda: [c.state for c in adapter.calls.values()] == ["queued"])
            adapter.link.send(Ready("ag-3"))
            assert await wait_proc(caller) == 0
            await until(lambda: not adapter.calls)
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[3].seen().items()
        assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen
        assert not {"486", "408", "487"} & set(seen)  # failures stay behind the proxy
        assert busy1.seen()[cid][:2] == ["INVITE", "486"] and busy1.seen()[cid].count("INVITE") == 1
        failed = ["INVITE", "486"] if second == "agent_busy.xml" else ["INVITE", "180", "CANCEL"]
        assert busy2.seen()[cid][: len(failed)] == failed
        assert busy2.seen()[cid].count("INVITE") == 1
        assert ann.seen()[cid][:3] == ["INVITE", "180", "200"]
        assert rig.records() == {cid: ("answered", "ag-3")}
        states = agent_states(rig)
        assert states["ag-1"] == states["ag-2"] == "not_ready" and states["ag-3"] == "ready"


def test_caller_hanging_up_while_a_fork_rings_blames_no_agent(tmp_path: Path) -> None:
    """The caller CANCELs while both agents of a fork ring: Kamailio cancels
    both branches, agner records the call abandoned and both agents are
    ready again (no RONA for the cancelled branches)."""
    with ring_all(tmp_path) as rig:
        deaf1 = rig.agent("deaf1", "agent_noanswer.xml")
        deaf2 = rig.agent("deaf2", "agent_noanswer.xml")

        async def main() -> None:
            adapter = await started(rig, {"ag-1": deaf1, "ag-2": deaf2})
            await until(lambda: agent_states(rig)["ag-2"] == "ready")
            caller = rig.caller("caller", "caller_ring_cancel.xml", "-m", "1").start()
            assert await wait_proc(caller) == 0
            await until(lambda: not adapter.calls)
            await asyncio.sleep(0.3)  # the branches' 487s: nobody is blamed for them
            assert agent_states(rig) == {"ag-1": "ready", "ag-2": "ready", "ag-3": "logged_out"}
            await adapter.close()

        asyncio.run(main())
        (cid, seen), *_ = rig.sipps[2].seen().items()
        assert seen[0] == "INVITE" and "487" in seen and "200" in seen
        for deaf in (deaf1, deaf2):
            assert deaf.seen()[cid][:3] == ["INVITE", "180", "CANCEL"]
        assert rig.records() == {cid: ("abandoned", None)}


class InServer(Rig):
    """The rig with the adapter inside `agner serve` (an ``[[adapters]]`` table):
    one sipp phone per agent (name -> scenario), whose addresses go into the
    table, all logged in by it; Kamailio and the phones start before the server."""

    def __init__(self, tmp: Path, phones: dict[str, str], **kw: Any) -> None:
        super().__init__(tmp, agents=len(phones), **kw)
        self.phones = {
            a: self.sipp(a, scenario, f"{HOST}:{self.kam.sip_port}")
            for a, scenario in phones.items()
        }
        agents = ", ".join(f'{a} = "sip:{a}@{HOST}:{s.port}"' for a, s in self.phones.items())
        with open(self.server.config, "a") as fh:
            fh.write(
                f'\n[[adapters]]\nswitch = "kamailio"\nevapi = "{self.kam.evapi}"\n'
                f'token = "{ACME}"\nagents = {{ {agents} }}\n'
                f"login = {json.dumps(list(phones))}\nring_ms = {self.ring_ms}\n"
            )

    def __enter__(self) -> InServer:
        self.kam.start()
        for s in self.phones.values():
            s.start()
        self.server.start()
        assert f"adapter kamailio: evapi {self.kam.evapi}, tenant acme" in self.server.banner
        return self

    def call(self, name: str, *args: str, timeout: float = 15.0) -> Sipp:
        """One caller (caller.xml, ``args`` added), tried again while Kamailio
        answers 503 (the adapter has not reached evapi yet); the one through."""
        deadline = time.monotonic() + timeout
        for attempt in range(1000):
            s = self.caller(f"{name}-{attempt}", "caller.xml", "-m", "1", *args).start()
            assert s.proc is not None
            if s.proc.wait(20) == 0:
                return s
            ((_, seen),) = s.seen().items()
            assert seen[:2] == ["INVITE", "503"], seen  # only a call agner never saw is tried again
            assert time.monotonic() < deadline, s.errors.read_text()[-2000:]
            time.sleep(0.3)
        raise AssertionError("unreachable")


def journaled(rig: Rig) -> list[Any]:
    """The messages agner journaled (its data in the rig's directory), in order."""
    fp = fingerprint(load_server_config(rig.server.config))
    return [
        e.msg for seg in sorted(rig.tmp.glob("journal-*.bin")) for e in read_entries(seg, fp)[0]
    ]


@pytest.mark.parametrize("winner", ["ag-1", "ag-2"], ids=["branch-0-answers", "branch-1-answers"])
def test_parallel_offer_through_the_adapter_inside_agner_serve(tmp_path: Path, winner: str) -> None:
    """A queue with parallel = 2 and the adapter inside `agner serve`: the
    caller's INVITE is forked to ag-1 and ag-2 (the first two by the linear
    strategy; ag-3, ready too, is not rung); the one that answers gets the
    call, Kamailio cancels the other's branch, agner releases that agent
    (ready, not blamed: no no_answer reached agner) and records one answered
    contact, by the winner."""
    loser = "ag-2" if winner == "ag-1" else "ag-1"
    phones = {winner: "agent_answer.xml", loser: "agent_noanswer.xml", "ag-3": "agent_answer.xml"}
    with InServer(
        tmp_path, dict(sorted(phones.items())), ring_ms=10000, queue_extra="parallel = 2"
    ) as rig:
        ready = {"ag-1": "ready", "ag-2": "ready", "ag-3": "ready"}
        deadline = time.monotonic() + 10
        while agent_states(rig) != ready:
            assert time.monotonic() < deadline, agent_states(rig)
            time.sleep(0.05)
        t0 = time.monotonic()
        caller = rig.call("caller", "-d", "100")
        assert time.monotonic() - t0 < 5.0  # long before the loser's phone rings out
        rec = rig.records()
        status, body = rig.server.get("/v1/agents", ACME)
        assert status == 200
        agents = {a["name"]: a for a in body["agents"]}
        status, body = rig.server.get("/v1/queues", ACME)
        assert status == 200
        (sales,) = body["queues"]
        assert rig.server.stop() == 0
        inputs = journaled(rig)
    ((cid, seen),) = caller.seen().items()
    assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen
    assert not {"182", "486", "408", "487"} & set(seen)  # put through at once, no failure
    assert rig.phones[winner].seen()[cid][:3] == ["INVITE", "180", "200"]
    assert rig.phones[loser].seen()[cid][:3] == ["INVITE", "180", "CANCEL"]
    assert rig.phones["ag-3"].seen() == {}  # parallel = 2: two agents rung, not three
    assert rec == {cid: ("answered", winner)}
    assert {
        a: (s["state"], s["reason"], s["call_id"], s["handled"]) for a, s in agents.items()
    } == {
        winner: ("ready", 0, None, 1),
        loser: ("ready", 0, None, 0),
        "ag-3": ("ready", 0, None, 0),
    }
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (1, 1, 0)
    # what the adapter told agner of the call: arrived, answered by the winner,
    # complete; no no_answer (RONA) for the cancelled branch, no hung_up
    calls = [m for m in inputs if getattr(m, "call_id", None) == cid]
    assert [type(m) for m in calls] == [Arrived, Answered, Complete]
    assert calls[1].agent == calls[2].agent == winner
    assert not [m for m in inputs if isinstance(m, NoAnswer | HungUp)]


def test_adapter_inside_agner_serve_answers_calls_across_a_kamailio_restart(
    tmp_path: Path,
) -> None:
    """`agner serve` with an [[adapters]] table runs the adapter in its own
    process: it logs the agent in, callers reach the agent, records are
    written; Kamailio restarts, the adapter reconnects to evapi by itself and
    the next caller is answered too."""
    with InServer(tmp_path, {"ag-1": "agent_answer.xml"}) as rig:
        first = rig.call("first", "-d", "100").seen()
        rig.kam.stop()
        rig.kam.start()
        second = rig.call("second", "-d", "100").seen()
        rig.kam.stop()
        assert rig.server.stop() == 0  # SIGTERM: the adapter is closed with the server
    for calls in (first, second):
        ((_, seen),) = calls.items()
        assert seen[0] == "INVITE" and "200" in seen and "BYE" in seen, seen
    rec = records(tmp_path, want=2)
    assert rec == {next(iter(c)): ("answered", "ag-1") for c in (first, second)}
