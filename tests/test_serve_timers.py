"""The server's one timer, set for the core's next deadline: a ring timeout
fires on its own (no input needed), at its deadline and not before, also when
the earliest deadline moved later in between (an answered offer)."""

from __future__ import annotations

import time
from pathlib import Path

from serve_harness import ServerProcess, center_with
from test_serve_transports import hello

from agner import protocol as p

RING_S = 0.6


def test_a_ring_timeout_fires_at_its_deadline_after_the_earliest_one_went(
    tmp_path: Path,
) -> None:
    srv = ServerProcess(center_with(tmp_path, ring_timeout_s=RING_S), tmp_path / "data").start()
    try:
        c = hello(srv, switch=True)
        for i in (1, 2):
            c.send(p.Login(agent=f"acme-sales-{i}"))
            c.send(p.Ready(agent=f"acme-sales-{i}"))
        c.send(p.Arrived("first", "sales", ref=1))
        assert isinstance(c.recv(), p.Connect)
        assert c.recv() == p.Ok(1)
        time.sleep(RING_S / 2)
        c.send(p.Arrived("second", "sales", ref=2))
        t_second = time.monotonic()
        assert isinstance(c.recv(), p.Connect)
        assert c.recv() == p.Ok(2)
        # the earliest deadline (the first's ring timeout) goes: the next is later
        c.send(p.Answered("first", ref=3))
        assert c.recv() == p.Ok(3)
        revoked = c.recv()  # no input from here on: the server's timer fires
        waited = time.monotonic() - t_second
        assert isinstance(revoked, p.Revoked)
        assert (revoked.call_id, revoked.reason) == ("second", "rona")
        assert waited >= RING_S - 0.05  # not at the first's deadline
        assert waited < RING_S + 2.0  # a loaded machine's slack
        c.close()
    finally:
        assert srv.stop() == 0
