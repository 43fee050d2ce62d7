"""``agner load``: drive a running ``agner serve`` with simulated callers and agents.

Over the server's TCP transport (length-prefixed MessagePack), one service
session per tenant, as the tenant's switch: every agent of the configuration
is logged in and made ready; contacts arrive as a Poisson stream at ``rate``
spread evenly over the queues; each ``connect`` (the assignment) is answered
at once and hung up after an exponential handle time. The latency measured is
from sending ``arrived`` to receiving its ``connect``, on the load
generator's clock (so it includes both sides' event loops and the loopback).

At the end every contact still live is hung up and every agent logged out, so
that the server is left as it was found.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from agner.config import ConfigFileError, ServerConfig, load_server_config
from agner.protocol import (
    Answered,
    Arrived,
    Connect,
    Error,
    Hello,
    HungUp,
    Login,
    Logout,
    Ping,
    Pong,
    Ready,
    ServerMessage,
    Welcome,
    take_frames,
)
from agner.server import parse_address

__all__ = ["LoadError", "WireClient", "run_load"]


class LoadError(RuntimeError):
    """The load could not run (no server, bad configuration)."""


_decoder = msgspec.msgpack.Decoder(ServerMessage)
_encoder = msgspec.msgpack.Encoder()


class WireClient(asyncio.Protocol):
    """A TCP client of the wire protocol: ``send`` messages, get each server
    message through ``on_message`` (default: into the ``inbox`` queue)."""

    def __init__(self, on_message: Callable[[Any], None] | None = None) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.on_message = on_message or self.inbox.put_nowait
        self.lost = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(
        cls, address: str, on_message: Callable[[Any], None] | None = None
    ) -> WireClient:
        host, port = parse_address(address)
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(on_message), host, port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for frame in take_frames(self.buf):
            self.on_message(_decoder.decode(frame))

    def send(self, msg: Any) -> None:
        body = _encoder.encode(msg)
        assert self.transport is not None
        self.transport.write(len(body).to_bytes(4, "big") + body)

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def recv(self, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def request(self, msg: Any, timeout: float = 5.0) -> Any:
        """Send and wait for the next message (on a quiet connection: the reply)."""
        self.send(msg)
        return await self.recv(timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _weighted_queues(
    cfg: ServerConfig, names: set[str]
) -> tuple[list[tuple[str, str]], list[float]]:
    """The queues with weights in proportion to the agents who can serve them (an
    agent who can serve k queues counts 1/k for each), so that every queue gets
    about the same occupancy."""
    from agner.config import requirement_of

    tenant_of_q = {q: t.name for t in cfg.tenants for q in t.queues}
    tenant_of_g = {g: t.name for t in cfg.tenants for g in t.agent_groups}
    members: dict[str, int] = {}
    for g in cfg.agent_groups:
        members[g.name] = sum(1 for i in range(1, g.count + 1) if f"{g.name}-{i}" in names)
    for a in cfg.agents:
        if a.name in names:
            members[a.group] = members.get(a.group, 0) + 1
    weight = {q.name: 0.0 for q in cfg.queues}
    for g in cfg.agent_groups:
        can = [
            q.name
            for q in cfg.queues
            if tenant_of_q[q.name] == tenant_of_g[g.name]
            and all(g.skills.get(s, 0) >= lv for s, lv in requirement_of(q, q.name).items())
        ]
        for q in can:
            weight[q] += members[g.name] / len(can)
    chosen = [(q, w) for q, w in weight.items() if w > 0]
    if not chosen:
        raise LoadError("no queue can be served by the agents used")
    return [(q, tenant_of_q[q]) for q, _ in chosen], [w for _, w in chosen]


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def _load(
    config: str,
    server: str,
    rate: float,
    duration_s: float,
    handle_s: float | None,
    agents_limit: int | None,
    seed: int,
) -> dict[str, Any]:
    try:
        cfg = load_server_config(config)
    except ConfigFileError as exc:
        raise LoadError(str(exc)) from None
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    group_tenant = {g: t.name for t in cfg.tenants for g in t.agent_groups}
    agents = [
        (f"{g.name}-{i}", group_tenant[g.name])
        for g in cfg.agent_groups
        for i in range(1, g.count + 1)
    ]
    agents += [(a.name, group_tenant[a.group]) for a in cfg.agents]
    if agents_limit is not None:
        agents = agents[:agents_limit]
    if not agents:
        raise LoadError("no agents to log in")
    mean_handle = handle_s if handle_s is not None else 0.8 * len(agents) / rate
    run = f"{int(time.time() * 1000) % 10**9:x}"
    sent_at: dict[str, float] = {}
    live: dict[str, str] = {}  # call id -> tenant
    latencies: list[float] = []
    counts = {"events": 0, "errors": 0, "arrivals": 0, "assigned": 0}
    error_samples: list[str] = []
    clients: dict[str, WireClient] = {}

    def on_message(tenant: str) -> Callable[[Any], None]:
        def handle(msg: Any) -> None:
            if isinstance(msg, Connect):
                t0 = sent_at.pop(msg.call_id, None)
                if t0 is None or msg.call_id not in live:
                    return  # hung up by the clean-up at the end
                latencies.append(time.perf_counter() - t0)
                counts["assigned"] += 1
                client = clients[tenant]
                client.send(Answered(msg.call_id))
                counts["events"] += 1
                loop.call_later(rng.expovariate(1 / mean_handle), hang_up, tenant, msg.call_id)
            elif isinstance(msg, Error):
                counts["errors"] += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{msg.code}: {msg.message}")
            elif isinstance(msg, Welcome | Pong):
                clients[tenant].inbox.put_nowait(msg)

        return handle

    def hang_up(tenant: str, call_id: str) -> None:
        if live.pop(call_id, None) is not None:
            clients[tenant].send(HungUp(call_id))
            counts["events"] += 1

    tenants_used = [t.name for t in cfg.tenants if any(t.name == at for _, at in agents)]
    token = {t.name: t.token for t in cfg.tenants}
    try:
        for t in tenants_used:
            clients[t] = await WireClient.connect(server, on_message(t))
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot reach the server at {server}: {exc}") from None
    for t, c in clients.items():
        c.send(Hello(token[t], switch=True))
        reply = await c.recv(10)
        if not isinstance(reply, Welcome):
            raise LoadError(f"the server refused tenant {t!r}'s token")
    for name, t in agents:
        clients[t].send(Login(agent=name))
        clients[t].send(Ready(agent=name))
        counts["events"] += 2
    for c in clients.values():  # a round trip: every login is done
        await c.request(Ping(), 60)
    queues = _weighted_queues(cfg, {name for name, _ in agents})

    t_start = time.perf_counter()
    next_at = t_start
    n = 0
    while True:
        now = time.perf_counter()
        if now - t_start >= duration_s:
            break
        while next_at <= now:
            n += 1
            q, t = rng.choices(queues[0], queues[1])[0]
            call_id = f"L{run}-{n}"
            live[call_id] = t
            sent_at[call_id] = time.perf_counter()
            clients[t].send(Arrived(call_id, q))
            next_at += rng.expovariate(rate)
        await asyncio.sleep(min(0.001, max(0.0, next_at - time.perf_counter())))
    counts["arrivals"] = n
    elapsed = time.perf_counter() - t_start
    events_during = counts["events"] + n - 2 * len(agents)
    # Drain: the last offers, then leave the server as found.
    for c in clients.values():
        await c.request(Ping(), 60)
    for call_id, t in list(live.items()):
        hang_up(t, call_id)
    for name, t in agents:
        clients[t].send(Logout(agent=name))
    for c in clients.values():
        await c.request(Ping(), 60)
        c.close()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "server": server,
        "config": str(Path(config)),
        "rate": rate,
        "duration_s": round(elapsed, 3),
        "agents": len(agents),
        "mean_handle_s": mean_handle,
        "arrivals": n,
        "assigned": counts["assigned"],
        "events": events_during,
        "events_per_second": events_during / elapsed,
        "errors": counts["errors"],
        "error_samples": error_samples,
        "p50_ms": _percentile(ms, 50),
        "p90_ms": _percentile(ms, 90),
        "p99_ms": _percentile(ms, 99),
        "p999_ms": _percentile(ms, 99.9),
        "max_ms": ms[-1] if ms else float("nan"),
    }


def run_load(
    config: str,
    server: str,
    *,
    rate: float = 1000.0,
    duration_s: float = 10.0,
    handle_s: float | None = None,
    agents: int | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Run one load (see the module's docstring) and return its figures.

    ``events`` counts the messages sent during the run (arrived, answered,
    hung up), ``events_per_second`` divides by the run's length; latencies
    (``p50_ms``, ``p90_ms``, ``p99_ms``, ``p999_ms``, ``max_ms``) are from
    arrival to assignment, in milliseconds.

    Raises:
        LoadError: the configuration is unreadable or the server unreachable.
    """
    if not (rate > 0 and duration_s > 0):
        raise LoadError("--rate and --duration must be > 0")
    coro = _load(config, server, rate, duration_s, handle_s, agents, seed)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
