"""The adapters' side of ``agner serve``: one switch session, over the TCP
transport or inside the server's own process.

:class:`AgnerLink` keeps a service session (``hello`` with ``switch = true``)
open to the server's ``--tcp`` address: it reconnects with exponential backoff
when the link drops, holds the messages sent while it was down and sends them,
in order, once it is back, then calls the adapter's ``on_up`` so the adapter
can reconcile its calls with the server's contacts (``query_contact``).
Frames are 4-byte big-endian lengths and MessagePack maps (docs/PROTOCOL.md).

:class:`LocalLink` is the same session for an adapter that ``agner serve``
runs in its own event loop (its ``[[adapters]]`` table): the same frames go
through the same session checks (token, size, rate) without a socket, and
the server's messages reach the adapter without being encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from agner.protocol import Error, Hello, ServerMessage, Welcome, take_frames

if TYPE_CHECKING:
    from agner.server import LocalSession, Server

__all__ = ["AgnerLink", "Backoff", "Batcher", "LocalLink", "open_link", "parse_address"]

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


class _Link:
    """What both links share: the messages held while down, the welcome, and
    handing the server's messages to the adapter."""

    def __init__(
        self,
        token: str,
        on_message: Callable[[Any], None],
        on_up: Callable[[], None] | None,
        on_down: Callable[[], None] | None,
        hold: int,
    ) -> None:
        self.token = token
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.held: deque[bytes] = deque(maxlen=hold)
        self.up = False
        self.connections = 0  # successful sessions so far
        self.tenant = ""
        self._welcome: asyncio.Future[Any] | None = None
        self._closing = False

    async def wait_up(self, timeout: float = 10.0) -> None:
        """Wait until the session is open (welcomed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.up:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no session with agner ({self.where})")
            await asyncio.sleep(0.01)

    @property
    def where(self) -> str:
        raise NotImplementedError

    def send(self, msg: Any) -> None:
        body = _encoder.encode(msg)
        if self.up:
            self._write(body)
        else:
            self.held.append(body)

    def _write(self, body: bytes) -> None:
        raise NotImplementedError

    def _welcomed(self, welcome: Welcome) -> None:
        """The session is open: what was held goes first, then the adapter reconciles."""
        self.tenant = welcome.tenant
        self.up = True
        self.connections += 1
        while self.held:
            self._write(self.held.popleft())
        log.info("agner link up (%s, tenant %s)", self.where, self.tenant)
        if self.on_up is not None:
            self.on_up()

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


class AgnerLink(_Link):
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
        super().__init__(token, on_message, on_up, on_down, hold)
        self.host, self.port = parse_address(address)
        self.backoff = backoff or Backoff()
        self.proto: _Proto | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

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
                self.backoff.reset()
                self._welcomed(welcome)
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

    def _write(self, body: bytes) -> None:
        proto = self.proto
        if proto is None or proto.out is None:
            self.held.append(body)
            return
        proto.out.write(len(body).to_bytes(4, "big") + body)


class LocalLink(_Link):
    """The switch session of an adapter inside ``agner serve``'s own process
    and event loop (``[[adapters]]`` in its configuration).

    The adapter's messages are encoded as for the TCP transport and the frames
    written during one turn of the loop are handed to the server's session at
    the end of that turn, as one read of a TCP connection would be: the same
    checks (token, size, rate), one journal write per batch, the replies and
    decisions after it. The server's messages reach ``on_message`` as they
    are, without being encoded. A refused ``hello`` (a wrong token) is kept in
    ``refused`` and makes :meth:`wait_up` fail: there is nothing to retry.
    """

    def __init__(
        self,
        server: Server,
        token: str,
        on_message: Callable[[Any], None],
        *,
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[], None] | None = None,
        hold: int = 100_000,
    ) -> None:
        super().__init__(token, on_message, on_up, on_down, hold)
        self.server = server
        self.session: LocalSession | None = None
        self.refused: Error | None = None
        self._frames: list[bytes] = []

    @property
    def where(self) -> str:
        return "in agner serve's process"

    def start(self) -> None:
        from agner.server import LocalSession

        loop = asyncio.get_running_loop()
        self.session = LocalSession(self.server, self._received)
        self._welcome = loop.create_future()
        self._welcome.add_done_callback(self._answered)
        self._write(_encoder.encode(Hello(self.token, switch=True, ref=1)))

    def _answered(self, fut: asyncio.Future[Any]) -> None:
        answer = fut.result()
        if isinstance(answer, Error):
            self.refused = answer
            log.error("agner refused the adapter: %s %s", answer.code, answer.message)
            return
        self._welcomed(answer)

    async def wait_up(self, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.up:
            if self.refused is not None:
                raise PermissionError(
                    f"agner refused the adapter: {self.refused.code} {self.refused.message}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no session with agner ({self.where})")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._closing = True
        self._deliver()
        was_up, self.up = self.up, False
        if self.session is not None:
            self.session.close_session()
        if was_up and self.on_down is not None:
            self.on_down()

    def _write(self, body: bytes) -> None:
        if self._closing:
            return
        if not self._frames:
            asyncio.get_running_loop().call_soon(self._deliver)
        self._frames.append(len(body).to_bytes(4, "big") + body)

    def _deliver(self) -> None:
        if not self._frames:
            return
        data = b"".join(self._frames)
        self._frames.clear()
        session = self.session
        if session is not None and not session.closed:
            session.data_received(data)


def open_link(
    server: str | Server,
    token: str,
    on_message: Callable[[Any], None],
    *,
    on_up: Callable[[], None] | None = None,
    on_down: Callable[[], None] | None = None,
) -> AgnerLink | LocalLink:
    """The adapter's link to agner: over TCP to ``server`` (``HOST:PORT``), or,
    for a :class:`agner.server.Server`, inside that server's process."""
    if isinstance(server, str):
        return AgnerLink(server, token, on_message, on_up=on_up, on_down=on_down)
    return LocalLink(server, token, on_message, on_up=on_up, on_down=on_down)
