"""The router benchmark behind ``agner bench router``.

One workload, three drivers: the C-level API (core/workload.pyx), the Python
API of :class:`agner.Router`, and the pure-Python reference router of the
tests. The center has 50 skills, agents with 1 to 8 skills at levels 1-10,
and 200 queues that each require one or two skills, every strategy in turn;
arrivals go to queues in proportion to their eligible agents, at 95% of the
agents' capacity. Each driver also returns a checksum of the agents it saw
offered, so the run shows the three made the same decisions.

The *extended* configuration (``--config extended``) routes the same center
with issue 3's routing: every queue has requirement steps (its skills at two
levels more for 10 s, then as required, then after 60 s any agent with one of
its skills), priorities age (one level worth 30 s of waiting), and every third
queue offers each contact to two agents at once; a quarter of the agents are
multi-channel (voice 1, chat 3, e-mail 2), and every tenth queue is a chat queue
(a quarter of all contacts, chats) and every twentieth an e-mail queue (a tenth:
e-mails), as digital contacts have queues of their own in a real center.

The two configurations run at the same *occupancy*, not the same arrival rate.
A multi-channel agent holds up to five digital contacts at once, so the basic
configuration's arrivals (95% of one contact per agent) would leave the extended
center's agents idle 17% of their time against 5%, with a hundredth of the
abandons, and the cost of an event depends on how many agents wait idle in the
pools (1,000 agents, basic: 67 ns at 94% occupancy, 103 ns at 83%). The extended
configuration's arrivals are 1.2 per agent and handle time (``load``), the rate
at which its agents are as occupied as the basic ones (94-95% at 1,000 and 10,000
agents); each run reports the occupancy it had (:func:`occupancy`).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agner.core._api import AgentState, Channel, DecisionKind, Strategy
from agner.core.router import Router
from agner.core.workload import run as run_c

__all__ = [
    "Workload",
    "build_router",
    "drive_python",
    "run_benchmark",
    "load_reference",
    "occupancy",
    "time_c_level",
]

_MASK = (1 << 64) - 1
# The multi-channel agents of the extended configuration.
MULTI = {Channel.VOICE: 1, Channel.CHAT: 3, Channel.EMAIL: 2}
_NEVER = (1 << 63) - 1
# Arrivals per agent per handle time of each configuration: the same occupancy.
BASIC_LOAD = 0.95
EXTENDED_LOAD = 1.2


@dataclass(frozen=True)
class Workload:
    """The shape of the benchmark center and its load (times in microseconds)."""

    agents: int
    skills: int = 50
    queues: int = 200
    # Arrivals per agent per handle time; None: 0.95 (basic) or 1.2 (extended),
    # the same occupancy for both (module docstring).
    load: float | None = None
    handle_us: int = 300_000_000
    patience_us: int = 60_000_000
    break_us: int = 30_000_000
    wrap_up_us: int = 5_000_000
    rona_per_mille: int = 20
    seed: int = 1
    extended: bool = False  # steps, priority aging, parallel offers

    @property
    def arrival_load(self) -> float:
        """`load`, or the configuration's default."""
        if self.load is not None:
            return self.load
        return EXTENDED_LOAD if self.extended else BASIC_LOAD

    @property
    def dt_us(self) -> int:
        """Time between arrivals for the target load."""
        return max(1, round(self.handle_us / (self.agents * self.arrival_load)))

    @property
    def driver_args(self) -> tuple[int, int, int, int, int, int]:
        """The timing of core/workload.pyx `run` and `run_many`, in their order:
        dt_us, handle_us, patience_us, break_us, rona_per_mille, seed."""
        return (
            self.dt_us,
            self.handle_us,
            self.patience_us,
            self.break_us,
            self.rona_per_mille,
            self.seed,
        )


@dataclass(frozen=True)
class Center:
    """Agents' skills and queues' requirements, plus the arrival weights."""

    agent_skills: list[dict[int, int]]
    queue_require: list[dict[int, int]]
    queue_weight: np.ndarray


