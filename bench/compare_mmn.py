"""M/M/380+M by agner's simulator and by an idiomatic SimPy model, in one run.

    python bench/compare_mmn.py [--calls N] [--simpy-calls N] [--ciw-calls N]

Poisson arrivals 2 per second, exponential handle time with mean 180 s,
exponential patience with mean 120 s, 380 agents, longest idle (the router's
default). agner routes every call through the real router (core/loop.pyx);
the SimPy model is the textbook one (a Resource, callers that give up with
`request | timeout`); the Ciw model is Ciw's own M/M/c with reneging (Ciw is a
benchmark-only dependency: pip install ciw). All are printed beside Erlang A,
with simulated calls per second and the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from agner.sim.engine import AgentGroup, Dist, QueueLoad, simulate
from agner.sim.erlang import erlang_a

RATE, AHT, PATIENCE, AGENTS, T = 2.0, 180.0, 120.0, 380, 20.0


def run_agner(calls: int, seed: int) -> dict[str, Any]:
    res = simulate(
        [QueueLoad("q", RATE, Dist("exponential", AHT), Dist("exponential", PATIENCE))],
        [AgentGroup("agents", AGENTS, {})],
        arrivals=calls,
        warmup_s=3600,
        seed=seed,
    )
    o = res.overall
    return {
        "calls_per_second": res.calls_per_second,
        "p_abandon": o["p_abandon"],
        "asa_s": o["asa_s"],
        "service_level": o["service_level"],
    }


def run_simpy(calls: int, seed: int) -> dict[str, Any]:
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=AGENTS)
    warmup = 3600.0
    stats = {"offered": 0, "answered": 0, "abandoned": 0, "within": 0, "wait": 0.0}

    def caller(env: simpy.Environment) -> Any:
        arrived = env.now
        counted = arrived >= warmup
        with agents.request() as req:
            gave_up = env.timeout(rng.expovariate(1 / PATIENCE))
            got = yield req | gave_up
            if req in got:
                wait = env.now - arrived
                if counted:
                    stats["answered"] += 1
                    stats["wait"] += wait
                    stats["within"] += wait <= T
                yield env.timeout(rng.expovariate(1 / AHT))
            elif counted:
                stats["abandoned"] += 1

    def source(env: simpy.Environment) -> Any:
        while stats["offered"] < calls:
            yield env.timeout(rng.expovariate(RATE))
            if env.now >= warmup:
                stats["offered"] += 1
            env.process(caller(env))

    env.process(source(env))
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    total = stats["offered"]  # as for agner: calls after the warm-up, over the whole run's time
    return {
        "calls_per_second": calls / wall,
        "p_abandon": stats["abandoned"] / total,
        "asa_s": stats["wait"] / stats["answered"],
        "service_level": stats["within"] / total,
    }


def run_ciw(calls: int, seed: int) -> dict[str, Any]:
    try:
        import ciw
    except ImportError:
        return {"error": "Ciw is not installed (pip install ciw)"}
    warmup = 3600.0
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=RATE)],
        service_distributions=[ciw.dists.Exponential(rate=1 / AHT)],
        number_of_servers=[AGENTS],
        reneging_time_distributions=[ciw.dists.Exponential(rate=1 / PATIENCE)],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    t0 = time.perf_counter()
    sim.simulate_until_max_time(warmup + calls / RATE)
    wall = time.perf_counter() - t0
    recs = [r for r in sim.get_all_records() if r.arrival_date >= warmup]
    served = [r for r in recs if r.record_type == "service"]
    reneged = sum(r.record_type == "renege" for r in recs)
    total = len(recs)  # finished calls; those still in the system at the end are not in it
    return {
        "calls_per_second": total / wall,
        "p_abandon": reneged / total,
        "asa_s": sum(r.waiting_time for r in served) / len(served),
        "service_level": sum(r.waiting_time <= T for r in served) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4_000_000, help="agner's calls")
    parser.add_argument("--simpy-calls", type=int, default=200_000, help="SimPy's calls")
    parser.add_argument("--ciw-calls", type=int, default=50_000, help="Ciw's calls")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    theory = erlang_a(AGENTS, RATE * AHT, AHT, PATIENCE, T)
    agner = run_agner(args.calls, args.seed)
    simpy_ = run_simpy(args.simpy_calls, args.seed)
    ciw_ = run_ciw(args.ciw_calls, args.seed)
    print(
        json.dumps(
            {
                "model": "M/M/380+M, 2 calls/s, AHT 180 s, patience 120 s",
                "erlang_a": {
                    "p_abandon": theory.p_abandon,
                    "asa_s": theory.asa_s,
                    "service_level": theory.service_level,
                },
                "agner": {"calls": args.calls, **agner},
                "simpy": {"calls": args.simpy_calls, **simpy_},
                "ciw": {"calls": args.ciw_calls, **ciw_},
                "agner_over_simpy": agner["calls_per_second"] / simpy_["calls_per_second"],
                "agner_over_ciw": (
                    agner["calls_per_second"] / ciw_["calls_per_second"]
                    if "calls_per_second" in ciw_
                    else None
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
