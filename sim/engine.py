"""The fast simulator: the real router on the Cython event loop of core/loop.pyx.

A center is queues with their load and agent groups; :func:`simulate` routes it
in virtual time and returns the planner's figures. This is the engine of
``agner simulate`` (issue 4); the scenario file format and the command line are
built on it.

Definitions used in the results (contacts that arrive after the warm-up):

- figures are per queue the contact *arrived in* (the queue the caller called),
  even when the router later moves it to another queue;
- ``overflowed``: moved on to another queue by a queue limit (counted still);
  ``voicemail``, ``rejected``, ``timed_out``: ended that way by a queue limit
  (docs/ROUTING.md); ``callbacks``: became callbacks (patience no longer applies);
- ``p_wait``: share of offered contacts not answered at the moment they arrived
  (they waited, or abandoned, or ended by a limit after a wait);
- ``p_abandon``: abandoned / offered;
- ``asa_s``: mean wait of answered contacts;
- ``mean_wait_s``: mean wait of the contacts that ended (answered, abandoned, or
  ended by a limit);
- ``service_level``: answered within the queue's threshold / offered;
- ``service_level_answered``: answered within the threshold / answered;
- ``occupancy``: (reserved + busy + wrap-up time) / (that + ready time) of the
  agents, over the measured period; for a queue, of the agents who can serve it
  (skills and channel; on all their work, whichever queue it came from). A
  multi-channel agent is reserved, busy or in wrap-up while it holds at least
  one contact, however many;
- ``contacts_held`` (per agent group and overall): the mean number of contacts
  an agent holds (ringing, answered or in wrap-up) over the same available
  time, (sum over contacts of the time each is held) / (that + ready time). A
  classic agent holds one or none, so it equals the occupancy; an agent holding
  up to three chats may hold 2.4 on average, and its share of capacity in use is
  then 2.4 / 3.

Contacts still in the system when the run stops count as offered only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agner.core._api import AgentState, Channel, Strategy
from agner.core.loop import OUTCOMES, EventLoop
from agner.core.router import Router

__all__ = ["AgentGroup", "Dist", "QueueLoad", "SimResult", "simulate"]

_US = 1_000_000


@dataclass(frozen=True)
class Dist:
    """A distribution of durations in seconds.

    kind: ``exponential`` (mean_s), ``deterministic`` (mean_s), ``lognormal`` and
    ``gamma`` (mean_s and sd_s), ``empirical`` (samples, drawn uniformly).
    """

    kind: str
    mean_s: float = 0.0
    sd_s: float = 0.0
    samples: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("exponential", "deterministic", "lognormal", "gamma", "empirical"):
            raise ValueError(f"unknown distribution {self.kind!r}")
        if self.kind == "empirical":
            if not self.samples or any(not (s >= 0 and math.isfinite(s)) for s in self.samples):
                raise ValueError("empirical: samples must be finite numbers >= 0, at least one")
            return
        if not (self.mean_s > 0 and math.isfinite(self.mean_s)):
            raise ValueError(f"{self.kind}: mean_s must be > 0, got {self.mean_s}")
        if self.kind in ("lognormal", "gamma") and not (self.sd_s > 0 and math.isfinite(self.sd_s)):
            raise ValueError(f"{self.kind}: sd_s must be > 0, got {self.sd_s}")

    def spec(self) -> tuple[str, float, float, np.ndarray | None]:
        """The (kind, p0, p1, samples) the event loop draws from."""
        m, s = self.mean_s, self.sd_s
        if self.kind == "lognormal":
            sigma2 = math.log1p((s / m) ** 2)
            return ("lognormal", math.log(m) - sigma2 / 2, math.sqrt(sigma2), None)
        if self.kind == "gamma":
            return ("gamma", (m / s) ** 2, s * s / m, None)
        if self.kind == "empirical":
            return ("empirical", 0.0, 0.0, np.asarray(self.samples, dtype=np.float64))
        return (self.kind, m, 0.0, None)


_NEVER = ("none", 0.0, 0.0, None)


@dataclass(frozen=True)
class QueueLoad:
    """A queue and the load on it."""

    name: str
    rate_per_s: float | Sequence[float]  # or one rate per interval of the day
    handle: Dist
    patience: Dist | None = None  # None: callers never hang up
    require: Mapping[int, int] = field(default_factory=dict)
    strategy: Strategy = Strategy.LONGEST_IDLE
    priority: int = 0
    sl_threshold_s: float = 20.0
    # Requirement steps ((after_s, require), ...), the first at 0; when given they
    # replace `require`, and the set of agents widens at each step's time.
    steps: Sequence[tuple[float, Mapping[int, int]]] = ()
    priority_weight_s: float | None = None  # the wait one priority level is worth
    # Queue limits (docs/ROUTING.md): 0 for none; overflow is None, the index of
    # an earlier queue, "voicemail" or "callback".
    max_waiting: int = 0
    max_wait_s: float = 0.0
    overflow: int | str | None = None
    when_unstaffed: str = "wait"
    parallel: int = 1  # agents one contact rings at once (0: all)
    channel: Channel = Channel.VOICE  # the channel its contacts arrive on

    def requirements(self) -> list[Mapping[int, int]]:
        """Its steps' requirements (just `require` without steps)."""
        return [req for _, req in self.steps] if self.steps else [self.require]

    def served_by(self, skills: Mapping[int, int]) -> bool:
        """Whether an agent with `skills` may take its contacts at some step."""
        return any(
            all(skills.get(s, 0) >= lv for s, lv in req.items()) for req in self.requirements()
        )

    def served_by_group(self, g: AgentGroup) -> bool:
        """Whether the group's agents may take its contacts: skills and channel."""
        return self.served_by(g.skills) and g.takes(self.channel)