def build_center(w: Workload) -> Center:
    rng = np.random.default_rng(w.seed)
    levels = np.zeros((w.agents, w.skills), dtype=np.int16)
    agent_skills = []
    for a in range(w.agents):
        k = int(rng.integers(1, 9))
        chosen = rng.choice(w.skills, size=k, replace=False)
        lv = rng.integers(1, 11, size=k)
        levels[a, chosen] = lv
        agent_skills.append({int(s): int(v) for s, v in zip(chosen, lv, strict=True)})
    queue_require = []
    weight = np.zeros(w.queues)
    for qi in range(w.queues):
        n_req = 2 if rng.random() < 0.2 else 1
        req_skills = rng.choice(w.skills, size=n_req, replace=False)
        req = {int(sk): int(rng.integers(1, 6)) for sk in req_skills}
        queue_require.append(req)
        ok = np.ones(w.agents, dtype=bool)
        for sk, minimum in req.items():
            ok &= levels[:, sk] >= minimum
        weight[qi] = ok.sum()
    return Center(agent_skills, queue_require, weight / weight.sum())


class RouterLike(Protocol):
    """The Python API shared by agner.Router and the reference router."""

    def add_queue(self, require: Any = ..., **kw: Any) -> int: ...
    def add_agent(self, skills: Any, **kw: Any) -> int: ...
    def login(self, agent: int, now: int) -> None: ...
    def set_ready(self, agent: int, now: int) -> None: ...
    def arrive(self, queue: int, now: int, *, channel: Channel = ...) -> int: ...
    def accept(self, agent: int, contact: int, now: int) -> None: ...
    def no_answer(self, agent: int, contact: int, now: int) -> None: ...
    def complete(self, agent: int, contact: int, now: int) -> None: ...
    def abandon(self, contact: int, now: int) -> None: ...
    def advance(self, now: int) -> None: ...
    def next_deadline(self) -> int | None: ...
    def take_decisions(self) -> list[Any]: ...
    def agent_contact(self, agent: int) -> int | None: ...


def build_router(factory: Any, w: Workload, center: Center) -> Any:
    """A router with the center's queues and agents, every agent logged in and ready."""
    r = factory(seed=w.seed)
    strategies = list(Strategy)
    for q, req in enumerate(center.queue_require):
        kw: dict[str, Any] = {"strategy": strategies[q % len(strategies)], "priority": q % 3}
        if not w.extended:
            r.add_queue(req, **kw)
            continue
        strict = {s: min(lv + 2, 10) for s, lv in req.items()}
        steps: list[tuple[int, dict[int, int]]] = [(0, strict), (10_000_000, req)]
        # "any agent with one of its skills": one step per skill, a microsecond
        # apart (steps only add agents, so together they are the disjunction)
        steps += [(60_000_000 + k, {s: 1}) for k, s in enumerate(sorted(req))]
        kw["priority_weight_us"] = 30_000_000
        if q % 3 == 0:
            kw["parallel"] = 2
        r.add_queue(steps=steps, **kw)
    for a, skills in enumerate(center.agent_skills):
        kw = {"capacity": MULTI} if w.extended and a % 4 == 3 else {}
        r.add_agent(skills, wrap_up_us=w.wrap_up_us if a % 2 else 0, **kw)
    for a in range(w.agents):
        r.login(a, 0)
        r.set_ready(a, 0)
    r.take_decisions()
    return r


def arrival_queues(w: Workload, center: Center, n: int) -> np.ndarray:
    rng = np.random.default_rng(w.seed + 1)
    return rng.choice(w.queues, size=n, p=center.queue_weight).astype(np.int32)


def arrival_channels(w: Workload, n: int, queues: np.ndarray | None = None) -> np.ndarray:
    """Each arrival's channel: all voice, or in the extended configuration a chat
    for 25% of the arrivals and an e-mail for 10%, moved to the chat queues (every
    tenth) and e-mail queues (every twentieth, from the fifth) of `queues`."""
    out = np.zeros(n, dtype=np.int32)
    if not w.extended or queues is None:
        return out
    rng = np.random.default_rng(w.seed + 2)
    kind = rng.choice(3, size=n, p=(0.65, 0.25, 0.10))
    chat = np.arange(0, w.queues, 10)
    email = np.arange(5, w.queues, 20)
    queues[kind == 1] = rng.choice(chat, size=int((kind == 1).sum()))
    queues[kind == 2] = rng.choice(email, size=int((kind == 2).sum()))
    out[:] = kind
    return out


