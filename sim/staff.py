"""Staffing per interval: ``agner staff SCENARIO --target 80/20``.

For each interval of the scenario's day (or the one steady state when it has no
profile), the fewest agents that meet a service-level target:

1. **Erlang, per queue.** Offered load = arrival rate x mean handle time. A
   queue whose callers have a patience distribution is staffed with Erlang A
   (using the patience's mean, which is exact for exponential patience and an
   approximation otherwise), one without with Erlang C. The service level is
   answered within T / offered.
2. **Simulation, for a multi-skill center** (a queue served by several groups,
   or a group serving several queues): Erlang sees neither skills nor sharing,
   so its total is only a start. The agent groups are scaled together, in the
   proportions of the scenario's counts, and the interval is simulated at its
   rates in steady state; the search finds the smallest total for which every
   queue's mean service level over the replications meets the target.

In a center where each queue has its own group (single-skill) of classic
agents, the Erlang figure is the answer and no simulation runs. Multi-channel
groups (``capacity``: an agent holds several chats or e-mails at once) are
always simulated: Erlang counts servers, not agents that are several servers;
the search then starts from Erlang's servers divided by the largest capacity.
The simulated search is as good as its replications: with few calls per
candidate, neighbouring intervals can differ by an agent either way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from agner.config import serves as serves_queue
from agner.sim import erlang
from agner.sim.engine import AgentGroup, Dist, QueueLoad, simulate
from agner.sim.replicate import open_executor
from agner.sim.scenario import (
    Scenario,
    ScenarioError,
    agent_group_of,
    dist_of,
    queue_load_of,
)

__all__ = ["StaffTarget", "parse_target", "staff_scenario"]


@dataclass(frozen=True)
class StaffTarget:
    service_level: float  # fraction, e.g. 0.8
    threshold_s: float  # seconds, e.g. 20


def parse_target(text: str) -> StaffTarget:
    """'80/20' -> 80% answered within 20 s; ValueError on anything else."""
    try:
        pct, secs = text.split("/")
        sl, t = float(pct) / 100, float(secs)
    except ValueError:
        raise ValueError(f"target must look like 80/20 (percent/seconds), got {text!r}") from None
    if not (0 < sl < 1 and t >= 0 and math.isfinite(t)):
        raise ValueError(f"target {text!r}: the percentage must be in (0, 100), seconds >= 0")
    return StaffTarget(sl, t)


def _mean_s(d: Dist) -> float:
    return sum(d.samples) / len(d.samples) if d.kind == "empirical" else d.mean_s


def _rates(rate: float | list[float], n: int) -> list[float]:
    return list(rate) if isinstance(rate, list) else [rate] * n


def _scaled(groups: list[AgentGroup], total: int) -> list[AgentGroup]:
    # Largest remainder, so the counts add up to `total` exactly.
    weights = [g.count for g in groups]
    s = sum(weights)
    raw = [total * w / s for w in weights]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(len(groups)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    # Shifts are dropped (an interval is staffed in steady state); channels kept.
    return [dataclasses.replace(g, count=c, shifts=()) for g, c in zip(groups, counts, strict=True)]


def staff_scenario(
    sc: Scenario,
    target: StaffTarget,
    *,
    replications: int = 3,
    calls: int = 20_000,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Staff every interval of a checked scenario; returns the JSON report.

    The replications of each candidate run where
    :func:`agner.sim.replicate.open_executor` puts them (a process pool, or the
    Dask cluster at `scheduler`).
    """
    with open_executor(replications, workers, scheduler) as ex:
        return _staff(sc, target, replications, calls, ex, progress)


def _simulated_sls(
    args: tuple[list[QueueLoad], list[AgentGroup], int, float, int],
) -> dict[str, float | None]:
    queues, groups, calls, warm, seed = args
    res = simulate(queues, groups, arrivals=calls, warmup_s=warm, seed=seed)
    return {
        name: (float(f["service_level"] or 0) if f["offered"] else None)
        for name, f in res.queues.items()
    }


