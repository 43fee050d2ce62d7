"""Interaction records survive a crash: a server killed between a contact's end
and the CRM store's write rebuilds the record when it starts (from the
journal, or from the snapshot that kept it) and writes it, once."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ServerProcess, center_with
from test_serve_transports import Tcp, hello

from agner import protocol as p
from agner.crm import open_store


def _stored(data: Path) -> list[Any]:
    with open_store(f"sqlite:///{data / 'crm.db'}") as store:
        return sorted(store.interactions("acme", limit=100), key=lambda i: i.ref or "")


def _until(c: Tcp, ref: int) -> list[Any]:
    got = []
    while True:
        m = c.recv()
        assert not isinstance(m, p.Error), m
        got.append(m)
        if isinstance(m, p.Ok) and m.ref == ref:
            return got


def _health(srv: ServerProcess) -> dict[str, Any]:
    status, body = srv.get("/healthz")
    assert status == 200
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("snapshot_every", [0, 1], ids=["from-the-journal", "from-a-snapshot"])
def test_a_kill_before_the_store_write_loses_no_record(tmp_path: Path, snapshot_every: int) -> None:
    # Records go to the store once an hour: the kill surely comes before.
    cfg = center_with(tmp_path, records_interval_ms=3_600_000, snapshot_every=snapshot_every)
    data = tmp_path / "data"
    srv = ServerProcess(cfg, data).start()
    try:
        c = hello(srv, switch=True)
        c.send(p.Login(agent="acme-sales-1"))
        c.send(p.Ready(agent="acme-sales-1"))
        c.send(p.Arrived("gone", "sales", customer="+33142685399", ref=1))
        c.send(p.HungUp("gone", ref=2))  # abandoned: the agent was rung, not answered
        _until(c, 2)
        c.send(p.Arrived("talk", "sales", ref=3))
        c.send(p.Answered("talk", ref=4))
        c.send(p.HungUp("talk", ref=5))  # the agent owes the disposition ...
        c.send(p.Complete("talk", agent="acme-sales-1", disposition="sold", satisfaction=4, ref=6))
        c.send(p.Arrived("done", "sales", ref=7))
        c.send(p.Answered("done", ref=8))
        c.send(p.Complete("done", agent="acme-sales-1", disposition="info", ref=9))
        _until(c, 9)
        if snapshot_every:
            # one more batch once no snapshot is being written: a snapshot after
            # every record, then nothing left to replay
            while _health(srv)["writing_snapshot"]:
                time.sleep(0.01)
            c.send(p.NotReady(agent="acme-sales-1", reason=1, ref=10))
            _until(c, 10)
            while _health(srv)["writing_snapshot"]:
                time.sleep(0.01)
        c.close()
    finally:
        srv.kill()
    assert _stored(data) == []  # killed before the store saw any

    again = ServerProcess(cfg, data).start()
    try:
        health = _health(again)
        if snapshot_every:
            assert health["snapshot"] > 0 and health["replayed"] == 0
        else:
            assert health["snapshot"] == 0 and health["replayed"] > 0
        deadline = time.monotonic() + 20
        while len(_stored(data)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert again.stop() == 0
    first = _stored(data)
    got = {(i.ref.split("@")[0], i.outcome, i.agent, i.disposition, i.satisfaction) for i in first}
    assert got == {
        ("gone", "abandoned", None, None, None),
        ("talk", "answered", "acme-sales-1", "sold", 4),
        ("done", "answered", "acme-sales-1", "info", None),
    }

    third = ServerProcess(cfg, data).start()  # the same records rebuilt: not stored twice
    assert third.stop() == 0  # a clean stop waits for the store's writes
    assert _stored(data) == first


def _policies(pid: int) -> list[tuple[int, int]]:
    """The scheduling policy and the nice value of each of the process's threads."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            tid = int(task.name)
            out.append((os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)))
    return out


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
@pytest.mark.parametrize("priority", ["low", "idle", "normal", None])
def test_the_records_thread_runs_at_the_background_priority(
    tmp_path: Path, priority: str | None
) -> None:
    options: dict[str, Any] = {"records_interval_ms": 10}
    if priority is not None:  # None: the default, low
        options["background_priority"] = priority
    cfg = center_with(tmp_path, **options)
    data = tmp_path / "data"
    srv = ServerProcess(cfg, data).start()
    try:
        c = hello(srv, switch=True)
        c.send(p.Arrived("gone", "sales", ref=1))
        c.send(p.HungUp("gone", ref=2))
        _until(c, 2)
        deadline = time.monotonic() + 20
        while not _stored(data) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_stored(data)) == 1  # written by the store's thread, which exists now
        assert srv.proc is not None
        policies = _policies(srv.proc.pid)
        c.close()
    finally:
        assert srv.stop() == 0
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # the server's, inherited from the tests'
    loop = (os.SCHED_OTHER, nice)
    assert loop in policies  # the event loop's thread
    # the store's thread (and a snapshot's, if one was written)
    background = [x for x in policies if x != loop]
    want = {"low": (os.SCHED_OTHER, 19), None: (os.SCHED_OTHER, 19)}.get(priority)
    if priority == "idle":
        assert background and all(pol == os.SCHED_IDLE for pol, _ in background), policies
    elif priority == "normal":
        assert background == [], policies
    else:
        assert background and set(background) == {want}, policies


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_background_priorities_of_a_thread() -> None:
    from agner.server import _background

    def in_thread(priority: str) -> tuple[int, int]:
        got: list[tuple[int, int]] = []

        def run() -> None:
            _background(priority)
            tid = threading.get_native_id()
            got.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, tid)))

        t = threading.Thread(target=run)
        t.start()
        t.join()
        return got[0]

    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert in_thread("idle")[0] == os.SCHED_IDLE
    assert in_thread("low") == (os.SCHED_OTHER, 19)
    assert in_thread("normal") == (os.SCHED_OTHER, nice)
    # the caller's own thread is untouched
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == (os.SCHED_OTHER, nice)