def arrival_chains(r: Router, queues: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """The step chain of each arrival (its queue and channel), for the C-level driver."""
    table = {}
    out = np.empty(len(queues), dtype=np.int32)
    for i, (q, ch) in enumerate(zip(queues.tolist(), channels.tolist(), strict=True)):
        key = (q, ch)
        if key not in table:
            table[key] = r._chain_for(q, (), ch)
        out[i] = table[key]
    return out


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def drive_python(
    r: RouterLike, queues: Sequence[int], w: Workload, channels: Sequence[int] | None = None
) -> tuple[int, int, int]:
    """The workload of core/workload.pyx, through the Python API (same order of events).

    Returns (events, offers, checksum) exactly as the C-level driver does.
    """
    dt, handle, patience, brk = w.dt_us, w.handle_us, w.patience_us, w.break_us
    rona, seed = w.rona_per_mille, w.seed
    active: deque[tuple[int, int, int]] = deque()
    breaks: deque[tuple[int, int]] = deque()
    arrived: list[int] = []
    live: set[int] = set()
    events = offers = checksum = 0
    i = ab = 0
    n = len(queues)
    offer = DecisionKind.OFFER
    parallel = w.extended
    while i < n:
        t_arr = (i + 1) * dt
        t_act = active[0][0] if active else _NEVER
        t_brk = breaks[0][0] if breaks else _NEVER
        t_ab = (ab + 1) * dt + patience if ab < i else _NEVER
        dl = r.next_deadline()
        t_dl = _NEVER if dl is None else dl
        t = min(t_dl, t_act, t_brk, t_ab, t_arr)
        if t == t_dl:
            r.advance(t)
        elif t == t_act:
            _, a, c = active.popleft()
            r.complete(a, c, t)
        elif t == t_brk:
            _, a = breaks.popleft()
            r.set_ready(a, t)
        elif t == t_ab:
            c = arrived[ab]
            ab += 1
            if c not in live:
                continue
            r.abandon(c, t)
            live.discard(c)
        else:
            if channels is None or not channels[i]:
                c = r.arrive(int(queues[i]), t)
            else:
                c = r.arrive(int(queues[i]), t, channel=Channel(channels[i]))
            live.add(c)
            arrived.append(c)
            i += 1
        events += 1
        decisions = r.take_decisions()
        while decisions:
            for d in decisions:
                if d.kind != offer:
                    continue
                if parallel and r.agent_contact(d.agent) != d.contact:
                    continue  # a parallel offer another agent has answered
                checksum = (checksum * 1000003 + d.agent + 1) & _MASK
                offers += 1
                events += 1
                if _mix(seed + offers) % 1000 < rona:
                    r.no_answer(d.agent, d.contact, d.time)
                    breaks.append((d.time + brk, d.agent))
                else:
                    r.accept(d.agent, d.contact, d.time)
                    live.discard(d.contact)
                    active.append((d.time + handle, d.agent, d.contact))
            decisions = r.take_decisions()
    return events, offers, checksum


def load_reference() -> type | None:
    """The reference router of the test suite, when running from a source checkout."""
    here = Path(__file__).resolve()
    for root in (here.parent.parent, Path.cwd()):
        path = root / "tests" / "reference_router.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("agner_reference_router", path)
            if spec is None or spec.loader is None:
                return None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up there
            spec.loader.exec_module(module)
            return getattr(module, "ReferenceRouter", None)
    return None


def _figures(events: int, seconds: float) -> dict[str, float]:
    return {
        "events_per_second": events / seconds,
        "ns_per_event": seconds * 1e9 / events,
    }


def occupancy(r: Router) -> float:
    """The share of its agents' working time (READY, RESERVED, BUSY and WRAP_UP)
    spent holding a contact (RESERVED, BUSY and WRAP_UP), up to the router's time:
    the occupancy of workforce management, whose idle part is READY."""
    held = ready = 0
    for a in range(r.n_agents):
        t = r.agent_stats(a, r.now).time_in_state_us
        ready += t[AgentState.READY]
        held += t[AgentState.RESERVED] + t[AgentState.BUSY] + t[AgentState.WRAP_UP]
    return held / (held + ready) if held + ready else 0.0


def time_c_level(
    w: Workload, center: Center, queues: np.ndarray, channels: np.ndarray
) -> tuple[tuple[int, int, int], float, float]:
    """Build the router and run the arrivals through the C-level API: returns
    (events, offers, checksum), the seconds the run took (not the build) and the
    agents' occupancy over the run."""
    r = build_router(Router, w, center)
    chains = arrival_chains(r, queues, channels) if w.extended else None
    t0 = time.perf_counter()
    out = run_c(r, queues, *w.driver_args, chains)
    seconds = time.perf_counter() - t0
    return out, seconds, occupancy(r)


def run_benchmark(
    agents: int,
    *,
    arrivals: int | None = None,
    python_arrivals: int | None = None,
    reference_arrivals: int | None = None,
    seed: int = 1,
    reference: bool = True,
    extended: bool = False,
    load: float | None = None,
) -> dict[str, Any]:
    """Measure the three drivers on one workload and return the figures.

    Arrival counts default to about 200 mean handle times of load for the
    C-level API (and at least 1,000,000 arrivals), a tenth of that for the
    Python API and a hundredth for the reference router. Each driver's
    (events, offers, checksum) is compared with the C-level driver's on the
    same arrivals; ``agree`` says whether all matched. `load` (arrivals per agent
    per handle time) defaults to the configuration's (:class:`Workload`); the
    result gives it, and the occupancy the C-level run had.
    """
    w = Workload(agents=agents, seed=seed, extended=extended, load=load)
    center = build_center(w)
    n_c = arrivals or max(1_000_000, 200 * agents)
    n_py = python_arrivals or max(20_000, n_c // 10)
    n_ref = reference_arrivals or max(2_000, n_c // 100)
    queues = arrival_queues(w, center, max(n_c, n_py, n_ref))
    channels = arrival_channels(w, len(queues), queues)

    def timed_c(n: int) -> tuple[tuple[int, int, int], float, float]:
        return time_c_level(w, center, queues[:n], channels[:n])

    def timed_py(factory: Any, n: int) -> tuple[tuple[int, int, int], float]:
        r = build_router(factory, w, center)
        if extended and factory is Router:
            # Its chat and e-mail pools built before the clock starts, as for
            # the C-level run (time_c_level), not by the run's first contacts.
            arrival_chains(r, queues[:n], channels[:n])
        t0 = time.perf_counter()
        out = drive_python(r, queues[:n].tolist(), w, channels[:n].tolist())
        return out, time.perf_counter() - t0

    c_out, c_s, c_occ = timed_c(n_c)
    result: dict[str, Any] = {
        "config": "extended" if extended else "basic",
        "agents": agents,
        "skills": w.skills,
        "queues": w.queues,
        "arrivals": n_c,
        "load": w.arrival_load,
        "occupancy": c_occ,
        "events": c_out[0],
        **_figures(c_out[0], c_s),
    }
    agree = True
    py_out, py_s = timed_py(Router, n_py)
    agree &= py_out == timed_c(n_py)[0]
    result["python"] = {"arrivals": n_py, "events": py_out[0], **_figures(py_out[0], py_s)}
    ref_cls = load_reference() if reference else None
    if ref_cls is not None:
        ref_out, ref_s = timed_py(ref_cls, n_ref)
        agree &= ref_out == timed_c(n_ref)[0]
        result["reference"] = {
            "arrivals": n_ref,
            "events": ref_out[0],
            **_figures(ref_out[0], ref_s),
        }
        result["c_over_reference"] = (
            result["events_per_second"] / result["reference"]["events_per_second"]
        )
    else:
        result["reference"] = {
            "error": "reference router not found (tests/reference_router.py is in a source "
            "checkout of agner; run from there)"
            if reference
            else "skipped (--no-reference)"
        }
    result["c_over_python"] = result["events_per_second"] / result["python"]["events_per_second"]
    result["agree"] = agree
    result["machine"] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    return result


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
