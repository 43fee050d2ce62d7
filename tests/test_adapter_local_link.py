"""An adapter inside `agner serve`'s process (LocalLink): the same session as over
TCP, with the same checks (token, size, switch rights), batches of one turn of
the loop journaled before the decisions reach the adapter, and an adapter bug
that leaves the server running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ACME, ANN, center_with

from agner import protocol as p
from agner.adapters.link import AgnerLink, LocalLink, open_link
from agner.config import load_server_config
from agner.server import Server


def _server(tmp: Path, **opts: Any) -> Server:
    cfg = load_server_config(center_with(tmp, fsync="never", **opts))
    return Server(cfg, tmp / "data")


def _run(tmp: Path, body: Any, **opts: Any) -> None:
    async def main() -> None:
        server = _server(tmp, **opts)
        try:
            await body(server)
        finally:
            server.close()

    asyncio.run(main())


def test_open_link_picks_tcp_for_an_address_and_local_for_a_server(tmp_path: Path) -> None:
    async def body(server: Server) -> None:
        assert isinstance(open_link("127.0.0.1:7100", ACME, print), AgnerLink)
        assert isinstance(open_link(server, ACME, print), LocalLink)

    _run(tmp_path, body)


def test_a_call_in_process_is_journaled_before_its_connect_reaches_the_adapter(
    tmp_path: Path,
) -> None:
    got: list[Any] = []
    up: list[str] = []

    async def body(server: Server) -> None:
        link = LocalLink(server, ACME, got.append, on_up=lambda: up.append(link.tenant))
        # held until the welcome, then sent in order
        link.send(p.Login("acme-sales-1"))
        link.send(p.Ready("acme-sales-1"))
        link.start()
        await link.wait_up()
        assert up == ["acme"] and link.connections == 1
        entries = server.journal.entries

        journaled: list[bool] = []

        def on_connect(msg: Any) -> None:
            got.append(msg)
            if isinstance(msg, p.Connect):
                # the arrival is in the journal before its decision left
                journaled.append(server.journal.entries > entries and not server.pending)

        link.on_message = on_connect
        link.send(p.Arrived("c1", "sales", ref=7))
        await asyncio.sleep(0.05)
        connect = next(m for m in got if isinstance(m, p.Connect))
        assert (connect.call_id, connect.agent) == ("c1", "acme-sales-1")
        assert journaled == [True]
        assert p.Ok(7) in got
        link.send(p.Answered("c1"))
        link.send(p.Complete("c1", agent="acme-sales-1", ref=8))
        await asyncio.sleep(0.05)
        assert p.Ok(8) in got
        await link.close()
        assert link.session is not None and link.session.closed
        assert link.session not in server.sessions

    _run(tmp_path, body)


@pytest.mark.parametrize(
    ("token", "code"),
    [("no-such-token-at-all", "unauthorized"), (ANN, "forbidden")],
    ids=["unknown-token", "a-desktop-token"],
)
def test_a_refused_token_makes_wait_up_fail(tmp_path: Path, token: str, code: str) -> None:
    async def body(server: Server) -> None:
        link = LocalLink(server, token, print)
        link.start()
        with pytest.raises(PermissionError, match=code):
            await link.wait_up(2.0)
        assert not link.up
        await link.close()

    _run(tmp_path, body)


def test_the_session_checks_apply_in_process(tmp_path: Path) -> None:
    """Too large, and too many: refused as over TCP, and the server goes on."""
    got: list[Any] = []

    async def body(server: Server) -> None:
        link = LocalLink(server, ACME, got.append)
        link.start()
        await link.wait_up()
        link.send(p.Arrived("big", "sales", data={"x": "y" * 1000}, ref=2))
        await asyncio.sleep(0.05)
        assert [m.code for m in got if isinstance(m, p.Error)] == ["too_large"]
        got.clear()
        for i in range(30):
            link.send(p.Ping(ref=100 + i))
        await asyncio.sleep(0.05)
        assert "rate_limited" in {m.code for m in got if isinstance(m, p.Error)}
        await link.close()

    _run(tmp_path, body, max_message_bytes=512, burst=10, rate_per_s=1)


def test_an_adapter_that_fails_on_a_message_leaves_the_server_running(tmp_path: Path) -> None:
    calls: list[Any] = []

    def broken(msg: Any) -> None:
        calls.append(msg)
        raise RuntimeError("adapter bug")

    async def body(server: Server) -> None:
        link = LocalLink(server, ACME, broken)
        link.start()
        await link.wait_up()
        link.send(p.Ping(ref=1))
        link.send(p.Ping(ref=2))
        await asyncio.sleep(0.05)
        assert [m.ref for m in calls] == [1, 2]  # both delivered despite the first failure
        assert link.up and not link.session.closed  # type: ignore[union-attr]
        await link.close()

    _run(tmp_path, body)
