"""The Kamailio adapter end to end: sipp callers -> Kamailio (adapters/kamailio.cfg)
-> evapi -> the adapter -> `agner serve` -> back, to sipp agents; checked call by
call on the caller's side, the agent's side and in agner's records."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve_harness import ACME, ServerProcess
from sip_harness import HOST, Kamailio, Sipp, needs_sip, write_center

from agner.adapters.kamailio import KamailioAdapter

pytestmark = needs_sip


class Rig:
    def __init__(
        self, tmp: Path, *, agents: int = 3, ring_ms: int = 15000, ring_timeout_s: int = 60
    ) -> None:
        self.tmp = tmp
        self.server = ServerProcess(write_center(tmp / "center.toml", agents, ring_timeout_s), tmp)
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

    def agent(self, name: str, scenario: str) -> Sipp:
        return self.sipp(name, scenario, f"{HOST}:{self.kam.sip_port}").start()

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
        """call id -> (outcome, agent) of agner's interaction records."""
        deadline = time.monotonic() + timeout
        rows: dict[str, tuple[Any, ...]] = {}
        while time.monotonic() < deadline:
            db = self.tmp / "crm.db"
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
