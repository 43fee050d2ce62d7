"""Calls per second through sipp caller -> Kamailio -> agner -> sipp agent, and
the time agner adds to call setup.

    python bench/sip_bench.py --rate 1000 --duration 20 [--agents 400] \
        [--anonymous | --echo | --in-server]

Starts, on free loopback ports, Kamailio with adapters/kamailio.cfg (-m 1024,
-b --buffers), one sipp process answering for every agent
(adapters/sipp/agent_answer.xml), `agner serve` (a center of --agents agents,
wrap-up 0), the Kamailio adapter in this process (uvloop) or, with
--in-server, inside `agner serve` (an [[adapters]] table), and a sipp caller
(adapters/sipp/caller.xml, each call held --hold-ms then hung up) at --rate
calls per second; both sipp with -buff_size --buffers. Then it runs the same
caller once more against Kamailio relaying straight to the agent (BYPASS_URI,
no agner). Reported: calls attempted, answered and failed, sipp's
retransmissions and the UDP datagrams the kernel dropped for full receive
buffers (machine-wide); the caller's INVITE -> 200 OK time (from the
microsecond timestamps of sipp's message traces) with and without agner, and
their difference, with the seconds of the run that had calls over 50 ms; its
legs (medians): the caller's INVITE -> the agent's INVITE (in) and the
agent's 200 -> the caller's 200 (back), and, with the adapter in this
process, "in" split at the adapter (Kamailio to the adapter, the adapter and
agner, Kamailio to the agent); and the adapter's own share (evapi invite read
-> relay written, which includes the round trip to agner serve). --anonymous
sends agner no caller number, so the server does no CRM look-up per call;
--echo leaves agner out (the adapter relays each call at once): what is left
is Kamailio's evapi round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serve_harness import ACME, ServerProcess  # noqa: E402
from sip_harness import HOST, Kamailio, Sipp, write_center  # noqa: E402

from agner.adapters.kamailio import Call, KamailioAdapter  # noqa: E402


def _day_s() -> float:
    """Now in seconds since local midnight: the clock of sipp's message traces."""
    t = time.time()
    lt = time.localtime(t)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + t % 1


class _Timed(KamailioAdapter):
    """Notes, per call, the times (those of sipp's traces) when the invite
    event was read and when the relay was written."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.wall: dict[str, list[float]] = {}

    def on_event(self, ev: Any) -> None:
        if ev.event == "invite":
            self.wall[ev.call_id] = [_day_s()]
        super().on_event(ev)

    def _relay(self, call: Call, agent: str) -> None:
        super()._relay(call, agent)
        w = self.wall.get(call.call_id)
        if w is not None and len(w) == 1:
            w.append(_day_s())


class _Anonymous(_Timed):
    """Callers without a number: agner gets no customer, so it does no CRM
    look-up (the server's store lookup on a worker thread) before routing."""

    def on_event(self, ev: Any) -> None:
        ev.from_ = ""
        super().on_event(ev)


class _Echo(_Timed):
    """No agner in the loop: every invite is relayed at once to ag-1, so what
    is added is Kamailio's evapi round trip and this event loop alone."""

    def on_event(self, ev: Any) -> None:
        if ev.event == "invite":
            self.wall[ev.call_id] = [_day_s()]
            call = Call(ev.call_id, ev.queue, ev.cseq, ev.tindex, ev.tlabel)
            call.invite_ns = time.monotonic_ns()
            self.calls[ev.call_id] = call
            self._relay(call, "ag-1")
        elif ev.event in ("bye", "cancel", "timeout", "gone"):
            self.calls.pop(ev.call_id, None)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))], 3)


def _stamps(path: Path) -> dict[str, tuple[float, float]]:
    """Call-ID -> (its first INVITE, the first 200 OK to an INVITE), in seconds
    of the day, from the timestamps (microseconds) of a sipp message trace:
    sent by a caller, received by an agent, and the other way round."""
    invite: dict[str, float] = {}
    out: dict[str, tuple[float, float]] = {}
    stamp = 0.0
    first = cid = cseq = ""
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith("-----") and line.rstrip().count(":") == 2:
                if first and cid:
                    ok = first.startswith("SIP/2.0 200") and "INVITE" in cseq
                    if first.startswith("INVITE") and cid not in invite:
                        invite[cid] = stamp
                    elif ok and cid in invite and cid not in out:
                        out[cid] = (invite[cid], stamp)
                hhmmss = line.split()[-1]
                h, m, sec = hhmmss.split(":")
                stamp = int(h) * 3600 + int(m) * 60 + float(sec)
                first = cid = cseq = ""
            elif not first and (
                line.startswith("SIP/2.0") or (line[:1].isupper() and " sip:" in line)
            ):
                first = line
            elif line.startswith("Call-ID:"):
                cid = line[8:].strip()
            elif line.startswith("CSeq:"):
                cseq = line
    return out


