"""The pause of one call that builds a pool's order at once (docs/ROUTING.md, "Cost").

A pool that agents join members + 64 times without any contact's choice reading
it goes cold; the next contact dispatched on one of its routes rebuilds its READY
order from its members at once, O(members). This script builds that case at
scale: `--agents` agents, all in the pool of a busy queue and in the pool of a
rare one (a second skill); every agent takes busy-queue contacts until the rare
queue's pool is cold; then one contact arrives on the rare queue. It prints the
time of that `arrive` (the rebuild) and of an ordinary one, per strategy kind
(fifo: LONGEST_IDLE, heap: FEWEST_CONTACTS, bitset: ROUND_ROBIN), through the
Python API.

Also the other such calls: a contact whose `require` the queue has never seen
builds that requirement's pool, checking every agent and ordering the idle ones
(`new_requirement_ms`, LONGEST_IDLE, agents idle in a shuffled order); and on
the extended center of the router benchmark (sim/routerbench.py: queues with
three or four requirement steps, a pool per step) the first chat of a voice
queue builds the queue's chat pools (`new_channel_ms`: the first pools made
after the agents, so it also lays the membership array out with room), its
first e-mail the e-mail ones (`next_channel_ms`), and a new `require` on it a
pool per step (`new_step_requirement_ms`), every agent idle.

    python bench/warm_pause.py [--agents N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from agner import Router, Strategy

KINDS = (Strategy.LONGEST_IDLE, Strategy.FEWEST_CONTACTS, Strategy.ROUND_ROBIN)


def warm_pause(strategy: Strategy, agents: int, rounds: int = 3) -> dict[str, float]:
    """Milliseconds of the arrive that warms the cold pool, and of an ordinary one."""
    r = Router(seed=1)
    busy = r.add_queue(strategy=strategy, ring_timeout_us=0)
    rare = r.add_queue(strategy=strategy, ring_timeout_us=0, require={1: 1})
    for _ in range(agents):
        r.add_agent({0: 1, 1: 1}, wrap_up_us=0)
    for a in range(agents):
        r.login(a, 0)
        r.set_ready(a, 0)
    t = 0
    # Every agent leaves and rejoins its pools `rounds` times: more than the
    # members + 64 unread pushes after which the rare queue's pool goes cold.
    for _ in range(rounds * agents):
        t += 1
        c = r.arrive(busy, t)
        agent = r.take_decisions()[0].agent
        r.accept(agent, c, t)
        r.complete(agent, c, t)
        r.take_decisions()
    t += 1
    t0 = time.perf_counter_ns()
    r.arrive(rare, t)
    warm = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    r.arrive(busy, t)
    ordinary = time.perf_counter_ns() - t0
    return {"warm_ms": warm / 1e6, "ordinary_ms": ordinary / 1e6}


def new_requirement(agents: int) -> float:
    """Milliseconds of the arrive that builds a new requirement's pool of idle agents."""
    r = Router(seed=1)
    q = r.add_queue(ring_timeout_us=0)
    for a in range(agents):
        r.add_agent({0: 1, 1: 1 + a % 10}, wrap_up_us=0)
    for a in range(agents):
        r.login(a, 0)
    # Idle since times that are not in agent order.
    for t, a in enumerate(sorted(range(agents), key=lambda a: a * 7919 % agents), start=1):
        r.set_ready(a, t)
    t0 = time.perf_counter_ns()
    r.arrive(q, agents + 1, require={1: 1})
    return (time.perf_counter_ns() - t0) / 1e6


def new_step_pools(agents: int) -> dict[str, float]:
    """Milliseconds of the arrives that build a step queue's pools for a new
    channel and for a new requirement, on the extended benchmark center."""
    from agner import Channel
    from agner.sim.routerbench import Workload, build_center, build_router

    w = Workload(agents=agents, extended=True)
    r = build_router(Router, w, build_center(w))
    queue = 1  # a voice queue (chat queues are every tenth from 0)
    t0 = time.perf_counter_ns()
    r.arrive(queue, 1, channel=Channel.CHAT)
    channel = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    r.arrive(queue, 2, channel=Channel.EMAIL)
    again = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    r.arrive(queue, 3, require={49: 1})
    require = time.perf_counter_ns() - t0
    return {
        "new_channel_ms": channel / 1e6,
        "next_channel_ms": again / 1e6,
        "new_step_requirement_ms": require / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100_000, help="agents (default 100000)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.agents < 1:
        ap.error("--agents must be at least 1")
    out: dict[str, Any] = {s.name: warm_pause(s, args.agents) for s in KINDS}
    built = new_requirement(args.agents)
    steps = new_step_pools(args.agents)
    if args.json:
        print(json.dumps({"agents": args.agents, **out, "new_requirement_ms": built, **steps}))
        return 0
    print(f"{args.agents:,} agents in the cold pool")
    for name, f in out.items():
        warm, ordinary = f["warm_ms"], f["ordinary_ms"]
        print(f"  {name:<16} warming arrive {warm:7.3f} ms   ordinary {ordinary:.3f} ms")
    print(f"  a new requirement's pool built by one arrive: {built:.3f} ms")
    print(
        f"  a step queue's pools for a new channel: {steps['new_channel_ms']:.3f} ms, "
        f"the next channel {steps['next_channel_ms']:.3f} ms, "
        f"a new requirement {steps['new_step_requirement_ms']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
