"""The server's figures in one run: throughput, arrival-to-assignment latency, memory.

    python bench/serve_bench.py [--duration 60] [--throughput-rate 8000] [--floor] [--pin] [--json]

Starts `agner serve bench/center10k.toml` (10,000 agents, 10 queues) on
127.0.0.1 in a temporary data directory and drives it with `agner load` over
loopback (the load generator runs in this process, on the other core):

1. latency: 2,000 calls per second for --duration seconds, every agent logged in;
2. throughput: --throughput-rate calls per second for 10 s (about three events
   per call: arrived, answered, hung up), with short handle times;

and samples the server's resident memory (VmRSS) every 5 s during the first,
and the server's CPU time during the second (events per CPU second: what one
core carries, whatever else shares the machine; logins and logouts included).

With --floor, the latency run is first made against a stub server (this
script with --stub: it answers every ``arrived`` with a ``connect`` at once,
no routing, no journal): the floor that the load generator, the two event
loops, loopback and the machine's other jobs give on their own. The load
averages before and after each run are printed with it.

With --pin the server (and the stub) run on CPU 0 and the load generator on
CPU 1. Unpinned, the kernel often wakes the load generator on the server's
CPU when the server writes to it (a sync wake-up on loopback) while the other
CPU idles, and the server waits for it; pinned, each has its own core (other
jobs still share both).
Targets (docs/BENCHMARKS.md): >= 20,000 events/s; p99 < 2 ms at 2,000 calls/s
with 10,000 agents; memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agner.load import run_load

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "center10k.toml"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(data: Path | None, cpu: int | None = None) -> tuple[subprocess.Popen[str], str]:
    if data is None:
        cmd = [sys.executable, __file__, "--stub"]
    else:
        cmd = [sys.executable, "-m", "agner.cli", "serve", str(CONFIG), "--tcp", "127.0.0.1:0"]
        cmd += ["--data", str(data)]
    pin = None if cpu is None else lambda: os.sched_setaffinity(0, {cpu})
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy(), preexec_fn=pin
    )
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server did not start")
        if line.startswith("tcp "):
            return proc, line.split()[1]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _stub() -> None:
    """A stub server for the floor: ``connect`` for every ``arrived`` at once."""
    import asyncio

    import msgspec
    import uvloop

    from agner.protocol import Arrived, ClientMessage, Connect, Hello, Ping, Pong, Welcome

    decoder = msgspec.msgpack.Decoder(ClientMessage)
    encoder = msgspec.msgpack.Encoder()

    class Stub(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = bytearray()

        def data_received(self, data: bytes) -> None:
            buf = self.buf
            buf += data
            pos, out = 0, []
            while len(buf) - pos >= 4:
                n = int.from_bytes(buf[pos : pos + 4], "big")
                if len(buf) - pos - 4 < n:
                    break
                m = decoder.decode(bytes(buf[pos + 4 : pos + 4 + n]))
                pos += 4 + n
                reply: Any = None
                if isinstance(m, Arrived):
                    reply = Connect(m.call_id, "stub", m.queue, "voice", None)
                elif isinstance(m, Hello):
                    reply = Welcome(1, "bench", None, 0, m.ref)
                elif isinstance(m, Ping):
                    reply = Pong(0, m.ref)
                if reply is not None:
                    body = encoder.encode(reply)
                    out.append(len(body).to_bytes(4, "big") + body)
            del buf[:pos]
            if out:
                self.transport.write(b"".join(out))

    async def run() -> None:
        srv = await asyncio.get_running_loop().create_server(Stub, "127.0.0.1", 0)
        host, port = srv.sockets[0].getsockname()[:2]
        print(f"tcp {host}:{port}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(run())


def _loads() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="latency run, seconds")
    ap.add_argument("--throughput-rate", type=float, default=8000.0, help="calls per second")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--floor", action="store_true", help="first the same load against a stub")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the server (or stub) on CPU 0, the load generator on CPU 1",
    )
    ap.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stub:
        _stub()
        return 0
    out: dict[str, Any] = {"cpu": _cpu(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    server_cpu = None
    if args.pin:
        server_cpu = 0
        os.sched_setaffinity(0, {1})
        out["pinned"] = {"server": 0, "load_generator": 1}
    if args.floor:
        stub, address = _start(None, server_cpu)
        try:
            before = _loads()
            out["floor"] = run_load(str(CONFIG), address, rate=2000, duration_s=args.duration)
            out["floor"]["load_average"] = [before, _loads()]
        finally:
            stub.kill()
            stub.wait(30)
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = _start(Path(tmp), server_cpu)
        try:
            samples: list[tuple[float, int]] = []
            done = threading.Event()

            def sample() -> None:
                t0 = time.monotonic()
                while not done.wait(5.0):
                    samples.append((round(time.monotonic() - t0), _rss_kib(proc.pid)))

            thread = threading.Thread(target=sample, daemon=True)
            rss_start = _rss_kib(proc.pid)
            thread.start()
            before = _loads()
            out["latency"] = run_load(str(CONFIG), address, rate=2000, duration_s=args.duration)
            out["latency"]["load_average"] = [before, _loads()]
            done.set()
            thread.join()
            out["memory_kib"] = {"start": rss_start, "samples": samples}
            cpu0 = _cpu_s(proc.pid)
            out["throughput"] = run_load(
                str(CONFIG), address, rate=args.throughput_rate, duration_s=10, handle_s=0.2
            )
            # The server's own CPU time per event: what one core can carry, whatever
            # else shares the machine (the load generator, other jobs).
            cpu = _cpu_s(proc.pid) - cpu0
            events = out["throughput"]["events"] + 4 * out["throughput"]["agents"]
            out["server_cpu_s"] = cpu
            out["server_events_per_cpu_second"] = events / cpu
        finally:
            proc.terminate()
            proc.wait(30)
    if args.json:
        print(json.dumps(out))
        return 0
    lat, thr = out["latency"], out["throughput"]
    print(f"agner serve benchmark ({out['cpu']}, {out['cpus']} CPUs, Python {out['python']})")
    print(
        f"  throughput: {thr['events_per_second']:,.0f} events/s offered at "
        f"{thr['rate']:g} calls/s; {thr['assigned']:,} of {thr['arrivals']:,} assigned, "
        f"{thr['errors']} errors, p99 {thr['p99_ms']:.2f} ms"
    )
    print(
        f"  latency at {lat['rate']:g} calls/s, {lat['agents']:,} agents: p50 "
        f"{lat['p50_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, "
        f"p99.9 {lat['p999_ms']:.3f} ms, max {lat['max_ms']:.3f} ms"
    )
    print(
        f"  server CPU: {out['server_cpu_s']:.2f} s for the throughput run, "
        f"{out['server_events_per_cpu_second']:,.0f} events per CPU second"
    )
    if "floor" in out:
        fl = out["floor"]
        print(
            f"  floor (a stub that connects at once) at {fl['rate']:g} calls/s: p50 "
            f"{fl['p50_ms']:.3f} ms, p90 {fl['p90_ms']:.3f} ms, p99 {fl['p99_ms']:.3f} ms, "
            f"p99.9 {fl['p999_ms']:.3f} ms; load average {fl['load_average']}"
        )
    print(f"  load average before and after the latency run: {lat['load_average']}")
    if args.pin:
        print("  pinned: the server on CPU 0, the load generator on CPU 1")
    rss = [kib for _, kib in out["memory_kib"]["samples"]]
    if rss:
        print(
            f"  server memory (VmRSS): {out['memory_kib']['start'] / 1024:.0f} MiB at start, "
            f"{rss[0] / 1024:.0f} MiB after 5 s, {rss[-1] / 1024:.0f} MiB at the end, "
            f"max {max(rss) / 1024:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