def rate_profiles(queues: Sequence[QueueLoad], interval_s: float | None) -> list[list[float]]:
    """Each queue's arrival rates per interval of the day (one rate: all day),
    checked the same way for every engine.

    Raises:
        ValueError: a negative or infinite rate, profiles of different lengths, or
            a profile without `interval_s`.
    """
    out: list[list[float]] = []
    n_int = 1
    for q in queues:
        rates = (
            [float(q.rate_per_s)]
            if isinstance(q.rate_per_s, int | float)
            else list(map(float, q.rate_per_s))
        )
        if not rates or any(not (x >= 0 and math.isfinite(x)) for x in rates):
            raise ValueError(f"queue {q.name!r}: rate_per_s must be >= 0, got {q.rate_per_s}")
        if len(rates) > 1:
            if n_int not in (1, len(rates)):
                raise ValueError(f"queue {q.name!r}: every profile needs the same intervals")
            n_int = len(rates)
        out.append(rates)
    if n_int > 1 and not (interval_s and interval_s > 0):
        raise ValueError("a per-interval rate profile needs interval_s > 0")
    return out


def arrival_chain(r: Router, queue: int, q: QueueLoad) -> int:
    """The router's step chain that `q`'s contacts arrive on (their channel's)."""
    return int(r._chain_for(queue, (), int(q.channel)))


def add_queue_load(r: Router, q: QueueLoad) -> int:
    """Add a simulated queue to a router, the same way for every engine (offers are
    answered at once, so there is no ring timeout)."""
    kw: dict[str, Any] = {
        "max_waiting": q.max_waiting,
        "max_wait_us": round(q.max_wait_s * _US),
        "overflow": q.overflow,
        "when_unstaffed": q.when_unstaffed,
        "parallel": q.parallel,
    }
    if q.priority_weight_s is not None:
        kw["priority_weight_us"] = round(q.priority_weight_s * _US)
    if q.steps:
        kw["steps"] = [(round(after * _US), req) for after, req in q.steps]
    return int(
        r.add_queue(
            None if q.steps else q.require,
            strategy=q.strategy,
            priority=q.priority,
            ring_timeout_us=0,
            sl_threshold_us=round(q.sl_threshold_s * _US),
            **kw,
        )
    )


