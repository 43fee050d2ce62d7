"""Where arrival-to-assignment latency goes: before, in and after the server.

    python bench/serve_split.py [--duration 20] [--rate 2000] [--json]

Runs `agner serve bench/center10k.toml` and `agner load` as serve_bench.py
does, with timestamps on both sides of the loopback for every call (both
processes read CLOCK_MONOTONIC through ``time.perf_counter``, one clock on
Linux):

- **to server**: from the load generator's ``arrived`` to the server's event
  loop starting to read it (the server's loop busy or not scheduled, loopback);
- **in server**: from there to the end of that read's handling, the
  ``connect`` written to the socket (decoding, the core, the journal write, the
  socket write);
- **back**: from there to the load generator reading the ``connect`` (its loop
  busy or not scheduled);
- **in server, on CPU**: the server thread's CPU time during "in server" (the
  rest of "in server" it waited: for a core, or for the GIL).

For the percentiles of each part, and the mean of each part over the slowest
1% of calls. The timestamps wrap the server's and the load generator's
methods in this process and in the server's (a few microseconds per message).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "center10k.toml"


def _server(data: str) -> None:
    """The server with a timestamp pair per arrival, written to DATA/split.txt."""
    import agner.server as srv
    from agner.config import load_server_config
    from agner.protocol import Arrived

    rows: list[tuple[str, float, float, float]] = []
    batch: list[str] = []
    apply = srv.Server._apply
    received = srv.TcpSession.data_received

    def _apply(self: srv.Server, session: Any, msg: Any) -> None:
        if isinstance(msg, Arrived):
            batch.append(msg.call_id)
        apply(self, session, msg)

    def data_received(self: srv.TcpSession, data: bytes) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        received(self, data)
        t1, c1 = time.perf_counter(), time.thread_time()
        for call in batch:
            rows.append((call, t0, t1, c1 - c0))
        batch.clear()

    srv.Server._apply = _apply  # type: ignore[method-assign]
    srv.TcpSession.data_received = data_received  # type: ignore[method-assign]
    cfg = load_server_config(CONFIG)
    srv.run(cfg, http=None, tcp="127.0.0.1:0", data_dir=Path(data))
    with open(Path(data) / "split.txt", "w") as f:
        f.writelines(f"{c} {a:.7f} {b:.7f} {cpu:.7f}\n" for c, a, b, cpu in rows)


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--server", metavar="DATA", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.server:
        _server(args.server)
        return 0

    import agner.load as load
    from agner.protocol import Arrived, Connect

    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    send, received = load.WireClient.send, load.WireClient.data_received

    def _send(self: load.WireClient, msg: Any) -> None:
        if isinstance(msg, Arrived):
            sent[msg.call_id] = time.perf_counter()
        send(self, msg)

    def _received(self: load.WireClient, data: bytes) -> None:
        t = time.perf_counter()
        handler = self.on_message

        def stamp(m: Any) -> None:
            if isinstance(m, Connect):
                got[m.call_id] = t
            handler(m)

        self.on_message = stamp
        try:
            received(self, data)
        finally:
            self.on_message = handler

    load.WireClient.send = _send  # type: ignore[method-assign]
    load.WireClient.data_received = _received  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--server", tmp], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        address = ""
        while not address:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the server did not start")
            if line.startswith("tcp "):
                address = line.split()[1]
        before = [round(x, 2) for x in os.getloadavg()]
        result = load.run_load(str(CONFIG), address, rate=args.rate, duration_s=args.duration)
        after = [round(x, 2) for x in os.getloadavg()]
        proc.terminate()
        proc.wait(60)
        at_server = {}
        for line in (Path(tmp) / "split.txt").read_text().splitlines():
            call, a, b, cpu = line.split()
            at_server[call] = (float(a), float(b), float(cpu))
    rows = []
    for c, t0 in sent.items():
        if c in got and c in at_server:
            t_in, t_out, cpu = at_server[c]
            rows.append((got[c] - t0, t_in - t0, t_out - t_in, got[c] - t_out, cpu))
    rows.sort()
    n = len(rows)
    slowest = rows[int(n * 0.99) :]
    parts = ("to_server", "in_server", "back", "in_server_cpu")
    out: dict[str, Any] = {
        "rate": args.rate,
        "calls": n,
        "load_average": [before, after],
        "total": {p: _pct([r[0] for r in rows], q) for p, q in (("p50_ms", 50), ("p99_ms", 99))},
        "slowest_1pct_mean_ms": {
            k: 1000 * sum(r[i + 1] for r in slowest) / len(slowest) for i, k in enumerate(parts)
        },
        "load_p99_ms": result["p99_ms"],
    }
    for i, k in enumerate(parts):
        v = sorted(r[i + 1] for r in rows)
        out[k] = {"p50_ms": _pct(v, 50), "p99_ms": _pct(v, 99)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"{n:,} calls at {args.rate:g}/s, load average {before} -> {after}: "
        f"p50 {out['total']['p50_ms']:.3f} ms, p99 {out['total']['p99_ms']:.3f} ms"
    )
    for k in parts:
        print(f"  {k:13}: p50 {out[k]['p50_ms']:.3f} ms, p99 {out[k]['p99_ms']:.3f} ms")
    s = out["slowest_1pct_mean_ms"]
    print(
        f"  the slowest 1%, mean of each part: to server {s['to_server']:.3f} ms, "
        f"in server {s['in_server']:.3f} ms (on CPU {s['in_server_cpu']:.3f} ms), "
        f"back {s['back']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