def _rtts(sipp: Sipp) -> dict[str, tuple[float, float]]:
    """Per call, (when its INVITE was sent, s; INVITE sent -> 200 OK (INVITE)
    received, ms), by Call-ID; sipp's own response-time statistics count
    whole milliseconds only."""
    out = {cid: (a, (b - a) * 1000) for cid, (a, b) in _stamps(sipp.messages).items()}
    sipp.messages.unlink()
    return out


def _legs(
    calls: dict[str, tuple[float, float]],
    agent: dict[str, tuple[float, float]],
    wall: dict[str, list[float]] | None = None,
) -> Any:
    """Where the setup time goes, medians in ms: the caller's INVITE sent -> the
    agent's INVITE received (``in``: Kamailio, and agner), and the agent's 200
    sent -> the caller's 200 received (``back``: Kamailio alone). With the
    adapter in this process (``wall``), ``in`` in three: INVITE sent -> the
    adapter read the invite event (``to_adapter``), -> it wrote the relay
    (``adapter``: agner's part), -> the agent received the INVITE
    (``to_agent``: Kamailio resuming the transaction and relaying)."""
    legs: dict[str, list[float]] = {"in": [], "back": []}
    if wall:
        legs |= {"to_adapter": [], "adapter": [], "to_agent": []}
    for cid, (sent, rtt) in calls.items():
        got = agent.get(cid)
        if got is None:
            continue
        legs["in"].append((got[0] - sent) * 1000)
        legs["back"].append((sent + rtt / 1000 - got[1]) * 1000)
        w = (wall or {}).get(cid)
        if w is not None and len(w) == 2:
            legs["to_adapter"].append((w[0] - sent) * 1000)
            legs["adapter"].append((w[1] - w[0]) * 1000)
            legs["to_agent"].append((got[0] - w[1]) * 1000)
    return {k: _pct(v, 50) for k, v in legs.items()}


def _setup(calls: dict[str, tuple[float, float]], slow_ms: float = 50.0) -> dict[str, Any]:
    """Median and p99 of the setup times, and the seconds of the run (from the
    first INVITE) in which calls took longer than ``slow_ms``: stalls show as
    a few seconds with many slow calls, overload as slow calls everywhere."""
    ms = [r for _, r in calls.values()]
    start = min((t for t, _ in calls.values()), default=0.0)
    slow: dict[int, int] = {}
    for t, r in calls.values():
        if r > slow_ms:
            slow[int(t - start)] = slow.get(int(t - start), 0) + 1
    worst = sorted(slow.items(), key=lambda kv: -kv[1])[:5]
    return {
        "median": _pct(ms, 50),
        "p99": _pct(ms, 99),
        "n": len(ms),
        f"over_{slow_ms:g}ms": sum(slow.values()),
        "worst_seconds": [list(kv) for kv in worst],
    }


def _stats(sipp: Sipp) -> dict[str, int]:
    files = list(sipp.messages.parent.glob("caller*_.csv"))
    if not files:
        raise RuntimeError(f"sipp wrote no statistics: {sipp.out.read_text()[-2000:]}")
    with open(files[0]) as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    head, last = rows[0], rows[-1]
    get = dict(zip(head, last, strict=False))
    return {
        "attempted": int(get["TotalCallCreated"]),
        "answered": int(get["SuccessfulCall(C)"]),
        "failed": int(get["FailedCall(C)"]),
        "retransmissions": int(get["Retransmissions(C)"]),
    }


def _udp_drops() -> int:
    """Datagrams the kernel dropped for want of room in a socket's receive
    buffer, machine-wide (/proc/net/snmp, Udp RcvbufErrors)."""
    with open("/proc/net/snmp") as fh:
        rows = [line.split() for line in fh if line.startswith("Udp:")]
    return int(dict(zip(rows[0], rows[1], strict=True))["RcvbufErrors"])


def _caller(tmp: Path, port: int, rate: float, duration: float, hold_ms: int, buffers: int) -> Sipp:
    calls = int(rate * duration)
    return Sipp(
        tmp, "caller", "caller.xml", "-s", "sales", f"{HOST}:{port}",
        "-r", str(int(rate)), "-rp", "1000", "-m", str(calls), "-d", str(hold_ms),
        "-l", str(int(rate * 5) + 100),
        "-trace_stat", "-fd", "1", "-max_socket", "2000", "-buff_size", str(buffers),
    )  # fmt: skip


