"""The routing configuration: skills, queues, strategies, requirement steps, agent groups.

One schema for every driver of the core: ``agner simulate`` reads it inside a
scenario (which adds load: arrivals, handle times, patience), ``agner serve``
inside a server configuration (which adds tenants, tokens and named agents).
The TOML shape::

    [[queues]]
    name = "sales"
    priority = 1                       # higher is served first by shared agents
    strategy = "longest_idle"          # round_robin, fewest_contacts, least_talk_time,
                                       # most_skilled, random, linear
    service_level = { threshold_s = 20, target = 0.8 }
    steps = [ { after_s = 0, require = { sales = 5 } } ]   # or require = { sales = 5 }

    [[agent_groups]]
    name = "tier1"
    count = 380
    skills = { sales = 5 }
    wrap_up_s = 0
    shifts = [ { start_s = 0, end_s = 28800 } ]   # simulation only; absent: on duty throughout

Skills are named; their ids are given in order of first appearance in the agent
groups. Queues get ids in file order. More than one requirement step is refused
by name until the core has time-based steps (issue 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from agner.core._api import Strategy
from agner.core.router import Router

__all__ = [
    "AgentGroupSpec",
    "CenterIds",
    "ConfigFileError",
    "Queue",
    "RoutingConfig",
    "ServiceLevel",
    "Shift",
    "Step",
    "build_router",
    "check_routing",
    "requirement_of",
    "skill_ids_of",
]

_US = 1_000_000


class ConfigFileError(ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


class ServiceLevel(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    threshold_s: float = 20.0
    target: float = 0.8


class Step(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    after_s: float = 0.0
    require: dict[str, int] = {}


class Queue(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    priority: int = 0
    strategy: str = "longest_idle"
    service_level: ServiceLevel = ServiceLevel()
    require: dict[str, int] | None = None
    steps: list[Step] | None = None


class Shift(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    start_s: float
    end_s: float


class AgentGroupSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    count: int
    skills: dict[str, int] = {}
    wrap_up_s: float = 0.0
    shifts: list[Shift] = []  # none: on duty all the time


class RoutingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The routing part alone: what a scenario and a server configuration share."""

    queues: list[Queue]
    agent_groups: list[AgentGroupSpec]


def requirement_of(q: Queue, where: str) -> dict[str, int]:
    """The queue's requirement by skill name (from `require` or its single step)."""
    if q.steps is not None and q.require is not None:
        raise ConfigFileError(f"{where}: give `require` or `steps`, not both")
    if q.steps is None:
        return dict(q.require or {})
    if len(q.steps) != 1 or q.steps[0].after_s != 0:
        raise ConfigFileError(
            f"{where}.steps: only one step at after_s = 0 is supported so far "
            "(time-based requirement steps come with the routing extensions)"
        )
    return dict(q.steps[0].require)


def check_groups(groups: list[AgentGroupSpec], where: str) -> None:
    """Counts, wrap-ups and skill levels of the agent groups."""
    for i, g in enumerate(groups):
        if g.count < 0:
            raise ConfigFileError(f"{where}: agent_groups[{i}] ({g.name}).count must be >= 0")
        if g.wrap_up_s < 0:
            raise ConfigFileError(f"{where}: agent_groups[{i}] ({g.name}).wrap_up_s must be >= 0")
        for s, lv in g.skills.items():
            if not 1 <= lv <= 1000:
                at = f"{where}: agent_groups[{i}] ({g.name}).skills.{s}"
                raise ConfigFileError(f"{at}: level {lv} is outside [1, 1000]")


def check_queues(queues: list[Queue], groups: list[AgentGroupSpec], where: str) -> None:
    """Strategies, service levels and requirements some group can meet."""
    known_skills = {s for g in groups for s in g.skills}
    for i, q in enumerate(queues):
        at = f"{where}: queues[{i}] ({q.name})"
        if q.strategy not in {s.name.lower() for s in Strategy}:
            raise ConfigFileError(f"{at}.strategy: unknown strategy {q.strategy!r}")
        if not (q.service_level.threshold_s >= 0 and 0 <= q.service_level.target <= 1):
            raise ConfigFileError(f"{at}.service_level: threshold_s >= 0 and target in [0, 1]")
        req = requirement_of(q, at)
        for s, lv in req.items():
            if s not in known_skills:
                raise ConfigFileError(f"{at}: requires skill {s!r}, which no agent group has")
            if not 1 <= lv <= 1000:
                raise ConfigFileError(f"{at}: require.{s}: level {lv} is outside [1, 1000]")
        if not any(
            g.count > 0 and all(g.skills.get(s, 0) >= lv for s, lv in req.items()) for g in groups
        ):
            raise ConfigFileError(f"{at}: no agent group can ever serve this queue")


def check_routing(cfg: RoutingConfig, where: str = "config") -> None:
    """Refuse a routing configuration that makes no sense, naming the field."""
    names = [q.name for q in cfg.queues]
    if not names:
        raise ConfigFileError(f"{where}: queues: at least one queue is needed")
    if len(set(names)) != len(names):
        raise ConfigFileError(f"{where}: queues: names must be unique")
    if not cfg.agent_groups:
        raise ConfigFileError(f"{where}: agent_groups: at least one group is needed")
    check_groups(cfg.agent_groups, where)
    check_queues(cfg.queues, cfg.agent_groups, where)


def skill_ids_of(groups: list[AgentGroupSpec]) -> dict[str, int]:
    """Skill name -> id, in order of first appearance in the agent groups."""
    ids: dict[str, int] = {}
    for g in groups:
        for s in g.skills:
            ids.setdefault(s, len(ids))
    return ids


@dataclass
class CenterIds:
    """Names at the edges, dense ids in the core: both ways, for skills, queues, agents.

    ``agents`` lists agent names by id; agents of a group are named
    ``GROUP-1`` ... ``GROUP-count`` (see :func:`build_router`).
    """

    skills: dict[str, int] = field(default_factory=dict)
    queues: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    queue_id: dict[str, int] = field(default_factory=dict)
    agent_id: dict[str, int] = field(default_factory=dict)


def build_router(cfg: RoutingConfig, *, seed: int = 0) -> tuple[Router, CenterIds]:
    """A Router holding the configuration's queues and agents, and the name<->id maps.

    Queues are added in file order, then each group's ``count`` agents in group
    order, named ``GROUP-1`` ... ``GROUP-count``; every agent starts logged out.
    The configuration must have passed :func:`check_routing`.
    """
    ids = CenterIds(skills=skill_ids_of(cfg.agent_groups))
    router = Router(seed=seed)
    for q in cfg.queues:
        req = {ids.skills[s]: lv for s, lv in requirement_of(q, q.name).items()}
        qid = router.add_queue(
            req,
            strategy=Strategy[q.strategy.upper()],
            priority=q.priority,
            sl_threshold_us=round(q.service_level.threshold_s * _US),
        )
        ids.queues.append(q.name)
        ids.queue_id[q.name] = qid
    for g in cfg.agent_groups:
        skills = {ids.skills[s]: lv for s, lv in g.skills.items()}
        for i in range(1, g.count + 1):
            name = f"{g.name}-{i}"
            if name in ids.agent_id:
                raise ConfigFileError(f"agent name {name!r} is given twice")
            aid = router.add_agent(skills, wrap_up_us=round(g.wrap_up_s * _US))
            ids.agents.append(name)
            ids.agent_id[name] = aid
    return router, ids
