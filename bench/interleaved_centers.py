"""What memory alone costs the router: many small centers against one large one.

Issue 2 asks that an event at 100,000 agents cost no more than twice one at
1,000. This script separates the routing work from the memory it touches. It
runs the router benchmark's basic workload (sim/routerbench.py) through the
C-level API in three ways, round after round, all with the same driver
(core/workload.pyx `run_many`, which picks the next center's event at random):

- one center of N agents;
- C separate centers of N agents each, their events interleaved at random:
  every event does the routing work of a center of N agents, but the events
  together touch the memory of C such centers (their agents, contacts, pools);
- one center of C x N agents.

It prints the fastest and the median ns per event of each, and each fastest
run over the first's. If C interleaved centers cost far more per event than
one, the extra cost of the large center is memory, not the routing's
algorithms: the same work costs more when its data is spread wider.

    python bench/interleaved_centers.py [--agents 1000] [--centers 100]
                                        [--arrivals N] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from agner.core.router import Router
from agner.core.workload import run_many
from agner.sim.routerbench import Workload, arrival_queues, build_center, build_router


def run_centers(agents: int, centers: int, arrivals: int) -> tuple[int, float]:
    """Events and seconds of `centers` centers of `agents` agents, `arrivals` each."""
    routers: list[Any] = []
    queues: list[Any] = []
    w = Workload(agents=agents, seed=1)
    for k in range(centers):
        w = Workload(agents=agents, seed=1 + k)
        center = build_center(w)
        queues.append(arrival_queues(w, center, arrivals))
        routers.append(build_router(Router, w, center))
    t0 = time.perf_counter()
    out = run_many(routers, queues, *w.driver_args)
    seconds = time.perf_counter() - t0
    return sum(events for events, _, _ in out), seconds


def measure(agents: int, centers: int, arrivals: int, rounds: int) -> dict[str, Any]:
    """ns per event of each layout, `rounds` runs each, alternating."""
    layouts = {
        "one_small": (agents, 1, arrivals * centers),
        "interleaved_small": (agents, centers, arrivals),
        "one_large": (agents * centers, 1, arrivals * centers),
    }
    runs: dict[str, list[float]] = {name: [] for name in layouts}
    events: dict[str, int] = {}
    for _ in range(rounds):
        for name, (n, c, a) in layouts.items():
            n_events, seconds = run_centers(n, c, a)
            runs[name].append(seconds * 1e9 / n_events)
            events[name] = n_events
    out: dict[str, Any] = {
        "agents": agents,
        "centers": centers,
        "arrivals_per_center": arrivals,
        "rounds": rounds,
    }
    for name, ns in runs.items():
        out[name] = {
            "events": events[name],
            "ns_per_event_min": min(ns),
            "ns_per_event_median": statistics.median(ns),
            "ns_per_event_runs": ns,
            "over_one_small": min(ns) / min(runs["one_small"]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=1000, help="agents of a small center")
    ap.add_argument("--centers", type=int, default=100, help="small centers interleaved")
    ap.add_argument(
        "--arrivals", type=int, default=30_000, help="arrivals per small center (default 30,000)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="runs of each layout (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if min(args.agents, args.centers, args.arrivals, args.rounds) < 1:
        ap.error("--agents, --centers, --arrivals and --rounds must be >= 1")
    res = measure(args.agents, args.centers, args.arrivals, args.rounds)
    if args.json:
        print(json.dumps(res))
        return 0
    n, c = args.agents, args.centers
    names = {
        "one_small": f"one center of {n:,} agents",
        "interleaved_small": f"{c} centers of {n:,} agents, interleaved",
        "one_large": f"one center of {n * c:,} agents",
    }
    print(f"{'layout':<44} {'ns/event (min, median)':>24}   over the first")
    for key, label in names.items():
        r = res[key]
        print(
            f"{label:<44} {r['ns_per_event_min']:>11.1f} {r['ns_per_event_median']:>11.1f}"
            f"   {r['over_one_small']:>6.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
