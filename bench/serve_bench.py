"""The server's figures in one run: throughput, arrival-to-assignment latency, memory.

    python bench/serve_bench.py [--duration 60] [--throughput-rate 8000] [--json]

Starts `agner serve bench/center10k.toml` (10,000 agents, 10 queues) on
127.0.0.1 in a temporary data directory and drives it with `agner load` over
loopback (the load generator runs in this process, on the other core):

1. latency: 2,000 calls per second for --duration seconds, every agent logged in;
2. throughput: --throughput-rate calls per second for 10 s (about three events
   per call: arrived, answered, hung up), with short handle times;

and samples the server's resident memory (VmRSS) every 5 s during the first,
and the server's CPU time during the second (events per CPU second: what one
core carries, whatever else shares the machine; logins and logouts included).
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


def _start(data: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "agner.cli", "serve", str(CONFIG), "--tcp", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*cmd, "--data", str(data)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="latency run, seconds")
    ap.add_argument("--throughput-rate", type=float, default=8000.0, help="calls per second")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"cpu": _cpu(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = _start(Path(tmp))
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
            out["latency"] = run_load(str(CONFIG), address, rate=2000, duration_s=args.duration)
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
