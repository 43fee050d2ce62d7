"""Replications of a scenario, run through a concurrent.futures executor, and the
report ``agner simulate`` prints.

Replication i runs with seed ``seed + i``. With R > 1 every figure is the mean of
the replications and carries ``<name>_ci95``: the half-width of its 95%
confidence interval (Student t with R - 1 degrees of freedom).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from statistics import mean, stdev
from typing import Any

from agner.sim.engine import SimResult
from agner.sim.scenario import Scenario, run_scenario

__all__ = ["FIGURES", "format_report", "open_executor", "simulate_replications", "t975"]

#: The figures reported per queue and overall, in order.
FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "overflowed",
    "voicemail",
    "rejected",
    "timed_out",
    "callbacks",
    "p_wait",
    "p_abandon",
    "asa_s",
    "mean_wait_s",
    "service_level",
    "service_level_answered",
    "occupancy",
)

# Student t, 97.5% quantile, by degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _one(args: tuple[Scenario, int | None, float | None, int, str | None, str]) -> SimResult:
    sc, calls, duration_s, seed, records, engine = args
    if engine == "simpy":
        from agner.sim.simpy_harness import run_scenario_simpy

        return run_scenario_simpy(sc, calls=calls, duration_s=duration_s, seed=seed)
    return run_scenario(sc, calls=calls, duration_s=duration_s, seed=seed, records=records)


def _combine(
    rows: Sequence[Mapping[str, float | int | None]], keys: Sequence[str] = FIGURES
) -> dict[str, float | int | None]:
    if len(rows) == 1:  # one run: its own figures, counts as ints
        return {key: rows[0].get(key) for key in keys}
    out: dict[str, float | int | None] = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        if any(v is None for v in values):
            out[key] = None
            out[f"{key}_ci95"] = None
            continue
        xs = [float(v) for v in values if v is not None]
        out[key] = mean(xs)
        out[f"{key}_ci95"] = t975(len(xs) - 1) * stdev(xs) / math.sqrt(len(xs))
    return out


class _InProcess(Executor):
    """Runs each call at once, here: one worker, or nothing worth a pool."""

    def map(self, fn: Callable[..., Any], *iterables: Any, **_: Any) -> Iterator[Any]:
        return map(fn, *iterables)


@contextmanager
def open_executor(
    jobs: int, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Executor]:
    """Where independent simulations run: the Dask cluster at `scheduler`
    (``tcp://host:port``; needs the ``distributed`` package and agner on the
    workers), else a process pool of `workers` processes (default one per CPU,
    at most `jobs`), else, for one job or one worker, this process.

    Raises:
        ValueError: the scheduler cannot be reached, or distributed is missing.
    """
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs Dask: pip install distributed") from None
        try:
            client = Client(scheduler, timeout=3)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client.get_executor()  # type: ignore[no-untyped-call]
        return
    n = min(jobs, workers or os.cpu_count() or 1)
    if n <= 1:
        yield _InProcess()
        return
    with ProcessPoolExecutor(max_workers=n) as pool:
        yield pool


def simulate_replications(
    sc: Scenario,
    *,
    replications: int = 1,
    calls: int | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    scheduler: str | None = None,
    progress: Callable[[float], None] | None = None,
    records: str | None = None,
    engine: str = "fast",
) -> dict[str, Any]:
    """Run `replications` of a checked scenario and return the JSON report.

    With `records` (one replication only), one CSV row per contact is written
    to that file. `engine`: ``fast`` (core/loop.pyx) or ``simpy`` (the SimPy
    harness driving the same router; no records).

    Replications run in `executor` if given, else where :func:`open_executor`
    puts them. `progress`, if given, is called with the share done (0 to 1).

    Raises:
        ValueError: R < 1, or the scheduler cannot be reached.
    """
    if replications < 1:
        raise ValueError("replications must be >= 1")
    if engine not in ("fast", "simpy"):
        raise ValueError(f"unknown engine {engine!r}")
    if records is not None and replications != 1:
        raise ValueError("per-call records are written for one replication only")
    if records is not None and engine != "fast":
        raise ValueError("per-call records (--records) come from the fast engine only")
    base = sc.seed if seed is None else seed
    jobs = [(sc, calls, duration_s, base + i, records, engine) for i in range(replications)]
    start = time.perf_counter()
    results: list[SimResult] = []
    with (
        nullcontext(executor)
        if executor is not None
        else open_executor(replications, workers, scheduler)
    ) as ex:
        if replications == 1 and isinstance(ex, _InProcess) and engine == "fast":
            # One run here: report its progress from inside it.
            sc1, calls1, duration1, seed1, records1, _ = jobs[0]
            results.append(
                run_scenario(
                    sc1,
                    calls=calls1,
                    duration_s=duration1,
                    seed=seed1,
                    records=records1,
                    progress=progress,
                )
            )
        else:
            for res in ex.map(_one, jobs):
                results.append(res)
                if progress:
                    progress(len(results) / replications)
    wall = time.perf_counter() - start
    queues = {name: _combine([r.queues[name] for r in results]) for name in results[0].queues}
    overall = _combine([r.overall for r in results])
    per_group = ("occupancy", "contacts_held")
    groups = {
        name: _combine(
            [
                {"occupancy": r.occupancy[name], "contacts_held": r.contacts_held[name]}
                for r in results
            ],
            per_group,
        )
        for name in results[0].occupancy
        if name != "overall"
    }
    overall.update(
        _combine(
            [{"contacts_held": r.contacts_held["overall"]} for r in results], ("contacts_held",)
        )
    )
    for g in sc.agent_groups:  # the table shows contacts held when they differ from occupancy
        groups[g.name]["multi_channel"] = g.capacity is not None
    intervals = [
        {
            "start_s": first["start_s"],
            "queues": {
                name: _combine([r.intervals[i]["queues"][name] for r in results])
                for name in first["queues"]
            },
            "overall": _combine([r.intervals[i]["overall"] for r in results]),
        }
        for i, first in enumerate(results[0].intervals)
    ]
    total_calls = sum(r.arrivals for r in results)
    return {
        "replications": replications,
        "seed": base,
        "queues": queues,
        "overall": overall,
        "agent_groups": groups,
        "intervals": intervals,
        "simulated_s": mean(r.simulated_s for r in results),
        "calls": total_calls,
        "calls_per_second": total_calls / sum(r.wall_s for r in results),
        "wall_s": wall,
    }


def _cell(report: Mapping[str, Any], key: str, pct: bool, digits: int = 1) -> str:
    v = report.get(key)
    if v is None:
        return "-"
    text = f"{100 * v:.1f}%" if pct else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
    ci = report.get(f"{key}_ci95")
    if ci is not None:
        text += f" ±{100 * ci:.1f}" if pct else f" ±{ci:.{digits}f}"
    return text


def format_report(report: Mapping[str, Any]) -> str:
    """The table ``agner simulate`` prints."""
    cols = [
        ("offered", "offered", False),
        ("answered", "answered", False),
        ("abandoned", "abandoned", False),
        ("p_abandon", "abandon", True),
        ("asa_s", "ASA s", False),
        ("service_level", "SL/offered", True),
        ("service_level_answered", "SL/answered", True),
    ]
    rows = [("queue", *(title for _, title, _ in cols))]
    for name, q in [*report["queues"].items(), ("overall", report["overall"])]:
        rows.append((name, *(_cell(q, key, pct) for key, _, pct in cols)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    if report.get("intervals"):
        lines.append("")
        lines.append("per interval (all queues): start  offered  abandon  SL/offered")
        for iv in report["intervals"]:
            o = iv["overall"]
            h, m = divmod(int(iv["start_s"]) // 60, 60)
            lines.append(
                f"  {h:02d}:{m:02d}  {_cell(o, 'offered', False):>10}  "
                f"{_cell(o, 'p_abandon', True):>10}  {_cell(o, 'service_level', True):>12}"
            )
    lines.append("")
    lines.append(
        "occupancy: "
        + ", ".join(
            f"{name} {_cell(g, 'occupancy', True)}" for name, g in report["agent_groups"].items()
        )
        + f"; overall {_cell(report['overall'], 'occupancy', True)}"
    )
    if any(g.get("multi_channel") for g in report["agent_groups"].values()):
        lines.append(
            "contacts held per agent: "
            + ", ".join(
                f"{name} {_cell(g, 'contacts_held', False, 2)}"
                for name, g in report["agent_groups"].items()
            )
        )
    r = report["replications"]
    lines.append(
        f"{report['calls']:,} calls in {r} replication{'s' if r > 1 else ''} "
        f"({report['simulated_s'] / 3600:.1f} simulated h each), "
        f"{report['calls_per_second']:,.0f} calls/s per process, {report['wall_s']:.2f} s"
        + (" (± : 95% confidence half-width)" if r > 1 else "")
    )
    return "\n".join(lines)
