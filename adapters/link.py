"""The adapters' side of ``agner serve``: one switch session over the TCP transport.

:class:`AgnerLink` keeps a service session (``hello`` with ``switch = true``)
open to the server's ``--tcp`` address: it reconnects with exponential backoff
when the link drops, holds the messages sent while it was down and sends them,
in order, once it is back, then calls the adapter's ``on_up`` so the adapter
can reconcile its calls with the server's contacts (``query_contact``).
Frames are 4-byte big-endian lengths and MessagePack maps (docs/PROTOCOL.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from agner.protocol import Error, Hello, ServerMessage, Welcome, take_frames

__all__ = ["AgnerLink", "Backoff", "Batcher", "parse_address"]

log = logging.getLogger("agner.adapters")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ServerMessage)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError on anything else."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    return host, int(port)


class Backoff:
    """Delays between reconnection attempts: ``first`` doubling up to ``most`` seconds;
    ``reset`` after a connection that worked."""

    def __init__(self, first: float = 0.05, most: float = 5.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.most, self.delay * 2)
        return d

    def reset(self) -> None:
        self.delay = self.first


def no_delay(transport: asyncio.BaseTransport) -> Any:
    """Send small frames at once (TCP_NODELAY): events are latency, not bulk.
    Returns the transport's socket (None if it has none)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def quickack(sock: Any) -> None:
    """Acknowledge the peer's segments at once (Linux's TCP_QUICKACK is one-shot:
    re-armed after every read). A peer that writes with Nagle on (Kamailio's
    evapi) otherwise waits up to 40 ms for our delayed ACK before its next event.
    ``sock``: the transport's socket, kept (asking the transport for it each
    time builds a new socket object)."""
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class Batcher:
    """Frames written during one turn of the event loop leave in one write: one
    system call (and one loopback wake-up of the peer) for a burst of events
    instead of one per frame. The write happens at the end of the turn, before
    the loop waits for I/O again."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parts: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self.parts:
            self.loop.call_soon(self.flush)
        self.parts.append(data)

    def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts.clear()
            if not self.transport.is_closing():
                self.transport.write(data)  # type: ignore[attr-defined]


class _Proto(asyncio.Protocol):
    def __init__(self, link: AgnerLink) -> None:
        self.link = link
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.out: Batcher | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.out = Batcher(transport)
        no_delay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for frame in take_frames(self.buf):
            try:
                msg = _decoder.decode(frame)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("agner link: skipped a frame the adapter cannot read: %s", exc)
                continue
            self.link._received(msg)


class AgnerLink:
    """A switch session to ``agner serve`` that survives the server going away.

    ``on_message(msg)`` gets every server message after the ``welcome``;
    ``on_up()`` runs after each (re)connection, once the messages held while
    down have been sent; ``on_down()`` when the link drops. ``send`` never
    blocks and never fails: while the link is down it holds up to ``hold``
    messages (the oldest are dropped past that, and reconciliation repairs it).
    """

    def __init__(
        self,
        address: str,
        token: str,
        on_message: Callable[[Any], None],
        *,
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[], None] | None = None,
        backoff: Backoff | None = None,
        hold: int = 100_000,
    ) -> None:
        self.host, self.port = parse_address(address)
        self.token = token
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.backoff = backoff or Backoff()
        self.held: deque[bytes] = deque(maxlen=hold)
        self.proto: _Proto | None = None
        self.up = False
        self.connections = 0  # successful sessions so far
        self.tenant = ""
        self._welcome: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_up(self, timeout: float = 10.0) -> None:
        """Wait until the session is open (welcomed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.up:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no session with agner at {self.host}:{self.port}")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._closing = True
        if self.proto is not None and self.proto.transport is not None:
            if self.proto.out is not None:
                self.proto.out.flush()
            self.proto.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            proto: _Proto | None = None
            try:
                _, proto = await loop.create_connection(lambda: _Proto(self), self.host, self.port)
                self.proto = proto
                self._welcome = loop.create_future()
                self._write(_encoder.encode(Hello(self.token, switch=True, ref=1)))
                welcome = await asyncio.wait_for(self._welcome, 10.0)
                if isinstance(welcome, Error):
                    log.error("agner refused the adapter: %s %s", welcome.code, welcome.message)
                    proto.transport.close()  # type: ignore[union-attr]
                    await asyncio.sleep(self.backoff.next())
                    continue
                self.tenant = welcome.tenant
                self.up = True
                self.connections += 1
                self.backoff.reset()
                while self.held:
                    self._write(self.held.popleft())
                log.info("agner link up (%s:%d, tenant %s)", self.host, self.port, self.tenant)
                if self.on_up is not None:
                    self.on_up()
                await proto.lost
            except (OSError, TimeoutError) as exc:
                log.info("agner link: cannot connect to %s:%d: %s", self.host, self.port, exc)
            finally:
                was_up, self.up = self.up, False
                if proto is not None and proto.transport is not None:
                    proto.transport.close()
                self.proto = None
                if was_up:
                    log.warning("agner link down; reconnecting")
                    if self.on_down is not None:
                        self.on_down()
            if not self._closing:
                await asyncio.sleep(self.backoff.next())

    # ------------------------------------------------------------ traffic

    def send(self, msg: Any) -> None:
        body = _encoder.encode(msg)
        if self.up:
            self._write(body)
        else:
            self.held.append(body)

    def _write(self, body: bytes) -> None:
        proto = self.proto
        if proto is None or proto.out is None:
            self.held.append(body)
            return
        proto.out.write(len(body).to_bytes(4, "big") + body)

    def _received(self, msg: Any) -> None:
        w = self._welcome
        if w is not None and not w.done():
            if isinstance(msg, (Welcome, Error)):
                w.set_result(msg)
            return
        try:
            self.on_message(msg)
        except Exception:  # an adapter bug must not take the link down with it
            log.exception("adapter failed on %r", msg)