@dataclass(frozen=True)
class AgentGroup:
    """Agents with the same skills.

    Without `shifts` they are logged in and ready from time 0 to the end. With
    shifts ((start_s, end_s) pairs, from time 0, not overlapping) they log in at
    each start; at each end an idle agent logs out at once and a busy one after
    its contact (a pending not-ready keeps new offers away meanwhile).

    Without `capacity` they are classic agents: one contact at a time, of any
    channel. With it they are multi-channel agents (docs/ROUTING.md,
    "Multi-channel agents"): up to ``capacity[ch]`` contacts of each channel at
    once, `blocks` saying which channels a held contact closes (None: the
    router's default). A busy multi-channel agent at the end of its shift takes
    no new contacts and logs out when it holds none (wrap-ups are cut short, as
    a classic agent's).
    """

    name: str
    count: int
    skills: Mapping[int, int]
    wrap_up_s: float = 0.0
    shifts: tuple[tuple[float, float], ...] = ()
    capacity: Mapping[Channel, int] | None = None
    blocks: Mapping[Channel, Sequence[Channel]] | None = None

    def takes(self, channel: Channel) -> bool:
        """Whether its agents may hold a contact of `channel` (classic agents take any)."""
        return self.capacity is None or self.capacity.get(channel, 0) > 0

    def add_agents(self, r: Router) -> list[int]:
        """Add its `count` agents to a router, the same way for every engine; their ids."""
        kw: dict[str, Any] = {}
        if self.capacity is not None:
            kw["capacity"] = dict(self.capacity)
            if self.blocks is not None:
                kw["blocks"] = {c: list(x) for c, x in self.blocks.items()}
        wrap = round(self.wrap_up_s * _US)
        return [int(r.add_agent(self.skills, wrap_up_us=wrap, **kw)) for _ in range(self.count)]

    def __post_init__(self) -> None:
        if self.blocks is not None and self.capacity is None:
            raise ValueError(f"group {self.name!r}: blocks needs capacity")
        last_end = -math.inf
        for start, end in sorted(self.shifts):
            if not (0 <= start < end and math.isfinite(end)):
                raise ValueError(f"group {self.name!r}: a shift needs 0 <= start_s < end_s")
            if start < last_end:
                raise ValueError(f"group {self.name!r}: shifts overlap")
            last_end = end


@dataclass
class SimResult:
    queues: dict[str, dict[str, float | int | None]]
    overall: dict[str, float | int | None]
    # Per interval of the day (by arrival time), when the center has a profile:
    # {"start_s": ..., "queues": {...}, "overall": {...}} (no occupancy).
    intervals: list[dict[str, Any]]
    occupancy: dict[str, float | None]
    arrivals: int
    events: int
    simulated_s: float
    wall_s: float
    # Per agent group and "overall": mean contacts held over the available time.
    contacts_held: dict[str, float | None] = field(default_factory=dict)

    @property
    def calls_per_second(self) -> float:
        return self.arrivals / self.wall_s if self.wall_s > 0 else math.inf


class _RecordWriter:
    """Writes the loop's record chunks to a CSV file, as they come."""

    HEADER = "queue,arrival_s,answered_s,ended_s,wait_s,talk_s,agent,outcome\n"

    def __init__(self, path: str | Path | None, queue_names: Sequence[str]) -> None:
        self.path = path
        self.names = np.array(queue_names, dtype=object)
        self.file: Any = None

    def __enter__(self) -> _RecordWriter:
        if self.path is not None:
            try:
                self.file = open(self.path, "w", newline="")
            except OSError as exc:
                raise ValueError(f"cannot write {self.path}: {exc.strerror}") from None
            self.file.write(self.HEADER)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()

    def write(self, chunk: np.ndarray) -> None:
        arrival = chunk["arrival_us"] / _US
        answered = chunk["answered_us"]
        ended = chunk["ended_us"] / _US
        ok = answered >= 0
        outcomes = np.array(OUTCOMES, dtype=object)[chunk["outcome"]]
        lines = []
        for name, a, ans, e, good, agent, out in zip(
            self.names[chunk["queue"]],
            arrival,
            answered,
            ended,
            ok,
            chunk["agent"],
            outcomes,
            strict=True,
        ):
            if good:
                t = ans / _US
                lines.append(
                    f"{name},{a:.6f},{t:.6f},{e:.6f},{t - a:.6f},{e - t:.6f},{agent},{out}\n"
                )
            else:
                lines.append(f"{name},{a:.6f},,{e:.6f},{e - a:.6f},,,{out}\n")
        self.file.writelines(lines)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _figures(c: Mapping[str, Any]) -> dict[str, float | int | None]:
    ended_unanswered = c["voicemail"] + c["rejected"] + c["timed_out"]
    finished = c["answered"] + c["abandoned"] + ended_unanswered
    return {
        "offered": c["offered"],
        "answered": c["answered"],
        "abandoned": c["abandoned"],
        "overflowed": c["overflowed"],
        "voicemail": c["voicemail"],
        "rejected": c["rejected"],
        "timed_out": c["timed_out"],
        "callbacks": c["callbacks"],
        "p_wait": _ratio(c["delayed"], c["offered"]),
        "p_abandon": _ratio(c["abandoned"], c["offered"]),
        "asa_s": _ratio(c["wait_answered_s"], c["answered"]),
        "mean_wait_s": _ratio(
            c["wait_answered_s"] + c["wait_abandoned_s"] + c["wait_diverted_s"], finished
        ),
        "service_level": _ratio(c["answered_within"], c["offered"]),
        "service_level_answered": _ratio(c["answered_within"], c["answered"]),
    }


