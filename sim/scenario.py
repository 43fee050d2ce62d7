"""Scenario files: the routing configuration plus load, as TOML read by msgspec.

The shape is the one of ../shared/ARCHITECTURE.md::

    seed = 1
    replications = 1                   # independent runs, seeds seed, seed + 1, ...
    warmup_s = 3600
    calls = 1_000_000                  # or duration_s

    [[queues]]
    name = "sales"
    priority = 1
    strategy = "longest_idle"
    service_level = { threshold_s = 20, target = 0.8 }
    steps = [ { after_s = 0, require = { sales = 5 } } ]

    [[agent_groups]]
    name = "tier1"
    count = 380
    skills = { sales = 5 }
    wrap_up_s = 0
    shifts = [ { start_s = 0, end_s = 28800 } ]        # absent: on duty throughout

    [[arrivals]]
    queue = "sales"
    rate_per_s = 2.0                   # or one rate per interval: [0.5, 1.2, ...]
    # or history_csv = "sales.csv": rows `interval,calls` (interval of the day,
    # from 0; one row per day seen), averaged into a rate per interval
    handle = { dist = "exponential", mean_s = 180 }
    patience = { dist = "exponential", mean_s = 120 }   # absent: never hang up
    channel = "voice"                  # or "chat", "email", "callback"

Agent groups may be multi-channel, as in the center configuration
(agner.config): ``capacity = { chat = 3 }`` lets each agent hold three chats at
once, ``blocks`` says which channels a held contact closes. Every queue with
arrivals needs a group (count > 0) that meets its requirements and takes its
channel, and so does every queue its contacts can overflow to; a classic group
(no capacity) takes every channel, one contact at a time.

A per-interval profile needs ``interval_s`` at the top level: the profile
starts at time 0, repeats every ``len(rates) * interval_s`` seconds, and the
results are then also given per interval. Skills are named; ids are given in
order of first appearance. Queue limits and overflow are
simulated too; a contact's figures stay with the queue it arrived in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

# The routing part of a scenario (queues, agent groups) is the one configuration
# schema of agner.config; its names stay importable from here for existing callers.
from agner.config import AgentGroupSpec as AgentGroupSpec
from agner.config import (
    ConfigFileError,
    agent_kwargs,
    check_groups,
    check_queues,
    serves,
    skill_ids_of,
    steps_of,
)
from agner.config import Queue as Queue
from agner.config import ServiceLevel as ServiceLevel
from agner.config import Shift as Shift
from agner.config import Step as Step
from agner.config import requirement_of as requirement_of
from agner.core._api import Channel, Strategy
from agner.sim.engine import AgentGroup, Dist, QueueLoad, SimResult, simulate

__all__ = [
    "Scenario",
    "ScenarioError",
    "center_of",
    "load_scenario",
    "queue_load_of",
    "run_scenario",
]


class ScenarioError(ConfigFileError):
    """A scenario that cannot be run; the message names the field."""


class DistSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    dist: Literal["exponential", "deterministic", "lognormal", "gamma", "empirical"]
    mean_s: float = 0.0
    sd_s: float = 0.0
    samples: list[float] = []


class Arrivals(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    queue: str
    handle: DistSpec
    patience: DistSpec | None = None
    rate_per_s: float | list[float] | None = None  # None: history_csv gives it
    history_csv: str | None = None
    channel: Literal["voice", "chat", "email", "callback"] = "voice"

    @property
    def rate(self) -> float | list[float]:
        """The rate(s) per second, once load_scenario has read any history_csv."""
        if self.rate_per_s is None:
            raise ScenarioError(f"arrivals for {self.queue!r}: give rate_per_s or history_csv")
        return self.rate_per_s


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    queues: list[Queue]
    agent_groups: list[AgentGroupSpec]
    arrivals: list[Arrivals]
    seed: int = 0
    replications: int = 1
    warmup_s: float = 0.0
    interval_s: float | None = None
    calls: int | None = None
    duration_s: float | None = None


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file.

    Raises:
        ScenarioError: unreadable TOML, a wrong type, or a value that makes no
            sense; the message names the file and the field.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        sc = msgspec.toml.decode(text, type=Scenario)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    sc = _with_history(sc, path)
    check(sc, str(path))
    return sc


def _with_history(sc: Scenario, path: Path) -> Scenario:
    # Replace each history_csv by the rates it implies, so that the rest of the
    # code sees rate_per_s only.
    arrivals = []
    for i, a in enumerate(sc.arrivals):
        at = f"{path}: arrivals[{i}]"
        if a.history_csv is None:
            if a.rate_per_s is None:
                raise ScenarioError(f"{at}: give rate_per_s or history_csv")
            arrivals.append(a)
            continue
        if a.rate_per_s is not None:
            raise ScenarioError(f"{at}: give rate_per_s or history_csv, not both")
        if not (sc.interval_s and sc.interval_s > 0):
            raise ScenarioError(f"{at}.history_csv: needs interval_s > 0 at the top")
        rates = history_rates(path.parent / a.history_csv, sc.interval_s, f"{at}.history_csv")
        arrivals.append(msgspec.structs.replace(a, rate_per_s=rates, history_csv=None))
    return msgspec.structs.replace(sc, arrivals=arrivals)


def history_rates(csv_path: Path, interval_s: float, where: str) -> list[float]:
    """Mean calls per interval of the day, as rates per second.

    The CSV has a header with the columns ``interval`` (0, 1, ... within the
    day) and ``calls`` (a count >= 0); each row is one interval of one day.
    Intervals of the day with no row count as 0 calls on the days seen.
    """
    import csv

    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read {csv_path}: {exc.strerror}") from None
    if not rows or not {"interval", "calls"} <= set(rows[0]):
        raise ScenarioError(f"{where}: {csv_path} needs a header with `interval` and `calls`")
    sums: dict[int, float] = {}
    seen: dict[int, int] = {}
    for n, row in enumerate(rows, start=2):
        try:
            k, calls = int(row["interval"]), float(row["calls"])
        except (TypeError, ValueError):
            raise ScenarioError(
                f"{where}: {csv_path} line {n}: interval and calls must be numbers"
            ) from None
        if k < 0 or not (calls >= 0 and math.isfinite(calls)):
            raise ScenarioError(f"{where}: {csv_path} line {n}: interval >= 0 and calls >= 0")
        sums[k] = sums.get(k, 0.0) + calls
        seen[k] = seen.get(k, 0) + 1
    days = max(seen.values())
    return [sums.get(k, 0.0) / days / interval_s for k in range(max(sums) + 1)]


def check(sc: Scenario, where: str = "scenario") -> None:
    """Refuse what makes no sense, naming the field."""
    names = [q.name for q in sc.queues]
    if not names:
        raise ScenarioError(f"{where}: queues: at least one queue is needed")
    if len(set(names)) != len(names):
        raise ScenarioError(f"{where}: queues: names must be unique")
    if not sc.agent_groups:
        raise ScenarioError(f"{where}: agent_groups: at least one group is needed")
    if sc.replications < 1:
        raise ScenarioError(f"{where}: replications must be >= 1")
    if sc.calls is not None and sc.calls < 1:
        raise ScenarioError(f"{where}: calls must be >= 1")
    if sc.warmup_s < 0:
        raise ScenarioError(f"{where}: warmup_s must be >= 0")
    if sc.duration_s is not None and not sc.duration_s > sc.warmup_s:
        raise ScenarioError(f"{where}: duration_s must be longer than warmup_s")
    try:
        check_groups(sc.agent_groups, where)
    except ConfigFileError as exc:
        raise ScenarioError(str(exc)) from None
    for i, g in enumerate(sc.agent_groups):
        try:
            agent_group_of(g, {s: k for k, s in enumerate(g.skills)})
        except ValueError as exc:
            raise ScenarioError(f"{where}: agent_groups[{i}].shifts: {exc}") from None
    try:
        check_queues(sc.queues, sc.agent_groups, where)
    except ConfigFileError as exc:
        raise ScenarioError(str(exc)) from None
    for i, a in enumerate(sc.arrivals):
        at = f"{where}: arrivals[{i}]"
        if a.queue not in names:
            raise ScenarioError(f"{at}.queue: unknown queue {a.queue!r}")
        rates = a.rate if isinstance(a.rate, list) else [a.rate]
        if not rates or any(not (x >= 0 and math.isfinite(x)) for x in rates):
            raise ScenarioError(f"{at}.rate_per_s must be >= 0, got {a.rate_per_s}")
        if len(rates) > 1 and not (sc.interval_s and sc.interval_s > 0):
            raise ScenarioError(f"{at}.rate_per_s: a profile needs interval_s > 0 at the top")
        for field in ("handle", "patience"):
            spec = getattr(a, field)
            if spec is not None:
                try:
                    dist_of(spec)
                except ValueError as exc:
                    raise ScenarioError(f"{at}.{field}: {exc}") from None
    if len({a.queue for a in sc.arrivals}) != len(sc.arrivals):
        raise ScenarioError(f"{where}: arrivals: one entry per queue")
    _check_channels(sc, where)
    lengths = {len(a.rate) for a in sc.arrivals if isinstance(a.rate, list)}
    if len(lengths - {1}) > 1:
        raise ScenarioError(f"{where}: arrivals: every rate profile needs as many intervals")


def _check_channels(sc: Scenario, where: str) -> None:
    # A queue whose contacts no agent may ever take is a mistake in the file, not
    # a result: its callers would only wait (or abandon) in the report. So each
    # queue with arrivals, and each queue its contacts can overflow to, needs a
    # group with agents that meet a step's requirement and take the channel.
    by_name = {q.name: q for q in sc.queues}
    skill_ids = skill_ids_of(sc.agent_groups)
    groups = [(g, agent_group_of(g, skill_ids)) for g in sc.agent_groups]
    for i, a in enumerate(sc.arrivals):
        channel = Channel[a.channel.upper()]
        q: Queue | None = by_name[a.queue]
        while q is not None:
            if not any(
                spec.count > 0 and serves(spec.skills, q) and g.takes(channel) for spec, g in groups
            ):
                via = "" if q.name == a.queue else f" (its contacts overflow to {q.name!r})"
                raise ScenarioError(
                    f"{where}: arrivals[{i}].channel: no agent group that serves queue "
                    f"{q.name!r}{via} takes {a.channel!r} contacts (give a group "
                    f"capacity.{a.channel} > 0, or no capacity at all)"
                )
            q = by_name.get(q.overflow) if q.overflow is not None else None


def agent_group_of(g: AgentGroupSpec, skill_ids: dict[str, int]) -> AgentGroup:
    return AgentGroup(
        g.name,
        g.count,
        {skill_ids[s]: lv for s, lv in g.skills.items()},
        g.wrap_up_s,
        tuple((sh.start_s, sh.end_s) for sh in g.shifts),
        **agent_kwargs(g),
    )


def dist_of(d: DistSpec) -> Dist:
    return Dist(d.dist, d.mean_s, d.sd_s, tuple(d.samples))


def queue_load_of(
    q: Queue,
    a: Arrivals | None,
    skill_ids: dict[str, int],
    queue_ids: dict[str, int],
    *,
    rate: float | list[float] | None = None,
    sl_threshold_s: float | None = None,
) -> QueueLoad:
    """One checked queue and its arrivals (None: no load) as the engines run it;
    `rate` and `sl_threshold_s` override the file's (staffing uses both)."""
    steps = [
        (after, {skill_ids[s]: lv for s, lv in req.items()}) for after, req in steps_of(q, q.name)
    ]
    return QueueLoad(
        name=q.name,
        rate_per_s=(a.rate if a else 0.0) if rate is None else rate,
        handle=dist_of(a.handle) if a else Dist("exponential", 1.0),
        patience=dist_of(a.patience) if a and a.patience else None,
        require=steps[0][1],
        strategy=Strategy[q.strategy.upper()],
        priority=q.priority,
        sl_threshold_s=q.service_level.threshold_s if sl_threshold_s is None else sl_threshold_s,
        steps=tuple(steps) if len(steps) > 1 else (),
        priority_weight_s=q.priority_weight_s,
        max_waiting=q.max_waiting,
        max_wait_s=q.max_wait_s,
        overflow=queue_ids.get(q.overflow, q.overflow) if q.overflow is not None else None,
        when_unstaffed=q.when_unstaffed,
        parallel=q.parallel,
        channel=Channel[a.channel.upper()] if a else Channel.VOICE,
    )


