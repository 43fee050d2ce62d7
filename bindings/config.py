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
    steps = [ { after_s = 0,  require = { sales = 5 } },  # or require = { sales = 5 }
              { after_s = 30, require = { sales = 1 } } ]  # widens after 30 s of waiting
    priority_weight_s = 60             # optional: one priority level = 60 s of waiting
    max_waiting = 50                   # optional limits, and where contacts then go:
    max_wait_s = 300
    overflow = "backup"                # an earlier queue, "voicemail" or "callback"
    when_unstaffed = "wait"            # or "reject", "overflow"
    parallel = 1                       # agents a call rings at once (0: ring-all)

    [[agent_groups]]
    name = "tier1"
    count = 380
    skills = { sales = 5 }
    wrap_up_s = 0
    shifts = [ { start_s = 0, end_s = 28800 } ]   # simulation only; absent: on duty throughout

Skills are named; their ids are given in order of first appearance in the agent
groups. Queues get ids in file order; an overflow target must come earlier in the
file (so overflow can never loop). docs/ROUTING.md gives the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from agner.core._api import Channel, RouterError, Strategy
from agner.core.router import Router

__all__ = [
    "AgentGroupSpec",
    "KamailioAdapterSpec",
    "CenterSetup",
    "CenterIds",
    "NamedAgent",
    "ServerConfig",
    "ServerOptions",
    "Tenant",
    "build_center",
    "check_server",
    "load_server_config",
    "read_toml",
    "ConfigFileError",
    "Queue",
    "RoutingConfig",
    "ServiceLevel",
    "Shift",
    "Step",
    "build_router",
    "check_routing",
    "queue_kwargs",
    "requirement_of",
    "serves",
    "steps_of",
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
    priority_weight_s: float | None = None  # None: strict priority
    max_waiting: int = 0  # 0: no limit
    max_wait_s: float = 0.0  # 0: no limit
    overflow: str | None = None  # an earlier queue's name, "voicemail" or "callback"
    when_unstaffed: Literal["wait", "reject", "overflow"] = "wait"
    parallel: int = 1  # agents one contact rings at once; 0: every idle one (ring-all)


class Shift(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    start_s: float
    end_s: float


class AgentGroupSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    count: int
    skills: dict[str, int] = {}
    wrap_up_s: float = 0.0
    shifts: list[Shift] = []  # none: on duty all the time
    # Multi-channel agents: contacts at once per channel ("voice", "chat", "email",
    # "callback"), and which channels a contact of each channel closes (absent:
    # voice and callback close all, chat and e-mail close voice and callback).
    capacity: dict[str, int] | None = None
    blocks: dict[str, list[str]] | None = None


def agent_kwargs(g: AgentGroupSpec) -> dict[str, Any]:
    """The channel keyword arguments of ``Router.add_agent`` for a checked group."""
    if g.capacity is None:
        return {}
    kw: dict[str, Any] = {"capacity": {Channel[c.upper()]: n for c, n in g.capacity.items()}}
    if g.blocks is not None:
        kw["blocks"] = {
            Channel[c.upper()]: [Channel[x.upper()] for x in closed]
            for c, closed in g.blocks.items()
        }
    return kw


class RoutingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The routing part alone: what a scenario and a server configuration share."""

    queues: list[Queue]
    agent_groups: list[AgentGroupSpec]


def steps_of(q: Queue, where: str) -> list[tuple[float, dict[str, int]]]:
    """The queue's requirement steps by skill name: ``[(after_s, require), ...]``,
    from `steps`, or `require` as the single step at 0."""
    if q.steps is not None and q.require is not None:
        raise ConfigFileError(f"{where}: give `require` or `steps`, not both")
    if q.steps is None:
        return [(0.0, dict(q.require or {}))]
    if not q.steps:
        raise ConfigFileError(f"{where}.steps: at least one step is needed")
    out: list[tuple[float, dict[str, int]]] = []
    for k, st in enumerate(q.steps):
        if k == 0 and st.after_s != 0:
            raise ConfigFileError(f"{where}.steps[0].after_s must be 0, got {st.after_s}")
        if k and not st.after_s > out[-1][0]:
            raise ConfigFileError(f"{where}.steps[{k}].after_s must exceed the step before it")
        out.append((st.after_s, dict(st.require)))
    return out


def requirement_of(q: Queue, where: str) -> dict[str, int]:
    """The requirement of the queue's first step (who may take its contacts at once)."""
    return steps_of(q, where)[0][1]


def serves(skills: dict[str, int], q: Queue) -> bool:
    """Whether an agent with these skills may take the queue's contacts at some step."""
    return any(
        all(skills.get(s, 0) >= lv for s, lv in req.items()) for _, req in steps_of(q, q.name)
    )


def queue_kwargs(q: Queue, skill_ids: dict[str, int], queue_ids: dict[str, int]) -> dict[str, Any]:
    """The keyword arguments of ``Router.add_queue`` for a checked queue: steps,
    strategy, priority and its weight, service-level threshold, limits, overflow."""
    kw: dict[str, Any] = {
        "steps": [
            (round(after * _US), {skill_ids[s]: lv for s, lv in req.items()})
            for after, req in steps_of(q, q.name)
        ],
        "strategy": Strategy[q.strategy.upper()],
        "priority": q.priority,
        "sl_threshold_us": round(q.service_level.threshold_s * _US),
        "max_waiting": q.max_waiting,
        "max_wait_us": round(q.max_wait_s * _US),
        "when_unstaffed": q.when_unstaffed,
        "parallel": q.parallel,
    }
    if q.priority_weight_s is not None:
        kw["priority_weight_us"] = round(q.priority_weight_s * _US)
    if q.overflow is not None:
        kw["overflow"] = q.overflow if q.overflow in _OVERFLOW_PLACES else queue_ids[q.overflow]
    return kw


_OVERFLOW_PLACES = ("voicemail", "callback")


def check_groups(groups: list[AgentGroupSpec], where: str) -> None:
    """Counts, wrap-ups and skill levels of the agent groups."""
    for i, g in enumerate(groups):
        if g.count < 0:
            raise ConfigFileError(f"{where}: agent_groups[{i}] ({g.name}).count must be >= 0")
        if g.wrap_up_s < 0:
            raise ConfigFileError(f"{where}: agent_groups[{i}] ({g.name}).wrap_up_s must be >= 0")
        names = {c.name.lower() for c in Channel}
        at = f"{where}: agent_groups[{i}] ({g.name})"
        for c, n in (g.capacity or {}).items():
            if c not in names or not 0 <= n <= 15:
                raise ConfigFileError(f"{at}.capacity.{c}: a channel of {sorted(names)}, 0-15")
        if g.capacity is not None and not any(g.capacity.values()):
            raise ConfigFileError(f"{at}.capacity: at least one channel needs a capacity")
        if g.blocks is not None and g.capacity is None:
            raise ConfigFileError(f"{at}.blocks: needs capacity")
        for c, closed in (g.blocks or {}).items():
            if c not in names or any(x not in names for x in closed):
                raise ConfigFileError(f"{at}.blocks.{c}: channels of {sorted(names)}")
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
        for _, req in steps_of(q, at):
            for s, lv in req.items():
                if s not in known_skills:
                    raise ConfigFileError(f"{at}: requires skill {s!r}, which no agent group has")
                if not 1 <= lv <= 1000:
                    raise ConfigFileError(f"{at}: require.{s}: level {lv} is outside [1, 1000]")
        if not any(g.count > 0 and serves(g.skills, q) for g in groups):
            raise ConfigFileError(f"{at}: no agent group can ever serve this queue")
        earlier = {x.name for x in queues[:i]}
        if q.overflow not in (None, *_OVERFLOW_PLACES, *earlier):
            raise ConfigFileError(
                f"{at}.overflow: {q.overflow!r} is not 'voicemail', 'callback' or the "
                "name of a queue given before this one"
            )
        if q.name in _OVERFLOW_PLACES:
            raise ConfigFileError(f"{at}.name: {q.name!r} is reserved for overflow")
        if q.when_unstaffed == "overflow" and q.overflow is None:
            raise ConfigFileError(f"{at}.when_unstaffed: 'overflow' needs an overflow target")
        if q.max_waiting < 0 or not q.max_wait_s >= 0 or q.parallel < 0:
            raise ConfigFileError(f"{at}: max_waiting, max_wait_s and parallel must be >= 0")
        if q.priority_weight_s is not None and not 0 <= q.priority_weight_s <= 1e6:
            raise ConfigFileError(f"{at}.priority_weight_s must be in [0, 1e6] seconds")


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
        qid = router.add_queue(**queue_kwargs(q, ids.skills, ids.queue_id))
        ids.queues.append(q.name)
        ids.queue_id[q.name] = qid
    for g in cfg.agent_groups:
        skills = {ids.skills[s]: lv for s, lv in g.skills.items()}
        for i in range(1, g.count + 1):
            name = f"{g.name}-{i}"
            if name in ids.agent_id:
                raise ConfigFileError(f"agent name {name!r} is given twice")
            aid = router.add_agent(skills, wrap_up_us=round(g.wrap_up_s * _US), **agent_kwargs(g))
            ids.agents.append(name)
            ids.agent_id[name] = aid
    return router, ids


# ------------------------------------------------------------------ server


class ServerOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The ``[server]`` table of a server configuration (all optional)."""

    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: int = 50
    max_message_bytes: int = 65_536
    rate_per_s: float = 50_000.0  # messages per connection, token bucket
    burst: int = 100_000
    ring_timeout_s: float = 15.0
    preferred_s: float = 20.0  # how long preferred agents (CRM, transfer) hold a contact
    seed: int = 0
    snapshot_every: int = 100_000  # journal entries between snapshots; 0: none
    keep_snapshots: int = 2  # the newest kept, with the journal after the oldest; 0: all
    records_interval_ms: int = 200  # interaction records go to the CRM store this often
    # The CPU priority of the server's background threads (records, store calls,
    # snapshots): low (nice 19), idle (SCHED_IDLE) or normal.
    background_priority: Literal["idle", "low", "normal"] = "low"


class Tenant(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A company served by the center: its API token and what belongs to it."""

    name: str
    token: str
    queues: list[str]
    agent_groups: list[str]


class NamedAgent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An agent with a name and a desktop token, with the skills of its group."""

    name: str
    group: str
    token: str | None = None


class KamailioAdapterSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An ``[[adapters]]`` table: a Kamailio adapter that ``agner serve`` runs in
    its own process and event loop (docs/ADAPTERS.md). The fields are those of
    ``agner adapter kamailio``; ``token`` is the tenant's service token."""

    switch: Literal["kamailio"]
    evapi: str
    token: str
    agents: dict[str, str] = {}
    agent_uri: str | None = None
    dial_uri: str | None = None
    login: list[str] = []
    ring_ms: int = 12_000
    ring_every_s: float = 5.0


_NOT_CHECKED = ("switch", "token", "login")  # the rest: check_settings' keywords


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What ``agner serve`` reads: the routing configuration plus tenants and
    agents, and the adapters it runs itself."""

    queues: list[Queue]
    agent_groups: list[AgentGroupSpec]
    tenants: list[Tenant]
    agents: list[NamedAgent] = []
    server: ServerOptions = ServerOptions()
    adapters: list[KamailioAdapterSpec] = []

    @property
    def routing(self) -> RoutingConfig:
        return RoutingConfig(queues=self.queues, agent_groups=self.agent_groups)


T = TypeVar("T")


def read_toml(path: Path, schema: type[T], error: type[ConfigFileError]) -> T:
    """A TOML file decoded into `schema`; `error` names the file and what is wrong."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(text, type=schema)
    except msgspec.ValidationError as exc:
        raise error(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def load_server_config(path: str | Path) -> ServerConfig:
    """Read and check a server configuration (TOML).

    Raises:
        ConfigFileError: unreadable, a wrong type, or a value that makes no
            sense; the message names the file and the field.
    """
    path = Path(path)
    cfg = read_toml(path, ServerConfig, ConfigFileError)
    check_server(cfg, str(path))
    return cfg


def check_server(cfg: ServerConfig, where: str = "config") -> None:
    """Refuse a server configuration that makes no sense, naming the field."""
    named: dict[str, int] = {}
    for a in cfg.agents:
        named[a.group] = named.get(a.group, 0) + 1
    # Named agents count towards their group when asking "can anyone serve this queue".
    groups = [
        msgspec.structs.replace(g, count=g.count + named.get(g.name, 0)) for g in cfg.agent_groups
    ]
    check_routing(RoutingConfig(queues=cfg.queues, agent_groups=groups), where)
    opts = cfg.server
    if opts.fsync_interval_ms < 1 or opts.max_message_bytes < 256:
        raise ConfigFileError(f"{where}: server: fsync_interval_ms >= 1, max_message_bytes >= 256")
    if not (opts.rate_per_s > 0 and opts.burst >= 1 and opts.ring_timeout_s >= 0):
        raise ConfigFileError(f"{where}: server: rate_per_s > 0, burst >= 1, ring_timeout_s >= 0")
    if not 0 <= opts.preferred_s <= 86_400:
        raise ConfigFileError(f"{where}: server: preferred_s in [0, 86400]")
    if opts.snapshot_every < 0 or opts.keep_snapshots < 0 or opts.records_interval_ms < 1:
        raise ConfigFileError(
            f"{where}: server: snapshot_every >= 0, keep_snapshots >= 0, records_interval_ms >= 1"
        )
    if not cfg.tenants:
        raise ConfigFileError(f"{where}: tenants: at least one tenant is needed")
    queue_names = {q.name for q in cfg.queues}
    group_names = {g.name for g in cfg.agent_groups}
    owner_q: dict[str, str] = {}
    owner_g: dict[str, str] = {}
    tokens: set[str] = set()
    for i, t in enumerate(cfg.tenants):
        at = f"{where}: tenants[{i}] ({t.name})"
        if len(t.token) < 8:
            raise ConfigFileError(f"{at}.token: at least 8 characters")
        if t.token in tokens:
            raise ConfigFileError(f"{at}.token: every token must be different")
        tokens.add(t.token)
        for qn in t.queues:
            if qn not in queue_names:
                raise ConfigFileError(f"{at}.queues: unknown queue {qn!r}")
            if qn in owner_q:
                raise ConfigFileError(f"{at}.queues: {qn!r} already belongs to {owner_q[qn]!r}")
            owner_q[qn] = t.name
        for gn in t.agent_groups:
            if gn not in group_names:
                raise ConfigFileError(f"{at}.agent_groups: unknown group {gn!r}")
            if gn in owner_g:
                raise ConfigFileError(
                    f"{at}.agent_groups: {gn!r} already belongs to {owner_g[gn]!r}"
                )
            owner_g[gn] = t.name
    if len({t.name for t in cfg.tenants}) != len(cfg.tenants):
        raise ConfigFileError(f"{where}: tenants: names must be unique")
    for q in cfg.queues:
        if q.name not in owner_q:
            raise ConfigFileError(f"{where}: queue {q.name!r} belongs to no tenant")
    for g in cfg.agent_groups:
        if g.name not in owner_g:
            raise ConfigFileError(f"{where}: agent group {g.name!r} belongs to no tenant")
    names = {f"{g.name}-{i}" for g in cfg.agent_groups for i in range(1, g.count + 1)}
    for i, a in enumerate(cfg.agents):
        at = f"{where}: agents[{i}] ({a.name})"
        if a.group not in group_names:
            raise ConfigFileError(f"{at}.group: unknown group {a.group!r}")
        if a.name in names:
            raise ConfigFileError(f"{at}.name: given twice (groups name theirs GROUP-N)")
        names.add(a.name)
        if a.token is not None:
            if len(a.token) < 8:
                raise ConfigFileError(f"{at}.token: at least 8 characters")
            if a.token in tokens:
                raise ConfigFileError(f"{at}.token: every token must be different")
            tokens.add(a.token)
    service = {t.token for t in cfg.tenants}
    for i, ad in enumerate(cfg.adapters):
        from agner.adapters.kamailio import check_settings

        if ad.token not in service:
            raise ConfigFileError(
                f"{where}: adapters[{i}].token: not the service token of any tenant"
            )
        settings = msgspec.structs.asdict(ad)
        try:
            check_settings(**{k: settings[k] for k in settings if k not in _NOT_CHECKED})
        except ValueError as exc:
            raise ConfigFileError(f"{where}: adapters[{i}].{exc}") from None


@dataclass
class CenterSetup:
    """A server configuration built: the Router, the name<->id maps and who owns what."""

    router: Router
    ids: CenterIds
    tenants: list[str]
    queue_tenant: list[int]  # by queue id: tenant index
    agent_tenant: list[int]  # by agent id
    agent_wrap_up_us: list[int]
    tokens: dict[str, tuple[int, int]]  # token -> (tenant index, agent id or -1)


def build_center(cfg: ServerConfig) -> CenterSetup:
    """The Router of a checked server configuration.

    As :func:`build_router`, then the named agents (after the groups' agents,
    in file order). Queues and agents carry their tenant into the core, which
    never offers a contact to another tenant's agent.

    Raises:
        ConfigFileError: a queue overflows to another tenant's queue.
    """
    tenant_of_q = {q: i for i, t in enumerate(cfg.tenants) for q in t.queues}
    tenant_of_g = {g: i for i, t in enumerate(cfg.tenants) for g in t.agent_groups}
    ids = CenterIds(skills=skill_ids_of(cfg.agent_groups))
    router = Router(seed=cfg.server.seed)
    ring_us = round(cfg.server.ring_timeout_s * _US)
    queue_tenant: list[int] = []
    for q in cfg.queues:
        ti = tenant_of_q[q.name]
        try:
            qid = router.add_queue(
                **queue_kwargs(q, ids.skills, ids.queue_id), ring_timeout_us=ring_us, tenant=ti
            )
        except RouterError as exc:
            raise ConfigFileError(f"queues ({q.name}): {exc}") from None
        ids.queues.append(q.name)
        ids.queue_id[q.name] = qid
        queue_tenant.append(ti)
    groups = {g.name: g for g in cfg.agent_groups}
    members = [(f"{g.name}-{i}", g.name) for g in cfg.agent_groups for i in range(1, g.count + 1)]
    members += [(a.name, a.group) for a in cfg.agents]
    agent_tenant: list[int] = []
    wrap: list[int] = []
    for name, gname in members:
        g = groups[gname]
        ti = tenant_of_g[gname]
        skills = {ids.skills[s]: lv for s, lv in g.skills.items()}
        aid = router.add_agent(
            skills, wrap_up_us=round(g.wrap_up_s * _US), tenant=ti, **agent_kwargs(g)
        )
        ids.agents.append(name)
        ids.agent_id[name] = aid
        agent_tenant.append(ti)
        wrap.append(round(g.wrap_up_s * _US))
    tokens = {t.token: (i, -1) for i, t in enumerate(cfg.tenants)}
    for a in cfg.agents:
        if a.token is not None:
            aid = ids.agent_id[a.name]
            tokens[a.token] = (agent_tenant[aid], aid)
    return CenterSetup(
        router, ids, [t.name for t in cfg.tenants], queue_tenant, agent_tenant, wrap, tokens
    )
