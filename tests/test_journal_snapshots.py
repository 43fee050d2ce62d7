"""Snapshots keep replay short and lose nothing: a restart from the newest
snapshot plus the journal after it reaches the state a replay of the whole
journal reaches; a snapshot cut short by a crash, or corrupt, is reported and
the one before it used; a hole in the journal stops the start, changing
nothing."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from serve_harness import ACME, ROOT, ServerProcess, center_with
from test_serve_transports import Tcp, hello

from agner import protocol as p
from agner.center import Center, Identity, fingerprint
from agner.config import load_server_config
from agner.journal import JournalError, read_entries, read_snapshot

EVERY = 20


def _drain(c: Tcp) -> list[Any]:
    """Everything the server sent until the reply to a ping."""
    c.send(p.Ping(ref=424242))
    got = []
    while True:
        m = c.recv()
        if isinstance(m, p.Pong) and m.ref == 424242:
            return got
        assert not isinstance(m, p.Error), m
        got.append(m)


def _day(c: Tcp, tag: str) -> None:
    """A little of everything that changes state: logins, arrivals, answers,
    hang-ups of answered and waiting calls, dispositions, a not-ready; in
    batches of a few inputs (the server snapshots between batches)."""
    offered: list[str] = []
    sent = 0

    def send(msg: Any) -> None:
        nonlocal sent
        c.send(msg)
        sent += 1
        if sent % 5 == 0:
            offered.extend(m.call_id for m in _drain(c) if isinstance(m, p.Connect))

    for i in range(1, 9):
        send(p.Login(agent=f"acme-sales-{i}"))
        send(p.Ready(agent=f"acme-sales-{i}"))
    for i in range(1, 5):
        send(p.Login(agent=f"acme-support-{i}"))
        send(p.Ready(agent=f"acme-support-{i}"))
    for i in range(30):
        queue = "sales" if i % 3 else "support"
        send(p.Arrived(f"{tag}{i}", queue, priority=2 if i % 11 == 0 else None))
    offered.extend(m.call_id for m in _drain(c) if isinstance(m, p.Connect))
    assert len(offered) == 12
    for call in list(offered):
        send(p.Answered(call))
    _drain(c)
    agent = {call: _agent_of(c, call) for call in offered}
    for call in offered[:4]:
        send(p.HungUp(call))  # the agent owes a disposition, until its next offer
    for call in offered[4:7]:
        send(p.Complete(call, agent=agent[call], disposition="info"))
    waiting = [f"{tag}{i}" for i in range(30) if f"{tag}{i}" not in offered]
    for call in waiting[:4]:
        send(p.HungUp(call))  # abandoned
    send(p.NotReady(agent="acme-support-4", reason=3))
    _drain(c)


def _agent_of(c: Tcp, call: str) -> str:
    c.send(p.QueryContact(call, ref=9))
    m = c.recv()
    assert isinstance(m, p.ContactStatus), m
    return m.agents[0]


def _view(srv: ServerProcess) -> tuple[Any, Any]:
    """/v1/queues and /v1/agents without what moves with the clock."""
    status, queues = srv.get("/v1/queues", ACME)
    assert status == 200
    status, agents = srv.get("/v1/agents", ACME)
    assert status == 200
    q = [
        {k: v for k, v in x.items() if k not in ("longest_wait_ms", "service_level_offered")}
        for x in queues["queues"]
    ]
    a = [{k: v for k, v in x.items() if k != "occupancy"} for x in agents["agents"]]
    return q, a


def _health(srv: ServerProcess) -> dict[str, Any]:
    status, body = srv.get("/healthz")
    assert status == 200
    return body  # type: ignore[no-any-return]


def _files(data: Path, prefix: str) -> list[Path]:
    return sorted(data.glob(f"{prefix}-*.bin"))


def _live_day(srv: ServerProcess) -> Any:
    """The day through a switch session; its view, once no snapshot is being written."""
    c = hello(srv, switch=True)
    _day(c, "a")
    c.close()
    view = _view(srv)
    while _health(srv)["writing_snapshot"]:
        time.sleep(0.01)
    return view


def _run_day(tmp_path: Path, **opts: Any) -> tuple[Path, Path, Any]:
    opts = {"snapshot_every": EVERY, **opts}
    cfg = center_with(tmp_path, **opts)
    data = tmp_path / "data"
    srv = ServerProcess(cfg, data).start()
    try:
        view = _live_day(srv)
        assert _health(srv)["snapshots"] >= (3 if opts["snapshot_every"] else 0)
    finally:
        srv.kill()  # no clean stop: the journal and snapshots as a crash leaves them
    return cfg, data, view


def _replay_all(cfg_path: Path, data: Path) -> Center:
    """The center a replay of every segment from entry 0 reaches (in process)."""
    cfg = load_server_config(cfg_path)
    center = Center(cfg)
    for seg in _files(data, "journal"):
        entries, _ = read_entries(seg, fingerprint(cfg))
        for e in entries:
            center.replay(e.now, Identity(e.tenant, e.agent), e.msg)
    return center


def test_restart_from_a_snapshot_reaches_the_state_of_a_full_replay(tmp_path: Path) -> None:
    cfg, data, before = _run_day(tmp_path, keep_snapshots=0)
    snaps = _files(data, "snapshot")
    assert len(snaps) >= 3
    fp = fingerprint(load_server_config(cfg))
    total = sum(len(read_entries(s, fp)[0]) for s in _files(data, "journal"))

    srv = ServerProcess(cfg, data).start()
    try:
        health = _health(srv)
        assert health["snapshot"] == int(snaps[-1].stem.split("-")[1]) > 0
        # replay is bounded: the entries after the newest snapshot, less than one
        # interval plus the batch that crossed it
        assert health["replayed"] == total - health["snapshot"]
        assert health["replayed"] < 2 * EVERY
        assert health["inputs"] == total
        assert _view(srv) == before
    finally:
        srv.kill()

    # The same journal replayed from entry 0, with the snapshots moved away.
    aside = tmp_path / "aside"
    aside.mkdir()
    for s in _files(data, "snapshot"):
        s.rename(aside / s.name)
    full = ServerProcess(cfg, data).start()
    try:
        health = _health(full)
        assert (health["snapshot"], health["replayed"]) == (0, total)
        assert _view(full) == before
    finally:
        full.kill()

    # The core's state too: a snapshot plus its tail against a whole replay.
    config = load_server_config(cfg)
    whole = _replay_all(cfg, data)
    newest = aside / snaps[-1].name
    from agner.server import _snapshot_decoder

    state = _snapshot_decoder.decode(read_snapshot(newest, fingerprint(config)))
    restored = Center.restore(config, state.center)
    for seg in _files(data, "journal"):
        start = int(seg.stem.split("-")[1])
        entries, _ = read_entries(seg, fingerprint(config))
        for k, e in enumerate(entries, start):
            if k >= state.entries:
                restored.replay(e.now, Identity(e.tenant, e.agent), e.msg)
    # (snapshot bytes are no canonical form: compare what the core answers)
    at = max(whole.router.now, restored.router.now) + 1_000_000
    assert _core_view(restored, at) == _core_view(whole, at)
    assert restored.live == whole.live
    assert restored.pending == whole.pending
    assert (restored.seq, restored.dials, restored.inputs) == (
        whole.seq,
        whole.dials,
        whole.inputs,
    )
    # and the same decisions from here on
    for center in (restored, whole):
        ident = Identity(0)
        center.apply(ident, p.Login(agent="acme-support-9"), at)
        center.apply(ident, p.Ready(agent="acme-support-9"), at + 1)
        for i in range(4):
            center.apply(ident, p.Arrived(f"z{i}", "support"), at + 2 + i)
        center.advance(at + 60_000_000)  # ring timeouts
    assert restored.outbox == whole.outbox == []
    assert _core_view(restored, at + 60_000_000) == _core_view(whole, at + 60_000_000)


def _core_view(center: Center, now: int) -> Any:
    """Everything the core answers about its agents, contacts and queues."""
    r = center.router
    agents = [
        (r.agent_state(a), r.agent_contacts(a), r.agent_load(a), r.agent_stats(a, now))
        for a in range(r.n_agents)
    ]
    contacts = {
        c: (r.contact_state(c), r.contact_agent(c), r.contact_queue(c)) for c in center.live
    }
    queues = [r.queue_stats(q, now) for q in range(r.n_queues)]
    return agents, contacts, queues, r.next_deadline(), r.now


def test_old_snapshots_and_segments_are_pruned(tmp_path: Path) -> None:
    cfg, data, before = _run_day(tmp_path)  # keep_snapshots = 2, the default
    snaps = _files(data, "snapshot")
    assert len(snaps) == 2
    firsts = [int(s.stem.split("-")[1]) for s in _files(data, "journal")]
    # the segments from the older snapshot kept on: enough to fall back to it
    assert firsts[0] == int(snaps[0].stem.split("-")[1])
    srv = ServerProcess(cfg, data).start()
    try:
        assert _view(srv) == before
    finally:
        srv.kill()


def test_a_corrupt_snapshot_falls_back_to_the_one_before(tmp_path: Path) -> None:
    cfg, data, before = _run_day(tmp_path)
    older, newest = _files(data, "snapshot")
    raw = bytearray(newest.read_bytes())
    raw[-10] ^= 0xFF
    newest.write_bytes(bytes(raw))
    srv = ServerProcess(cfg, data).start()
    try:
        assert f"cannot start from {newest.name}" in srv.banner
        assert "bad CRC" in srv.banner
        health = _health(srv)
        assert health["snapshot"] == int(older.stem.split("-")[1])
        assert _view(srv) == before
    finally:
        srv.kill()


def test_a_kill_while_a_snapshot_is_written_loses_nothing(tmp_path: Path) -> None:
    """The states a crash can leave while a snapshot is written: the new segment
    begun and the temp file cut short (not yet renamed), with or without
    entries after it; a restart uses the snapshot before, and removes the temp."""
    cfg, data, before = _run_day(tmp_path)
    older, newest = _files(data, "snapshot")
    body = newest.read_bytes()
    newest.unlink()  # not yet renamed into place ...
    tmp = data / (newest.name + ".tmp")
    tmp.write_bytes(body[: len(body) // 2])  # ... and half written
    srv = ServerProcess(cfg, data).start()
    try:
        assert f"{tmp.name}: an unfinished snapshot, removed" in srv.banner
        assert not tmp.exists()
        assert _health(srv)["snapshot"] == int(older.stem.split("-")[1])
        assert _view(srv) == before
    finally:
        srv.kill()


def test_a_snapshot_of_another_build_falls_back_to_a_whole_replay(tmp_path: Path) -> None:
    """A core snapshot the router cannot restore (written by another agner
    build) is said, and the journal from entry 0, kept, is replayed."""
    cfg, data, before = _run_day(tmp_path, keep_snapshots=0)
    fp = fingerprint(load_server_config(cfg))
    import msgspec

    from agner.center import _State
    from agner.journal import write_snapshot
    from agner.server import _snapshot_decoder, _snapshot_encoder

    for s in _files(data, "snapshot"):
        n = int(s.stem.split("-")[1])
        outer = _snapshot_decoder.decode(read_snapshot(s, fp))
        state = msgspec.msgpack.decode(outer.center, type=_State)
        core = msgspec.msgpack.decode(state.router)
        core["version"] = 10_000 + core["version"]  # the layout of a build to come
        state = msgspec.structs.replace(state, router=msgspec.msgpack.encode(core))
        outer = msgspec.structs.replace(outer, center=msgspec.msgpack.encode(state))
        s.unlink()
        write_snapshot(data, n, fp, _snapshot_encoder.encode(outer), keep=0)
    srv = ServerProcess(cfg, data).start()
    try:
        assert "cannot start from snapshot-" in srv.banner
        assert "router snapshot" in srv.banner  # the core says why
        health = _health(srv)
        assert health["snapshot"] == 0
        assert _view(srv) == before
    finally:
        srv.kill()


def test_a_hole_in_the_journal_stops_the_start_and_changes_nothing(tmp_path: Path) -> None:
    cfg, data, _ = _run_day(tmp_path)
    segments = _files(data, "journal")
    assert len(segments) >= 2
    for s in _files(data, "snapshot"):
        s.unlink()  # nothing to start from but entry 0, which was pruned
    listing = sorted((f.name, f.stat().st_size) for f in data.iterdir())
    srv = ServerProcess(cfg, data)
    with pytest.raises(RuntimeError, match="does not go back to entry 0"):
        srv.start()
    assert sorted((f.name, f.stat().st_size) for f in data.iterdir()) == listing


def test_a_torn_last_record_is_cut_off_and_said(tmp_path: Path) -> None:
    cfg, data, before = _run_day(tmp_path)
    last = _files(data, "journal")[-1]
    with open(last, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a record whose write the kill cut short
    srv = ServerProcess(cfg, data).start()
    try:
        assert "a torn last record (11 bytes) cut off" in srv.banner
        assert _view(srv) == before
    finally:
        srv.kill()


def test_a_journal_of_an_older_agner_becomes_segment_0(tmp_path: Path) -> None:
    cfg, data, before = _run_day(tmp_path, snapshot_every=0)  # one segment, no snapshot
    (seg,) = _files(data, "journal")
    shutil.move(seg, data / "journal.bin")
    srv = ServerProcess(cfg, data).start()
    try:
        assert _view(srv) == before
        assert (data / "journal-000000000000.bin").exists()
    finally:
        srv.kill()


def test_snapshot_options_are_checked(tmp_path: Path) -> None:
    from agner.config import ConfigFileError

    for bad in ({"snapshot_every": -1}, {"keep_snapshots": -1}, {"records_interval_ms": 0}):
        with pytest.raises(ConfigFileError, match="snapshot_every >= 0, keep_snapshots >= 0"):
            load_server_config(center_with(tmp_path, **bad))
    with pytest.raises(ConfigFileError, match="background_priority"):
        load_server_config(center_with(tmp_path, background_priority="high"))


def test_a_journal_under_another_configuration_is_refused(tmp_path: Path) -> None:
    _, data, _ = _run_day(tmp_path)
    other = center_with(tmp_path, snapshot_every=EVERY, seed=7)  # the fingerprint differs
    with pytest.raises(JournalError, match="another configuration"):
        from agner.server import Server

        Server(load_server_config(other), data)


def test_a_snapshot_that_cannot_be_written_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import agner.journal as journal

    journal.write_snapshot(tmp_path, 10, "fp", b"state at 10", keep=2)
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        journal.write_snapshot(tmp_path, 20, "fp", b"state at 20", keep=2)
    monkeypatch.setattr(journal.os, "fsync", real_fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot-000000000010.bin"]
    assert journal.read_snapshot(tmp_path / "snapshot-000000000010.bin", "fp") == b"state at 10"


def test_snapshots_that_fail_are_said_and_lose_nothing(tmp_path: Path) -> None:
    """Every snapshot fails (its temp file's name is taken by a directory): the
    server says so, counts them, goes on, and a restart replays it all."""
    data = tmp_path / "data"
    data.mkdir()
    for n in range(1, 400):
        (data / f"snapshot-{n:012d}.bin.tmp").mkdir()
    cfg = center_with(tmp_path, snapshot_every=EVERY)
    srv = ServerProcess(cfg, data).start()
    try:
        before = _live_day(srv)
        health = _health(srv)
        assert health["snapshots"] == 0
        status, metrics = srv.get("/metrics")
        assert status == 200
        found = re.search(r"^agner_snapshot_errors_total (\d+)$", metrics, flags=re.M)
        assert found is not None
        errors = int(found.group(1))
        assert errors >= 3
    finally:
        srv.kill()
    for d in data.glob("snapshot-*.bin.tmp"):
        d.rmdir()
    again = ServerProcess(cfg, data).start()
    try:
        assert _health(again)["snapshot"] == 0
        assert _view(again) == before
    finally:
        again.kill()


def test_a_sigkill_while_a_large_snapshot_is_written_loses_nothing(tmp_path: Path) -> None:
    """10,000 agents (a snapshot of megabytes) and a snapshot after every batch:
    a SIGKILL right after an acknowledged input lands while the snapshot that
    batch began is being written; the restart uses the one before and the
    journal after it. Tried up to five times, until the kill lands inside."""
    bench = ROOT / "bench" / "center10k.toml"
    cfg = tmp_path / "center10k.toml"
    cfg.write_text(bench.read_text().replace("[server]\n", "[server]\nsnapshot_every = 1\n", 1))
    token = "bench-service-token"
    caught = 0
    for attempt in range(5):
        data = tmp_path / f"data{attempt}"
        srv = ServerProcess(cfg, data).start()
        try:
            c = hello(srv, token, switch=True)
            for i in range(1, 21):
                c.send(p.Login(agent=f"g0-{i}"))
                c.send(p.Ready(agent=f"g0-{i}"))
            for i in range(30):
                c.send(p.Arrived(f"k{i}", "q0", ref=i + 1))
            _drain(c)
            while _health(srv)["writing_snapshot"]:
                time.sleep(0.01)
            c.send(p.NotReady(agent="g0-20", reason=2, ref=99))  # begins a snapshot
            while True:
                m = c.recv()
                if isinstance(m, p.Ok) and m.ref == 99:
                    break
            srv.kill()
        finally:
            if srv.alive():
                srv.kill()
        last = int(_files(data, "journal")[-1].stem.split("-")[1])
        if not snapshot_exists(data, last):
            caught += 1
        again = ServerProcess(cfg, data).start()
        try:
            q, a = _bench_view(again, token)
            assert q["q0"] == [f"k{i}" for i in range(20, 30)]  # 20 rang, 10 wait
            assert a["g0-20"][0] == "reserved"  # not ready comes after the offer
            assert sum(1 for s, call in a.values() if call is not None) == 20
            health = _health(again)
            assert health["inputs"] == health["snapshot"] + health["replayed"] == 71
        finally:
            again.kill()
        if caught:
            break
    assert caught, "the kill never landed while a snapshot was being written"


def snapshot_exists(data: Path, entries: int) -> bool:
    return (data / f"snapshot-{entries:012d}.bin").exists()


def _bench_view(srv: ServerProcess, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    _, queues = srv.get("/v1/queues", token)
    _, agents = srv.get("/v1/agents", token)
    q = {x["name"]: x["waiting_calls"] for x in queues["queues"]}
    a = {x["name"]: (x["state"], x["call_id"]) for x in agents["agents"]}
    return q, a