def center_of(sc: Scenario) -> tuple[list[QueueLoad], list[AgentGroup]]:
    """The queues and agent groups of a checked scenario, as both engines run them."""
    skill_ids = skill_ids_of(sc.agent_groups)
    load = {a.queue: a for a in sc.arrivals}
    queue_ids = {q.name: i for i, q in enumerate(sc.queues)}
    queues = [queue_load_of(q, load.get(q.name), skill_ids, queue_ids) for q in sc.queues]
    return queues, [agent_group_of(g, skill_ids) for g in sc.agent_groups]


def run_arguments(
    sc: Scenario, calls: int | None, duration_s: float | None, seed: int | None
) -> tuple[list[QueueLoad], list[AgentGroup], dict[str, Any]]:
    """The queues, groups and keyword arguments a simulation of `sc` takes, for
    either engine; the command line's values override the file's."""
    queues, groups = center_of(sc)
    if calls is None and duration_s is None:
        calls, duration_s = sc.calls, sc.duration_s
    if calls is None and duration_s is None:
        raise ScenarioError("give `calls` or `duration_s`, in the scenario or on the command line")
    return (
        queues,
        groups,
        {
            "arrivals": calls,
            "duration_s": duration_s,
            "warmup_s": sc.warmup_s,
            "seed": sc.seed if seed is None else seed,
            "interval_s": sc.interval_s,
        },
    )


def run_scenario(
    sc: Scenario,
    *,
    calls: int | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    records: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Simulate a checked scenario; arguments override the file's values.
    `records`: a CSV file for one row per contact (see agner.sim.engine.simulate)."""
    queues, groups, kwargs = run_arguments(sc, calls, duration_s, seed)
    return simulate(queues, groups, records=records, progress=progress, **kwargs)