def occupancy_by_queue(
    queues: Sequence[QueueLoad],
    groups: Sequence[AgentGroup],
    group_time: Mapping[str, tuple[int, int]],
) -> dict[str, float | None]:
    """Each queue's occupancy: that of the agents who can serve it, on all their
    work; `group_time` maps a group to its (handling, handling + ready) time."""
    out: dict[str, float | None] = {}
    for q in queues:
        able = [g.name for g in groups if q.served_by_group(g)]
        out[q.name] = _ratio(
            sum(group_time[n][0] for n in able), sum(group_time[n][1] for n in able)
        )
    return out


def contacts_held(
    held: Mapping[str, int], group_time: Mapping[str, tuple[int, int]]
) -> dict[str, float | None]:
    """Each group's (and overall) mean contacts held over its available time;
    `held` maps a group to its contacts x time, `group_time` as for occupancy."""
    out = {name: _ratio(held[name], group_time[name][1]) for name in group_time}
    out["overall"] = _ratio(sum(held.values()), sum(a for _, a in group_time.values()))
    return out


def _busy_ready(r: Router, agents: Sequence[int], now: int) -> tuple[int, int]:
    busy = ready = 0
    for a in agents:
        t = r.agent_stats(a, now).time_in_state_us
        busy += t[AgentState.RESERVED] + t[AgentState.BUSY] + t[AgentState.WRAP_UP]
        ready += t[AgentState.READY]
    return busy, ready


