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
``CHANNEL_HANGUP_COMPLETE`` ends the call. Several agents offered the call at
once (a parallel offer) ring in one ``bridge`` with comma-separated dial
strings (simultaneous ring), each leg tagged ``[origination_uuid=LEG,
agner_agent=NAME]``: ``CHANNEL_ANSWER`` of a leg is its agent's answer,
``CHANNEL_HANGUP_COMPLETE`` of a leg still ringing its agent's failure,
``CHANNEL_EXECUTE_COMPLETE`` of that bridge the end of the ring (nobody
answered); ``uuid_kill LEG`` stops one agent's leg. Contacts agner ends are killed with
``uuid_kill``. After every (re)connection, ``show channels as json`` tells
which calls still exist and which parked ones are new.

A callback or click-to-dial is ``bgapi originate`` of the agent's dial string
with ``origination_uuid`` (the agent's leg; also the job's ``Job-UUID``),
``originate_timeout`` and ``call_timeout`` (``ring_s``) and ``agner_call_id``,
running ``&bridge(CUSTOMER)`` once answered (CUSTOMER: the ``dial`` template
with ``{number}``). ``CHANNEL_ANSWER`` or the job's ``+OK`` is the agent's
answer; its ``-ERR CAUSE`` the agent's failure; then ``CHANNEL_BRIDGE`` is the
customer's answer, ``CHANNEL_EXECUTE_COMPLETE`` of the bridge before it the
customer not reached (``variable_originate_disposition``), and
``CHANNEL_HANGUP_COMPLETE`` of the agent's leg the end.

Frames: a header block (``Name: value`` lines ending with an empty line), then
``Content-Length`` bytes of body. Event bodies are header blocks again, their
values URL-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from typing import Unpack
from urllib.parse import unquote