def _staff(
    sc: Scenario,
    target: StaffTarget,
    replications: int,
    calls: int,
    ex: Executor,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    skill_ids: dict[str, int] = {}
    for g in sc.agent_groups:
        for s in g.skills:
            skill_ids.setdefault(s, len(skill_ids))
    groups = [agent_group_of(g, skill_ids) for g in sc.agent_groups]
    queue_ids = {q.name: i for i, q in enumerate(sc.queues)}
    if any(g.count <= 0 for g in groups):
        raise ScenarioError("agner staff: every agent group needs a count > 0 (its weight)")
    load = {a.queue: a for a in sc.arrivals}
    n_int = max((len(a.rate) for a in sc.arrivals if isinstance(a.rate, list)), default=1)
    serves = {
        q.name: [i for i, g in enumerate(sc.agent_groups) if serves_queue(g.skills, q)]
        for q in sc.queues
    }
    single_skill = all(len(v) == 1 for v in serves.values()) and len(
        {i for v in serves.values() for i in v}
    ) == len(sc.queues)
    intervals = []
    for i in range(n_int):
        per_queue: dict[str, int] = {}
        for q in sc.queues:
            a = load.get(q.name)
            rate = _rates(a.rate, n_int)[i] if a else 0.0
            if not a or rate == 0:
                per_queue[q.name] = 0
                continue
            aht = _mean_s(dist_of(a.handle))
            if a.patience is None:
                n = erlang.staff_erlang_c(
                    rate * aht,
                    aht,
                    service_level=target.service_level,
                    threshold_s=target.threshold_s,
                )
            else:
                n = erlang.staff_erlang_a(
                    rate * aht,
                    aht,
                    _mean_s(dist_of(a.patience)),
                    service_level=target.service_level,
                    threshold_s=target.threshold_s,
                )
            per_queue[q.name] = n
        erlang_total = sum(per_queue.values())
        row: dict[str, Any] = {
            "start_s": i * (sc.interval_s or 0),
            "erlang": per_queue,
            "erlang_total": erlang_total,
        }
        multi = [max(g.capacity.values()) for g in groups if g.capacity is not None]
        if (single_skill and not multi) or erlang_total == 0:
            row["agents"] = erlang_total
            row["groups"] = (
                {groups[serves[q][0]].name: n for q, n in per_queue.items()}
                if single_skill
                else {g.name: 0 for g in groups}
            )
            row["confirmed_by"] = "erlang"
        else:
            queues = []
            for q in sc.queues:
                a = load.get(q.name)
                rate = _rates(a.rate, n_int)[i] if a else 0.0
                queues.append(
                    queue_load_of(
                        q, a, skill_ids, queue_ids, rate=rate, sl_threshold_s=target.threshold_s
                    )
                )
            warm = 20 * max(_mean_s(dist_of(a.handle)) for a in sc.arrivals)

            def meets(total: int, queues: list[QueueLoad] = queues, warm: float = warm) -> bool:
                staffed = _scaled(groups, total)
                jobs = [
                    (queues, staffed, calls, warm, sc.seed + 1000 * r + total)
                    for r in range(replications)
                ]
                sls: dict[str, list[float]] = {q.name: [] for q in queues}
                for run in ex.map(_simulated_sls, jobs):
                    for name, sl in run.items():
                        if sl is not None:
                            sls[name].append(sl)
                return all(sum(v) / len(v) >= target.service_level for v in sls.values() if v)

            n = max(math.ceil(erlang_total / max(multi, default=1)), len(groups))
            if meets(n):
                while n > len(groups) and meets(n - 1):
                    n -= 1
            else:
                step = max(1, n // 20)
                while not meets(n + step):
                    n += step
                    step *= 2
                lo, hi = n, n + step  # lo fails, hi meets
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (lo, mid) if meets(mid) else (mid, hi)
                n = hi
            row["agents"] = n
            row["groups"] = {g.name: g.count for g in _scaled(groups, n)}
            row["confirmed_by"] = "simulation"
        intervals.append(row)
        if progress:
            progress(i + 1, n_int)
    return {
        "target": {
            "service_level": target.service_level,
            "threshold_s": target.threshold_s,
            "definition": "answered within threshold / offered",
        },
        "single_skill": single_skill,
        "interval_s": sc.interval_s,
        "intervals": intervals,
    }
