"""pytest-benchmark suites of the routing core (not part of the default test run).

    python -m pytest bench --benchmark-only --benchmark-group-by=group

Each benchmark routes the same workload as ``agner bench router`` (sim/routerbench.py)
and reports the time per run; events per run are in `extra_info`, so that
ns per event = mean / events. `agner bench router --json` prints the ratios
measured in one run, which is what docs/BENCHMARKS.md records.
"""

from __future__ import annotations

from typing import Any

import pytest

from agner import Router
from agner.core.workload import run as run_c
from agner.sim.routerbench import (
    Workload,
    arrival_queues,
    build_center,
    build_router,
    drive_python,
    load_reference,
)


def _setup(agents: int, arrivals: int) -> tuple[Workload, Any, Any]:
    w = Workload(agents=agents)
    center = build_center(w)
    return w, center, arrival_queues(w, center, arrivals)


@pytest.mark.benchmark(group="router-c-level")
@pytest.mark.parametrize("agents", [1_000, 10_000, 100_000])
def test_c_level(benchmark: Any, agents: int) -> None:
    w, center, queues = _setup(agents, 300_000)

    def target(r: Router) -> tuple[int, int, int]:
        return run_c(r, queues, *w.driver_args)

    out = benchmark.pedantic(
        target, setup=lambda: ((build_router(Router, w, center),), {}), rounds=3
    )
    benchmark.extra_info["events"] = out[0]


@pytest.mark.benchmark(group="router-python-api")
@pytest.mark.parametrize("agents", [1_000, 10_000])
def test_python_api(benchmark: Any, agents: int) -> None:
    w, center, queues = _setup(agents, 30_000)
    q = queues.tolist()
    out = benchmark.pedantic(
        lambda r: drive_python(r, q, w),
        setup=lambda: ((build_router(Router, w, center),), {}),
        rounds=3,
    )
    benchmark.extra_info["events"] = out[0]


@pytest.mark.benchmark(group="router-reference")
@pytest.mark.parametrize("agents", [1_000])
def test_reference(benchmark: Any, agents: int) -> None:
    ref = load_reference()
    assert ref is not None, "run from a source checkout: tests/reference_router.py"
    w, center, queues = _setup(agents, 3_000)
    q = queues.tolist()
    out = benchmark.pedantic(
        lambda r: drive_python(r, q, w),
        setup=lambda: ((build_router(ref, w, center),), {}),
        rounds=1,
    )
    benchmark.extra_info["events"] = out[0]