class _NoAdapter:
    """--in-server: the adapter runs inside `agner serve` ([[adapters]])."""

    def __init__(self) -> None:
        self.latencies: list[int] = []

    async def start(self) -> None:
        pass

    async def wait_up(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    kam = Kamailio(tmp, shm_mb=1024, children=args.children, rcvbuf=args.buffers)
    kam.start()
    agent = Sipp(
        tmp, "agents", "agent_answer.xml", f"{HOST}:{kam.sip_port}",
        "-max_socket", "2000", "-buff_size", str(args.buffers),
    )  # fmt: skip
    agent.start()
    names = [f"ag-{i}" for i in range(1, args.agents + 1)]
    agent_uri = f"sip:{{agent}}@{HOST}:{agent.port}"
    center = write_center(tmp / "center.toml", args.agents, 60, "longest_idle")
    if args.in_server:
        with open(center, "a") as fh:
            fh.write(
                f'\n[[adapters]]\nswitch = "kamailio"\nevapi = "{kam.evapi}"\n'
                f'token = "{ACME}"\nagent_uri = "{agent_uri}"\nlogin = {json.dumps(names)}\n'
            )
    server = ServerProcess(center, tmp)
    server.start()
    adapter: Any
    if args.in_server:
        adapter = _NoAdapter()
    else:
        kind = _Echo if args.echo else _Anonymous if args.anonymous else _Timed
        adapter = kind(
            evapi=kam.evapi, server=server.tcp, token=ACME, agent_uri=agent_uri, login=names
        )
    result: dict[str, Any] = {}
    try:
        await adapter.start()
        await adapter.wait_up()
        await asyncio.sleep(1.0)  # the logins (and, in the server, evapi's connection)
        drops = _udp_drops()
        caller = _caller(
            tmp, kam.sip_port, args.rate, args.duration, args.hold_ms, args.buffers
        ).start()
        t0 = time.monotonic()
        while caller.proc is not None and caller.proc.poll() is None:
            await asyncio.sleep(0.2)
            if time.monotonic() - t0 > args.duration * 3 + 30:
                caller.stop()
        elapsed = time.monotonic() - t0
        result["agner"] = _stats(caller) | {
            "elapsed_s": round(elapsed, 2),
            "udp_drops": _udp_drops() - drops,
        }
        lat = [x / 1e6 for x in adapter.latencies]
        via_agner = _rtts(caller)
        result["agner"]["setup_ms"] = _setup(via_agner)
        result["adapter_ms"] = {"median": _pct(lat, 50), "p99": _pct(lat, 99), "n": len(lat)}
        for f in tmp.glob("caller*_.csv"):
            f.unlink()
    finally:
        await adapter.close()
        kam.stop()
        server.stop()
    # the same load, Kamailio relaying straight to the agent
    direct = Kamailio(tmp, shm_mb=1024, children=args.children, rcvbuf=args.buffers)
    direct.cmd += ["-A", f'BYPASS_URI="sip:ag-1@{HOST}:{agent.port}"']
    direct.start()
    try:
        drops = _udp_drops()
        caller = _caller(
            tmp, direct.sip_port, args.rate, args.duration, args.hold_ms, args.buffers
        ).start()
        caller.wait(args.duration * 3 + 30)
        result["direct"] = _stats(caller) | {"udp_drops": _udp_drops() - drops}
        straight = _rtts(caller)
        result["direct"]["setup_ms"] = _setup(straight)
    finally:
        direct.stop()
        agent.stop()
    at_agent = _stamps(agent.messages)
    result["agner"]["legs_ms"] = _legs(via_agner, at_agent, getattr(adapter, "wall", None))
    result["direct"]["legs_ms"] = _legs(straight, at_agent)
    a, d = result["agner"]["setup_ms"], result["direct"]["setup_ms"]
    result["added_ms"] = {
        "median": round(a["median"] - d["median"], 3),
        "p99": round(a["p99"] - d["p99"], 3),
    }
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="calls per second (1000)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals (20)")
    p.add_argument("--hold-ms", type=int, default=200, help="talk time of each call (200)")
    p.add_argument("--agents", type=int, default=400, help="agents (400)")
    p.add_argument("--children", type=int, default=4, help="Kamailio UDP workers (4)")
    p.add_argument(
        "--buffers",
        type=int,
        default=4 << 20,
        help="UDP socket buffers of Kamailio (-b) and sipp (-buff_size), bytes (4 MiB); "
        "the kernel caps them at net.core.rmem_max / wmem_max",
    )
    p.add_argument(
        "--anonymous",
        action="store_true",
        help="send agner no caller number (no CRM look-up per call), to measure what it costs",
    )
    p.add_argument(
        "--echo",
        action="store_true",
        help="leave agner out: the adapter relays every call to ag-1 at once (the floor "
        "of the evapi round trip)",
    )
    p.add_argument(
        "--in-server",
        action="store_true",
        help="run the adapter inside agner serve ([[adapters]] in its configuration) "
        "instead of in this process over TCP",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.in_server and (args.echo or args.anonymous):
        p.error("--in-server runs the adapter as agner serve does: not with --echo or --anonymous")
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with tempfile.TemporaryDirectory() as d:
        result = runner(_run(args, Path(d)))
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    result["rate"] = args.rate
    result["anonymous"] = args.anonymous
    result["echo"] = args.echo
    result["in_server"] = args.in_server
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    ok = result["agner"]["failed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
