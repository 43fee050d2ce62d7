"""The journal loses nothing: a server killed with SIGKILL under load comes back
with every waiting contact in the same order, no agent assigned twice, and every
acknowledged input in place."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ACME, CENTER, ServerProcess, center_with

from agner.load import WireClient
from agner.protocol import Answered, Arrived, Connect, Hello, Login, Ok, Ping, Pong, Ready, Welcome


async def _hello(address: str) -> WireClient:
    c = await WireClient.connect(address)
    assert isinstance(await c.request(Hello(ACME, switch=True)), Welcome)
    return c


async def _until_pong(c: WireClient) -> list[Any]:
    c.send(Ping(ref=999_999))
    got = []
    while True:
        m = await c.recv(10)
        if isinstance(m, Pong):
            return got
        got.append(m)


async def _setup(address: str) -> None:
    c = await _hello(address)
    for i in range(1, 6):
        c.send(Login(agent=f"acme-sales-{i}"))
        c.send(Ready(agent=f"acme-sales-{i}"))
    for i in range(5):
        c.send(Arrived(f"s{i}", "sales"))
    for i in range(3):
        c.send(Answered(f"s{i}"))
    for i in range(20):
        c.send(Arrived(f"w{i}", "sales", priority=3 if i % 7 == 0 else None))
    got = await _until_pong(c)
    assert [m.call_id for m in got if isinstance(m, Connect)] == [f"s{i}" for i in range(5)]
    assert not [m for m in got if not isinstance(m, Connect)]
    c.close()


async def _burst_and_kill(server: ServerProcess, n: int, kill_after: int) -> tuple[int, int]:
    """Send n arrivals with refs; SIGKILL the server once kill_after are acknowledged.
    Returns (acknowledged, sent)."""
    c = await _hello(server.tcp)
    acked = 0
    for i in range(n):
        c.send(Arrived(f"b{i}", "support", ref=i + 1))
    while acked < kill_after:
        m = await c.recv(10)
        assert isinstance(m, Ok) and m.ref == acked + 1  # in order, nothing refused
        acked += 1
    server.kill()
    await asyncio.wait_for(c.lost, 10)
    while not c.inbox.empty():  # what arrived before the kill counts too
        m = c.inbox.get_nowait()
        assert isinstance(m, Ok) and m.ref == acked + 1
        acked += 1
    return acked, n


def _state(server: ServerProcess) -> tuple[dict[str, list[str]], dict[str, tuple[str, Any]]]:
    status, queues = server.get("/v1/queues", ACME)
    assert status == 200
    status, agents = server.get("/v1/agents", ACME)
    assert status == 200
    waiting = {q["name"]: q["waiting_calls"] for q in queues["queues"]}
    return waiting, {a["name"]: (a["state"], a["call_id"]) for a in agents["agents"]}


@pytest.mark.parametrize(
    "snapshots",
    [{}, {"snapshot_every": 40}, {"snapshot_every": 1, "keep_snapshots": 1}],
    ids=["journal-only", "snapshot-every-40", "snapshot-every-batch"],
)
def test_sigkill_under_load_loses_nothing(tmp_path: Path, snapshots: dict[str, int]) -> None:
    """With snapshots: taken after the set-up and during the burst, one at a time
    (the kill often lands while one is being written: the restart then uses
    the one before)."""
    config = center_with(tmp_path, **snapshots) if snapshots else CENTER
    data = tmp_path / "data"
    server = ServerProcess(config, data).start()
    try:
        asyncio.run(_setup(server.tcp))
        waiting1, agents1 = _state(server)
        assert waiting1["sales"] == ["w0", "w7", "w14"] + [f"w{i}" for i in range(20) if i % 7]
        acked, sent = asyncio.run(_burst_and_kill(server, 3000, 200))
        assert not server.alive()
    finally:
        if server.alive():
            server.stop()

    if snapshots:  # one was taken, or begun (a new segment) when the kill came
        assert list(data.glob("snapshot-*")) or len(list(data.glob("journal-*.bin"))) >= 2
    again = ServerProcess(config, data).start()
    try:
        waiting2, agents2 = _state(again)
        if snapshots:  # it started from the newest whole snapshot (0: none was finished)
            status, health = again.get("/healthz")
            assert status == 200
            assert health["inputs"] == health["snapshot"] + health["replayed"]
        assert waiting2["sales"] == waiting1["sales"]
        assert agents2 == agents1
        # every acknowledged arrival waits, in order; what follows is a prefix of the rest
        k = len(waiting2["support"])
        assert acked <= k <= sent
        assert waiting2["support"] == [f"b{i}" for i in range(k)]
        busy = [call for _, call in agents2.values() if call is not None]
        assert sorted(busy) == [f"s{i}" for i in range(5)]  # no agent twice, no call twice
        assert {a: s for a, (s, _) in agents2.items() if s != "logged_out"} == {
            "acme-sales-1": "busy",
            "acme-sales-2": "busy",
            "acme-sales-3": "busy",
            "acme-sales-4": "reserved",
            "acme-sales-5": "reserved",
        }

        async def carry_on() -> list[Connect]:
            c = await _hello(again.tcp)
            c.send(Answered("s3", ref=1))  # the ringing offer survived
            assert await c.recv() == Ok(1)
            for i in range(1, 4):
                c.send(Login(agent=f"acme-support-{i}"))
                c.send(Ready(agent=f"acme-support-{i}"))
            got = await _until_pong(c)
            c.close()
            return [m for m in got if isinstance(m, Connect)]

        connects = asyncio.run(carry_on())
        assert [m.call_id for m in connects] == ["b0", "b1", "b2"]
        assert len({m.agent for m in connects}) == 3
        final = _state(again)
    finally:
        assert again.stop() == 0  # a clean stop

    third = ServerProcess(config, data).start()  # replay of a replayed journal
    try:
        assert _state(third) == final
    finally:
        third.stop()