def simulate(
    queues: Sequence[QueueLoad],
    groups: Sequence[AgentGroup],
    *,
    arrivals: int | None = None,
    duration_s: float | None = None,
    warmup_s: float = 0.0,
    seed: int = 0,
    interval_s: float | None = None,
    records: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Route `queues`' load to `groups` in virtual time and measure it.

    Stops after `arrivals` contacts have arrived after the warm-up, or at virtual
    time `duration_s` (counted from 0, warm-up included), whichever comes first;
    at least one of them is needed. The same inputs and seed give the same result.

    With `records`, one CSV row per contact that arrived after the warm-up and
    ended is written to that file, as the run goes: queue (of arrival),
    arrival_s, answered_s (empty when not answered), ended_s, wait_s, talk_s,
    agent (empty when not answered), outcome (answered, abandoned, voicemail,
    rejected, timed_out). Contacts still in the system at the end have no row.

    `progress`, if given, is called with the share done (0 to 1) fifty times
    along the run; running in slices changes nothing in the results.

    A queue's `rate_per_s` may be one rate per interval of `interval_s` seconds:
    a daily profile starting at time 0 and repeating. Results are then also
    given per interval (contacts by the interval they arrived in).

    Raises:
        ValueError: no stop given, a negative rate, an empty center.
    """
    if arrivals is None and duration_s is None:
        raise ValueError("give arrivals or duration_s")
    if arrivals is not None and arrivals < 1:
        raise ValueError(f"arrivals must be >= 1, got {arrivals}")
    if duration_s is not None and not duration_s > warmup_s:
        raise ValueError("duration_s must be longer than the warm-up")
    if not queues or not groups:
        raise ValueError("a center needs at least one queue and one agent group")
    n_int = max(len(x) for x in rate_profiles(queues, interval_s))
    r = Router(seed=seed)
    for q in queues:
        add_queue_load(r, q)
    members: dict[str, list[int]] = {}
    shifts: list[tuple[int, int, int]] = []
    for g in groups:
        if g.count < 0:
            raise ValueError(f"group {g.name!r}: count must be >= 0")
        ids = g.add_agents(r)
        members[g.name] = ids
        for a in ids:
            if g.shifts:
                shifts += [(a, round(s0 * _US), round(s1 * _US)) for s0, s1 in g.shifts]
            else:
                r.login(a, 0)
                r.set_ready(a, 0)
    r.take_decisions()

    warmup_us = round(warmup_s * _US)
    until = -1 if duration_s is None else round(duration_s * _US)
    with _RecordWriter(records, [q.name for q in queues]) as writer:
        loop = EventLoop(
            r,
            [q.rate_per_s for q in queues],
            [q.handle.spec() for q in queues],
            [q.patience.spec() if q.patience else _NEVER for q in queues],
            [round(q.sl_threshold_s * _US) for q in queues],
            seed,
            warmup_us,
            round(interval_s * _US) if interval_s else 0,
            shifts,
            writer.write if records is not None else None,
            [arrival_chain(r, i, q) for i, q in enumerate(queues)],
            [int(q.channel) for q in queues],
        )
        start = time.perf_counter()
        if warmup_us:
            loop.run(-1, warmup_us)
        at_warmup = {name: _busy_ready(r, ids, r.now) for name, ids in members.items()}
        held_warmup = {name: loop.held_us(ids, r.now) for name, ids in members.items()}
        if progress is None:
            end = loop.run(-1 if arrivals is None else arrivals, until)
        else:
            slices = 50
            for k in range(1, slices + 1):
                end = loop.run(
                    -1 if arrivals is None else max(1, arrivals * k // slices),
                    -1 if until < 0 else warmup_us + (until - warmup_us) * k // slices,
                )
                progress(k / slices)
        wall = time.perf_counter() - start

    per_queue = {q.name: loop.queue_counts(i) for i, q in enumerate(queues)}
    total = {k: sum(c[k] for c in per_queue.values()) for k in next(iter(per_queue.values()))}
    occupancy: dict[str, float | None] = {}
    group_time: dict[str, tuple[int, int]] = {}
    held = {name: loop.held_us(ids, end) - held_warmup[name] for name, ids in members.items()}
    for name, ids in members.items():
        busy, ready = _busy_ready(r, ids, end)
        busy -= at_warmup[name][0]
        ready -= at_warmup[name][1]
        group_time[name] = (busy, busy + ready)
        occupancy[name] = _ratio(busy, busy + ready)
    occupancy["overall"] = _ratio(
        sum(b for b, _ in group_time.values()), sum(a for _, a in group_time.values())
    )
    overall = _figures(total)
    overall["occupancy"] = occupancy["overall"]
    intervals = []
    if interval_s and loop.n_intervals >= 1 and n_int > 1:
        for i in range(loop.n_intervals):
            counts = {q.name: loop.queue_counts(k, i) for k, q in enumerate(queues)}
            both = {k: sum(c[k] for c in counts.values()) for k in total}
            intervals.append(
                {
                    "start_s": i * interval_s,
                    "queues": {name: _figures(c) for name, c in counts.items()},
                    "overall": _figures(both),
                }
            )
    by_queue = {name: _figures(c) for name, c in per_queue.items()}
    for name, occ in occupancy_by_queue(queues, groups, group_time).items():
        by_queue[name]["occupancy"] = occ
    return SimResult(
        queues=by_queue,
        overall=overall,
        intervals=intervals,
        occupancy=occupancy,
        arrivals=int(total["offered"]),
        events=loop.events,
        simulated_s=(end - warmup_us) / _US,
        wall_s=wall,
        contacts_held=contacts_held(held, group_time),
    )