from agner.adapters.base import SwitchAdapter, SwitchCall, SwitchOptions, safe_token
from agner.adapters.link import parse_address

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

    ``agents``: agent name -> bridge dial string (``user/1001``, ``sofia/...``);
    ``dial``: the customer's dial string of a callback or click-to-dial, with
    ``{number}`` (``sofia/gateway/gw/{number}``); ``ring_s``: how long the
    agent's phone, then the customer's, may ring.
    """

    name = "freeswitch"

    def __init__(self, *, esl: str, password: str, **options: Unpack[SwitchOptions]) -> None:
        super().__init__(**options)
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
                    "event plain CHANNEL_PARK CHANNEL_ANSWER CHANNEL_BRIDGE "
                    "CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"
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

    def _fire(self, text: str, what: str, on_error: Callable[[str], None] | None = None) -> None:
        f = self._send(text)

        def done(f: asyncio.Future[tuple[dict[str, str], bytes]]) -> None:
            if f.cancelled() or f.exception() is not None:
                return
            headers, body = f.result()
            reply = body.decode("utf-8", "replace") if body else headers.get("Reply-Text", "")
            if reply.startswith("-ERR"):
                log.warning("freeswitch: %s: %s", what, reply.strip())
                if on_error is not None:
                    on_error(reply[4:].strip() or "ERR")

        f.add_done_callback(done)

    # ------------------------------------------------------------ events

    def _event(self, body: bytes) -> None:
        head, _, rest = body.partition(b"\n\n")
        ev = parse_headers(head, decode=True)
        name = ev.get("Event-Name", "")
        if name == "BACKGROUND_JOB":
            self._job(ev.get("Job-UUID", ""), rest.decode("utf-8", "replace").strip())
            return
        uuid = ev.get("Unique-ID", "")
        if not name or not uuid:
            self.malformed += 1
            log.warning("freeswitch: event without a name or Unique-ID: %r", body[:200])
            return
        if uuid in self.ring_legs or uuid in self.ended_legs:  # a leg of a parallel ring
            if name == "CHANNEL_ANSWER":
                self.leg_answered(uuid)
            elif name == "CHANNEL_HANGUP_COMPLETE":
                cause = ev.get("Hangup-Cause", "")
                # cancelled: another leg won, or the caller left (its own
                # hangup tells agner); the bridge's end covers the rest
                if cause not in ("LOSE_RACE", "ORIGINATOR_CANCEL"):
                    self.leg_failed(uuid, cause)
            return
        if name == "CHANNEL_PARK":
            queue = ev.get("variable_agner_queue")
            if queue and uuid not in self.legs:
                self.arrived(
                    uuid,
                    queue,
                    uuid,
                    ev.get("Caller-Caller-ID-Number") or None,
                    ev.get("Caller-Destination-Number") or None,
                )
        elif name == "CHANNEL_ANSWER":
            self.dial_answered(uuid)  # only a dial's agent leg: others are answered in the dialplan
        elif name == "CHANNEL_BRIDGE":
            other = ev.get("Other-Leg-Unique-ID", "")
            if other in self.ring_legs or other in self.ended_legs:  # won a parallel ring
                self.leg_answered(other)
            else:
                self.answered(uuid)
        elif name == "CHANNEL_EXECUTE_COMPLETE":
            if ev.get("Application") == "bridge":
                cause = ev.get("variable_originate_disposition") or ev.get(
                    "variable_bridge_hangup_cause", ""
                )
                call, arg = self._call(uuid), ev.get("Application-Data")
                if call is None or (arg is not None and arg != call.ring_arg):
                    return  # an older bridge's end (its agent was revoked)
                if call.offers:
                    self.ring_failed(uuid, cause)  # a parallel ring: nobody answered
                else:
                    self.failed(uuid, cause)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.hung_up(uuid, ev.get("Hangup-Cause", ""))

    def _job(self, job: str, result: str) -> None:
        """A ``bgapi originate`` ended: ``+OK UUID`` once the agent answered,
        ``-ERR CAUSE`` when its phone did not (USER_BUSY, NO_ANSWER, ...)."""
        if job not in self.legs:
            log.info("freeswitch: a background job the adapter did not start: %r", job)
            return
        if result.startswith("+OK"):
            self.dial_answered(job)
        elif result.startswith("-ERR"):
            self.dial_failed(job, result[4:].strip() or "ERR")
        else:
            self.malformed += 1
            log.warning("freeswitch: unreadable result of job %s: %r", job, result[:200])

    # ------------------------------------------------------------ to FreeSWITCH

    def put_through(self, call: SwitchCall, dial: str) -> None:
        call.ring_arg = dial
        self._fire(
            f"sendmsg {call.handle}\ncall-command: execute\nexecute-app-name: bridge\n"
            f"execute-app-arg: {dial}\n\n",
            f"bridge {call.call_id}",
        )

    def ring_all(self, call: SwitchCall, dials: list[tuple[str, str]]) -> None:
        legs = []
        for agent, dial in dials:
            leg = self.new_leg()
            tags = [f"origination_uuid={leg}"]
            if safe_token(agent):
                tags.append(f"agner_agent={agent}")
            if dial[:1] in "[{" and dial[1:2] != "]" and ("]" in dial or "}" in dial):
                # the agent's own variables stay, as this leg's
                end = dial.index("]" if dial[0] == "[" else "}")
                legs.append("[" + ",".join(tags) + "," + dial[1:end] + "]" + dial[end + 1 :])
            else:
                legs.append("[" + ",".join(tags) + "]" + dial)
            self.offer_leg(call, agent, leg)
        call.ring_arg = ",".join(legs)
        self._fire(
            f"sendmsg {call.handle}\ncall-command: execute\nexecute-app-name: bridge\n"
            f"execute-app-arg: {call.ring_arg}\n\n",
            f"bridge {call.call_id}",
        )

    def drop_leg(self, call: SwitchCall, agent: str, leg: str) -> None:
        self._fire(f"api uuid_kill {leg} ORIGINATOR_CANCEL\n\n", f"kill {agent}'s leg")

    def end_call(self, call: SwitchCall, to: str) -> None:
        self._fire(f"api uuid_kill {call.handle} {_CAUSES.get(to, 'NORMAL_CLEARING')}\n\n", "kill")

    def new_leg(self) -> str:
        return str(uuidlib.uuid4())

    def place_dial(self, call: SwitchCall, agent: str, customer: str) -> bool:
        if self.writer is None:
            return False
        ring = max(1, int(self.ring_s))
        tags = [
            f"origination_uuid={call.uid}",
            f"originate_timeout={ring}",
            f"call_timeout={ring}",  # the bridge to the customer rings as long
            "hangup_after_bridge=true",
        ]
        if safe_token(call.call_id):
            tags.append(f"agner_call_id={call.call_id}")
        if agent.startswith("{") and "}" in agent:  # the agent's own variables stay
            leg = "{" + ",".join(tags) + "," + agent[1:]
        else:
            leg = "{" + ",".join(tags) + "}" + agent
        uid = call.uid
        self._fire(
            f"bgapi originate {leg} &bridge({customer})\nJob-UUID: {uid}\n\n",
            f"originate {call.call_id}",
            lambda cause: self.dial_failed(uid, cause),
        )
        return True

    def drop_dial(self, call: SwitchCall) -> None:
        cause = "ORIGINATOR_CANCEL" if call.state == "ringing" else "NORMAL_CLEARING"
        self._fire(f"api uuid_kill {call.uid} {cause}\n\n", f"kill {call.call_id}")

    async def _reconcile(self) -> None:
        """Which calls still exist, and which parked ones arrived while the link was down."""
        text = await self.command("api show channels as json")
        try:
            rows = json.loads(text).get("rows") or []
        except (ValueError, AttributeError):
            log.warning("freeswitch: unreadable channel list: %r", text[:200])
            self.place_unsent()
            return
        rows = [r for r in rows if isinstance(r, dict)]
        self.still_there({str(r.get("uuid")) for r in rows})
        self.rings_state(
            {str(r.get("uuid")) for r in rows},
            {str(r.get("uuid")) for r in rows if r.get("callstate") in ("ACTIVE", "HELD")},
        )
        for r in rows:
            uuid = str(r.get("uuid"))
            call = self._call(uuid)
            if call is not None and call.dial is not None:
                # a dial's agent leg: did the agent, then the customer, pick up meanwhile?
                answered = r.get("callstate") in ("ACTIVE", "HELD")
                bridged = False
                if answered:
                    other = (await self.command(f"api uuid_getvar {uuid} bridge_to")).strip()
                    bridged = bool(other) and other != "_undef_" and not other.startswith("-ERR")
                self.dial_state(uuid, answered=answered, bridged=bridged)
        self.place_unsent()
        for r in rows:
            uuid = str(r.get("uuid"))
            if r.get("application") != "park" or uuid in self.legs:
                continue
            queue = (await self.command(f"api uuid_getvar {uuid} agner_queue")).strip()
            if queue and queue != "_undef_" and not queue.startswith("-ERR"):
                self.arrived(uuid, queue, uuid, r.get("cid_num") or None, r.get("dest") or None)
