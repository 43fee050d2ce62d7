"""How far the router's estimated wait is from the wait that follows, by simulation.

Each contact that has to wait is given ``Router.estimated_wait_us`` at the moment
it arrives; the SimPy harness (sim/simpy_harness.py, the real router in SimPy's
virtual time) then records the wait it actually had when it is answered. The
centers: M/M/n with no abandonment (where the estimate's assumptions hold), the
same with lognormal talk times, with impatient callers (Erlang A: those who are
answered are the ones who did not give up), and the multi-skill day of
examples/multiskill.toml (steps, priorities, shifts, callbacks).

    python bench/ewt_error.py [--calls N] [--json]

Prints, per center: samples, mean estimate and mean actual wait, mean error
(estimate - actual: positive is pessimistic), mean absolute error, and the share
of estimates within 30 s of the actual wait.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from agner.sim.engine import AgentGroup, Dist, QueueLoad
from agner.sim.scenario import load_scenario, run_arguments
from agner.sim.simpy_harness import SimpyCenter

ROOT = Path(__file__).resolve().parent.parent


def measure(
    queues: list[QueueLoad], groups: list[AgentGroup], calls: int, **kw: Any
) -> dict[str, float | int]:
    center = SimpyCenter(queues, groups, record_ewt=True, **kw)
    center.run(arrivals=calls)
    samples = center.ewt_samples or []
    est = [e / 1e6 for e, _ in samples]
    act = [a / 1e6 for _, a in samples]
    err = [e - a for e, a in zip(est, act, strict=True)]
    return {
        "samples": len(samples),
        "mean_estimate_s": statistics.fmean(est),
        "mean_actual_s": statistics.fmean(act),
        "mean_error_s": statistics.fmean(err),
        "mean_abs_error_s": statistics.fmean(abs(x) for x in err),
        "within_30s": sum(abs(x) <= 30 for x in err) / len(err),
    }


def centers(calls: int) -> dict[str, dict[str, float | int]]:
    exp180 = Dist("exponential", 180.0)
    logn = Dist("lognormal", 180.0, 120.0)
    n = 20
    rate = 0.9 * n / 180.0  # 90% occupancy
    out = {
        "M/M/20 at 90%": measure(
            [QueueLoad("q", rate, exp180)], [AgentGroup("a", n, {})], calls, seed=1, warmup_s=3600
        ),
        "M/G/20 at 90%, lognormal talk": measure(
            [QueueLoad("q", rate, logn)], [AgentGroup("a", n, {})], calls, seed=2, warmup_s=3600
        ),
        "M/M/20+M at 100%, patience 120 s": measure(
            [QueueLoad("q", n / 180.0, exp180, Dist("exponential", 120.0))],
            [AgentGroup("a", n, {})],
            calls,
            seed=3,
            warmup_s=3600,
        ),
    }
    sc = load_scenario(ROOT / "examples" / "multiskill.toml")
    queues, groups, kw = run_arguments(sc, calls, None, None)
    kw.pop("arrivals", None)
    kw.pop("duration_s", None)
    out["examples/multiskill.toml"] = measure(queues, groups, calls, **kw)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000, help="calls per center")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    res = centers(args.calls)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(
        f"{'center':36} {'n':>6} {'est s':>7} {'act s':>7} {'err s':>7} {'|err| s':>8} {'<=30s':>6}"
    )
    for name, r in res.items():
        print(
            f"{name:36} {r['samples']:>6} {r['mean_estimate_s']:>7.1f} {r['mean_actual_s']:>7.1f} "
            f"{r['mean_error_s']:>7.1f} {r['mean_abs_error_s']:>8.1f} {r['within_30s']:>6.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
