"""Soak: the two engines on the multi-skill day, many replications, every figure.

Not part of the default run (marker `soak`); run it with

    python -m pytest tests/test_soak.py -m soak -q

Each of the 200 replications per engine is a full working day of
examples/multiskill.toml (intraday profile, shifts, priorities, overlapping
skills). Every reported figure of every queue, and the occupancy of every agent
group, must agree between the fast engine and the SimPy harness within the
combined 95% interval, Bonferroni-corrected over all the checks (a normal
quantile: 200 replications). Results are recorded in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist, mean, stdev

import pytest

from agner.sim.replicate import FIGURES
from agner.sim.scenario import load_scenario, run_scenario
from agner.sim.simpy_harness import run_scenario_simpy

ROOT = Path(__file__).resolve().parent.parent
REPS = 200


@pytest.mark.soak
def test_engines_agree_on_every_figure_of_the_day() -> None:
    sc = load_scenario(ROOT / "examples" / "multiskill.toml")
    fast = [run_scenario(sc, seed=10_000 + i) for i in range(REPS)]
    slow = [run_scenario_simpy(sc, seed=20_000 + i) for i in range(REPS)]
    pairs: list[tuple[str, list[float], list[float]]] = []
    for q in sc.queues:
        for f in FIGURES:
            pairs.append(
                (
                    f"{q.name}.{f}",
                    [float(r.queues[q.name][f] or 0) for r in fast],
                    [float(r.queues[q.name][f] or 0) for r in slow],
                )
            )
    for g in sc.agent_groups:
        pairs.append(
            (
                f"occupancy.{g.name}",
                [float(r.occupancy[g.name] or 0) for r in fast],
                [float(r.occupancy[g.name] or 0) for r in slow],
            )
        )
    z_crit = NormalDist().inv_cdf(1 - 0.05 / (2 * len(pairs)))
    worst = []
    for name, a, b in pairs:
        se = math.sqrt(stdev(a) ** 2 / len(a) + stdev(b) ** 2 / len(b))
        z = (mean(b) - mean(a)) / se if se else 0.0
        worst.append((abs(z), name, mean(a), mean(b)))
        assert abs(z) <= z_crit, f"{name}: fast {mean(a):.5g}, simpy {mean(b):.5g}, z = {z:.2f}"
    worst.sort(reverse=True)
    print(
        f"\n{len(pairs)} figures, |z| <= {z_crit:.2f}; largest: "
        + ", ".join(f"{n} z={z:.2f}" for z, n, _, _ in worst[:3])
    )
