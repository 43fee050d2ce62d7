"""FreeSWITCH adapter: the inbound event socket (mod_event_socket).

The adapter connects to FreeSWITCH's event socket (default 127.0.0.1:8021),
answers ``auth/request`` with ``auth PASSWORD``, subscribes to plain channel
events, and follows the calls that the dialplan parks for agner::

    <action application="set" data="agner_queue=sales"/>
    <action application="park"/>

``CHANNEL_PARK`` with ``variable_agner_queue`` is an arrival (call id: the
channel's Unique-ID); agner's ``connect`` becomes ``sendmsg`` executing
``bridge`` to the agent's dial string; ``CHANNEL_BRIDGE`` is the answer; a
``CHANNEL_EXECUTE_COMPLETE`` of that bridge while still ringing is a failure
(busy, no answer: the channel is parked again and agner picks another agent);
``CHANNEL_HANGUP_COMPLETE`` ends the call. Contacts agner ends are killed with
``uuid_kill``. After every (re)connection, ``show channels as json`` tells
which calls still exist and which parked ones are new.

Frames: a header block (``Name: value`` lines ending with an empty line), then
``Content-Length`` bytes of body. Event bodies are header blocks again, their
values URL-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from urllib.parse import unquote

from agner.adapters.base import SwitchAdapter, SwitchCall
from agner.adapters.link import Backoff, parse_address

__all__ = ["FreeSwitchAdapter", "parse_headers", "read_frame"]

log = logging.getLogger("agner.adapters.freeswitch")

_MAX_BODY = 1 << 24

_CAUSES = {
    "rejected": "CALL_REJECTED",
    "timed_out": "NO_ANSWER",
    "voicemail": "NORMAL_CLEARING",
    "callback": "NORMAL_CLEARING",
}


def parse_headers(block: bytes, *, decode: bool = False) -> dict[str, str]:
    """``Name: value`` lines -> dict; ``decode``: URL-decode the values (event
    bodies). Lines without a colon are skipped."""
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            value = value.strip()
            out[name.strip()] = unquote(value) if decode else value
    return out


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
    """One event-socket frame: its headers and its body (b"" if none)."""
    head = await reader.readuntil(b"\n\n")
    headers = parse_headers(head)
    n = headers.get("Content-Length", "0")
    if not n.isdigit() or int(n) > _MAX_BODY:
        raise ValueError(f"bad Content-Length {n!r}")
    body = await reader.readexactly(int(n)) if int(n) else b""
    return headers, body


class FreeSwitchAdapter(SwitchAdapter):
    """Bridges a FreeSWITCH event socket and an ``agner serve`` switch session.

    ``agents``: agent name -> bridge dial string (``user/1001``, ``sofia/...``).
    """

    name = "freeswitch"

    def __init__(
        self,
        *,
        esl: str,
        password: str,
        server: str,
        token: str,
        agents: dict[str, str],
        login: list[str] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(server=server, token=token, agents=agents, login=login, backoff=backoff)
        self.host, self.port = parse_address(esl)
        self.password = password
        self.writer: asyncio.StreamWriter | None = None
        self.replies: deque[asyncio.Future[tuple[dict[str, str], bytes]]] = deque()

    # ------------------------------------------------------------ the session

    async def session(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            headers, _ = await asyncio.wait_for(read_frame(reader), 10)
            if headers.get("Content-Type") != "auth/request":
                raise ConnectionError(f"no auth/request: {headers}")
            writer.write(f"auth {self.password}\n\n".encode())
            headers, _ = await asyncio.wait_for(read_frame(reader), 10)
            if not headers.get("Reply-Text", "").startswith("+OK"):
                raise ConnectionError(f"auth refused: {headers.get('Reply-Text')}")
            self.writer = writer
            self.replies.clear()
            reading = asyncio.get_running_loop().create_task(self._read(reader))
            try:
                await self.command(
                    "event plain CHANNEL_PARK CHANNEL_BRIDGE CHANNEL_EXECUTE_COMPLETE "
                    "CHANNEL_HANGUP_COMPLETE"
                )
                self.switch_connections += 1
                self.backoff.reset()
                await self._reconcile()
                await reading
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
        finally:
            self.writer = None
            for f in self.replies:
                if not f.done():
                    f.set_exception(ConnectionError("event socket closed"))
            self.replies.clear()
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                headers, body = await read_frame(reader)
            except ValueError as exc:
                self.malformed += 1
                log.warning("freeswitch: malformed frame: %s", exc)
                continue
            ctype = headers.get("Content-Type", "")
            if ctype in ("command/reply", "api/response"):
                if self.replies:
                    f = self.replies.popleft()
                    if not f.done():
                        f.set_result((headers, body))
                else:
                    log.warning("freeswitch: a reply nobody asked for: %s", headers)
            elif ctype == "text/event-plain":
                self._event(body)
            elif ctype == "text/disconnect-notice":
                log.warning("freeswitch: disconnect notice")
                return
            else:
                log.debug("freeswitch: skipped %s", ctype)

    def _send(self, text: str) -> asyncio.Future[tuple[dict[str, str], bytes]]:
        f: asyncio.Future[tuple[dict[str, str], bytes]] = asyncio.get_running_loop().create_future()
        if self.writer is None:
            f.set_exception(ConnectionError("event socket down"))
            return f
        self.replies.append(f)  # replies come in the order of the commands
        self.writer.write(text.encode())
        return f

    async def command(self, line: str) -> str:
        """Send one command; return its Reply-Text (command/reply) or body (api/response)."""
        headers, body = await asyncio.wait_for(self._send(line + "\n\n"), 10)
        return body.decode("utf-8", "replace") if body else headers.get("Reply-Text", "")

    def _fire(self, text: str, what: str) -> None:
        f = self._send(text)

        def done(f: asyncio.Future[tuple[dict[str, str], bytes]]) -> None:
            if f.exception() is not None:
                return
            headers, body = f.result()
            reply = body.decode("utf-8", "replace") if body else headers.get("Reply-Text", "")
            if reply.startswith("-ERR"):
                log.warning("freeswitch: %s: %s", what, reply.strip())

        f.add_done_callback(done)

    # ------------------------------------------------------------ events

    def _event(self, body: bytes) -> None:
        head, _, _ = body.partition(b"\n\n")
        ev = parse_headers(head, decode=True)
        name = ev.get("Event-Name", "")
        uuid = ev.get("Unique-ID", "")
        if not name or not uuid:
            self.malformed += 1
            log.warning("freeswitch: event without a name or Unique-ID: %r", body[:200])
            return
        if name == "CHANNEL_PARK":
            queue = ev.get("variable_agner_queue")
            if queue and uuid not in self.calls:
                self.arrived(
                    uuid,
                    queue,
                    uuid,
                    ev.get("Caller-Caller-ID-Number") or None,
                    ev.get("Caller-Destination-Number") or None,
                )
        elif name == "CHANNEL_BRIDGE":
            self.answered(uuid)
        elif name == "CHANNEL_EXECUTE_COMPLETE":
            if ev.get("Application") == "bridge":
                self.failed(uuid)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.hung_up(uuid)

    # ------------------------------------------------------------ to FreeSWITCH

    def put_through(self, call: SwitchCall, dial: str) -> None:
        self._fire(
            f"sendmsg {call.handle}\ncall-command: execute\nexecute-app-name: bridge\n"
            f"execute-app-arg: {dial}\n\n",
            f"bridge {call.call_id}",
        )

    def end_call(self, call: SwitchCall, to: str) -> None:
        self._fire(f"api uuid_kill {call.handle} {_CAUSES.get(to, 'NORMAL_CLEARING')}\n\n", "kill")

    async def _reconcile(self) -> None:
        """Which calls still exist, and which parked ones arrived while the link was down."""
        text = await self.command("api show channels as json")
        try:
            rows = json.loads(text).get("rows") or []
        except (ValueError, AttributeError):
            log.warning("freeswitch: unreadable channel list: %r", text[:200])
            return
        present = {str(r.get("uuid")) for r in rows if isinstance(r, dict)}
        self.still_there(present)
        for r in rows:
            if not isinstance(r, dict) or r.get("application") != "park":
                continue
            uuid = str(r.get("uuid"))
            if uuid in self.calls:
                continue
            queue = (await self.command(f"api uuid_getvar {uuid} agner_queue")).strip()
            if queue and queue != "_undef_" and not queue.startswith("-ERR"):
                self.arrived(uuid, queue, uuid, r.get("cid_num") or None, r.get("dest") or None)
