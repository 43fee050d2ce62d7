"""The cost per event of issue 3's routing against the basic routing, in one run.

`agner bench router --config basic|extended` measures one configuration per
command; on a shared machine two commands can run under different loads. This
script runs both configurations of the router benchmark (sim/routerbench.py)
through the C-level API in alternation, round after round, on the same arrivals
for each, and reports per agent count the fastest and the median run of each
configuration and their ratio (fastest extended / fastest basic: the run least
disturbed by anything else on the machine), with the agents' occupancy in each.

Each configuration runs at its default load (sim/routerbench.py: the same
occupancy); `--extended-load 0.95` runs the extended one at the basic one's
arrival rate instead (its agents then idle about three times as much), and
`--basic-load` sets the basic one's.

    python bench/extended_ratio.py [--agents 1000 10000 100000] [--arrivals N]
                                   [--rounds R] [--basic-load L] [--extended-load L]
                                   [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from agner.sim.routerbench import (
    Workload,
    arrival_channels,
    arrival_queues,
    build_center,
    time_c_level,
)


def measure(
    agents: int,
    arrivals: int,
    rounds: int,
    seed: int = 1,
    basic_load: float | None = None,
    extended_load: float | None = None,
) -> dict[str, Any]:
    """ns per event of each configuration, `rounds` runs each, alternating."""
    runs: dict[str, list[float]] = {"basic": [], "extended": []}
    events: dict[str, int] = {}
    occupied: dict[str, float] = {}
    loads: dict[str, float] = {}
    for _ in range(rounds):
        for config in ("basic", "extended"):
            ext = config == "extended"
            w = Workload(
                agents=agents, seed=seed, extended=ext, load=extended_load if ext else basic_load
            )
            center = build_center(w)
            queues = arrival_queues(w, center, arrivals)
            channels = arrival_channels(w, arrivals, queues)
            (n_events, _, _), seconds, occupied[config] = time_c_level(w, center, queues, channels)
            runs[config].append(seconds * 1e9 / n_events)
            events[config] = n_events
            loads[config] = w.arrival_load
    out: dict[str, Any] = {"agents": agents, "arrivals": arrivals, "rounds": rounds}
    for config, ns in runs.items():
        out[config] = {
            "load": loads[config],
            "occupancy": occupied[config],
            "events": events[config],
            "ns_per_event_min": min(ns),
            "ns_per_event_median": statistics.median(ns),
            "ns_per_event_runs": ns,
        }
    out["extended_over_basic"] = min(runs["extended"]) / min(runs["basic"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--arrivals", type=int, default=1_500_000, help="per run (default 1.5e6)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each config (default 3)")
    ap.add_argument(
        "--basic-load",
        type=float,
        help="the basic configuration's arrivals per agent per handle time (default 0.95)",
    )
    ap.add_argument(
        "--extended-load",
        type=float,
        help="the extended configuration's arrivals per agent per handle time "
        "(default: its own, the basic one's occupancy)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.arrivals < 1 or min(args.agents) < 1:
        ap.error("--agents, --arrivals and --rounds must be >= 1")
    for load in (args.basic_load, args.extended_load):
        if load is not None and not 0 < load <= 100:
            ap.error("--basic-load and --extended-load must be in (0, 100]")
    if not args.json:
        print(
            "agents   basic ns/event (min, median) occupancy"
            "   extended ns/event (min, median) occupancy   ratio"
        )
    for n in args.agents:
        res = measure(
            n,
            args.arrivals,
            args.rounds,
            basic_load=args.basic_load,
            extended_load=args.extended_load,
        )
        if args.json:
            print(json.dumps(res))
            continue
        b, e = res["basic"], res["extended"]
        print(
            f"{n:>7,}   {b['ns_per_event_min']:>8.1f} {b['ns_per_event_median']:>8.1f}"
            f"     {100 * b['occupancy']:>5.1f}%"
            f"            {e['ns_per_event_min']:>8.1f} {e['ns_per_event_median']:>8.1f}"
            f"     {100 * e['occupancy']:>5.1f}%   {res['extended_over_basic']:.2f}x"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
