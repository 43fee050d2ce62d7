"""Asterisk adapter: the manager interface (AMI).

The adapter connects to AMI (default 127.0.0.1:5038), reads the greeting line
(``Asterisk Call Manager/X.Y``), sends ``Action: Login`` and follows events.
The dialplan hands a caller to agner and holds it while it waits::

    [agner-queue]
    exten => sales,1,Answer()
     same => n,Set(AGNER_QUEUE=${EXTEN})
     same => n,UserEvent(AgnerArrived,Queue: ${EXTEN})
     same => n(wait),MusicOnHold(,3600)

    [agner-agents]              ; the adapter Redirects a caller here to ring an agent
    exten => s,1,Dial(${AGNER_DIAL},15)
     same => n,Goto(agner-queue,${AGNER_QUEUE},wait)

``UserEvent`` ``AgnerArrived`` is an arrival (call id: the channel's
Uniqueid); agner's ``connect`` becomes ``Setvar AGNER_DIAL`` and ``Redirect``
to ``agner-agents``; ``DialEnd`` with ``DialStatus: ANSWER`` is the answer,
any other DialStatus (BUSY, NOANSWER, CHANUNAVAIL, ...) a failure (the caller
waits again and agner picks another agent); ``Hangup`` ends the call.
Several agents offered the call at once (a parallel offer) ring in one
``Dial(A&B&...)`` (``AGNER_DIAL`` joined with ``&``): ``DialBegin`` names
each agent's channel (``DestUniqueid``, matched by ``DialString`` or the
``DestChannel`` name), the ``DialEnd`` of that channel is its agent's answer
or failure (``CANCEL``: another answered, or the caller left), and
``Hangup`` of that channel stops one agent's ring.
Contacts agner ends are hung up with ``Action: Hangup``. After every
(re)connection, ``CoreShowChannels`` tells which calls still exist, and
``Getvar AGNER_QUEUE`` the queue of waiting ones that arrived meanwhile.

A callback or click-to-dial is ``Originate`` (``Async: true``) of the
agent's Dial string as ``Channel``, with ``ChannelId`` (the agent leg's
Uniqueid, chosen by the adapter), ``Timeout`` (``ring_s``), ``Variable:
AGNER_CALL=...`` and ``Application: Dial`` of the customer (the ``dial``
template with ``{number}``, and ``ring_s``). ``OriginateResponse`` (by its
ActionID) ``Success`` is the agent's answer, ``Failure`` with a ``Reason``
(3 no answer, 5 busy, 8 congestion, 1 hung up, 0 failed) the agent's failure;
then ``DialEnd`` of the agent's channel is the customer's answer (``ANSWER``)
or the customer not reached, and ``Hangup`` of the agent's channel the end.

Frames: ``Key: Value`` lines ending in CRLF, an empty line ends a message.
Responses carry the ActionID of their action; events may come between an
action and its response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Unpack

from agner.adapters.base import SwitchAdapter, SwitchCall, SwitchOptions, safe_token
from agner.adapters.link import parse_address

__all__ = ["AsteriskAdapter", "parse_message"]

log = logging.getLogger("agner.adapters.asterisk")

_CAUSES = {"rejected": "21", "timed_out": "19", "voicemail": "16", "callback": "16"}

# OriginateResponse's Reason: the last control frame of the agent's channel
_REASONS = {"0": "FAILED", "1": "HANGUP", "3": "NOANSWER", "5": "BUSY", "8": "CONGESTION"}


def parse_message(block: bytes) -> dict[str, str]:
    """One AMI message (``Key: Value`` lines) -> dict; lines without ``: `` are skipped."""
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key:
            out[key.strip()] = value.strip()
    return out


class AsteriskAdapter(SwitchAdapter):
    """Bridges Asterisk's manager interface and an ``agner serve`` switch session.

    ``agents``: agent name -> Dial string (``PJSIP/1001``); ``context``: where
    the dialplan rings an agent (``agner-agents``); ``dial``: the customer's
    Dial string of a callback or click-to-dial, with ``{number}``
    (``PJSIP/{number}@trunk``); ``ring_s``: how long the agent's phone, then
    the customer's, may ring.
    """

    name = "asterisk"

    def __init__(
        self,
        *,
        ami: str,
        username: str,
        secret: str,
        context: str = "agner-agents",
        **options: Unpack[SwitchOptions],
    ) -> None:
        super().__init__(**options)
        self.host, self.port = parse_address(ami)
        self.username = username
        self.secret = secret
        self.context = context
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[str, asyncio.Future[list[dict[str, str]]]] = {}
        self.lists: dict[str, list[dict[str, str]]] = {}  # ActionID -> events of a list action
        self.originates: dict[str, str] = {}  # ActionID of an Originate -> the agent leg's uid
        self._action = 0
        self._leg = 0

    # ------------------------------------------------------------ the session

    async def session(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.writer = writer
        reading: asyncio.Task[None] | None = None
        try:
            greeting = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
            if not greeting.startswith(b"Asterisk Call Manager/"):
                raise ConnectionError(f"not AMI: {greeting[:80]!r}")
            reading = asyncio.get_running_loop().create_task(self._read(reader))
            (reply,) = await self.action("Login", Username=self.username, Secret=self.secret)
            if reply.get("Response") != "Success":
                raise ConnectionError(f"login refused: {reply.get('Message')}")
            self.switch_connections += 1
            self.backoff.reset()
            await self._reconcile()
            await reading
        finally:
            self.writer = None
            for f in self.pending.values():
                if not f.done():
                    f.set_exception(ConnectionError("AMI closed"))
            self.pending.clear()
            self.lists.clear()
            self.originates.clear()  # their responses are lost with the link
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            block = await reader.readuntil(b"\r\n\r\n")
            msg = parse_message(block[:-4])
            if not msg:
                self.malformed += 1
                log.warning("asterisk: skipped %r", block[:200])
                continue
            aid = msg.get("ActionID", "")
            if "Event" in msg:  # first: OriginateResponse, an event, has a Response too
                if aid in self.lists:
                    self.lists[aid].append(msg)
                    if msg.get("EventList") == "Complete":
                        f = self.pending.pop(aid)
                        if not f.done():
                            f.set_result(self.lists.pop(aid))
                else:
                    self._event(msg)
            elif "Response" in msg:
                waiting = self.pending.get(aid)
                if waiting is None:
                    continue
                if msg.get("EventList") == "start":
                    self.lists[aid] = [msg]
                else:
                    del self.pending[aid]
                    if not waiting.done():
                        waiting.set_result([msg])
            else:
                self.malformed += 1
                log.warning("asterisk: neither response nor event: %r", block[:200])

    def _send(
        self, name: str, fields: dict[str, str], extra: list[str] | None = None
    ) -> asyncio.Future[list[dict[str, str]]]:
        f: asyncio.Future[list[dict[str, str]]] = asyncio.get_running_loop().create_future()
        if self.writer is None:
            f.set_exception(ConnectionError("AMI down"))
            return f
        self._action += 1
        aid = f"agner-{self._action}"
        self.pending[aid] = f
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        lines += [f"{k}: {v}" for k, v in fields.items()]
        lines += extra or []  # repeated keys (Variable)
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return f

    async def action(self, name: str, **fields: str) -> list[dict[str, str]]:
        """One action; its response (and, for a list action, its events)."""
        return await asyncio.wait_for(self._send(name, fields), 10)

    def _fire(
        self,
        name: str,
        fields: dict[str, str],
        extra: list[str] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> str:
        """Send an action without waiting for its response; returns its ActionID."""
        f = self._send(name, fields, extra)

        def done(f: asyncio.Future[list[dict[str, str]]]) -> None:
            if f.cancelled() or f.exception() is not None:
                return
            if f.result()[0].get("Response") == "Error":
                message = f.result()[0].get("Message", "")
                log.warning("asterisk: %s failed: %s", name, message)
                if on_error is not None:
                    on_error(message or "Error")

        f.add_done_callback(done)
        return f"agner-{self._action}"

    # ------------------------------------------------------------ events

    def _event(self, ev: dict[str, str]) -> None:
        name = ev["Event"]
        if name == "UserEvent" and ev.get("UserEvent") == "AgnerArrived":
            uid = ev.get("Uniqueid", "")
            self.arrived(
                uid,
                ev.get("Queue", ""),
                ev.get("Channel", ""),
                ev.get("CallerIDNum") or None,
                ev.get("Exten") or None,
            )
        elif name == "DialBegin":
            self._dial_begun(ev)
        elif name == "DialEnd" and (
            ev.get("DestUniqueid", "") in self.ring_legs
            or ev.get("DestUniqueid", "") in self.ended_legs  # (stopped, or lost the race)
        ):
            self._leg_ended(ev)
        elif name == "DialEnd":
            uid = ev.get("Uniqueid", "")  # the calling channel (an Originate's own has none)
            if ev.get("DialStatus") == "ANSWER":
                self.answered(uid)
            else:
                self.failed(uid, ev.get("DialStatus", ""))
        elif name == "Hangup":
            self.hung_up(ev.get("Uniqueid", ""), ev.get("Cause-txt") or ev.get("Cause", ""))
        elif name == "Newchannel":
            call = self._call(ev.get("Uniqueid", ""))
            if call is not None and ev.get("Channel"):
                call.handle = ev["Channel"]  # a dial's agent leg: its name, for Hangup
        elif name == "OriginateResponse":
            self._originated(ev)

    def _dial_begun(self, ev: dict[str, str]) -> None:
        """A parallel ring's Dial() calls one of its agents: which one, by the
        dial string (``DialString`` is the part after the technology on some
        versions, all of it on others) or the channel's name (``PJSIP/1001-0000002a``)."""
        call, leg = self._call(ev.get("Uniqueid", "")), ev.get("DestUniqueid", "")
        if call is None or not leg:
            return
        dest, said = ev.get("DestChannel", ""), ev.get("DialString", "")
        ringing = call.state == "ringing" and call.agent is None
        for agent in (call.offers if ringing else []) + call.stop:
            dial = self.agents.get(agent, "")
            if agent not in call.offer_legs and (
                said in (dial, dial.partition("/")[2]) or dest.startswith(dial + "-")
            ):
                self.offer_leg(call, agent, leg)
                return
        if ringing:
            log.info("asterisk: a Dial() channel of call %s for no agent: %r", call.call_id, dest)

    def _leg_ended(self, ev: dict[str, str]) -> None:
        leg, status = ev["DestUniqueid"], ev.get("DialStatus", "")
        if status == "ANSWER":
            self.leg_answered(leg)
        elif status != "CANCEL":  # CANCEL: another answered, or the caller left
            found = self.offer_of(leg)
            self.leg_failed(leg, status)
            if found is not None and all(a not in found[0].offer_legs for a in found[0].offers):
                # Dial() calls every destination at once: one it named no
                # channel for could not be rung at all (CHANUNAVAIL)
                self.ring_failed(found[0].uid, "CHANUNAVAIL")

    def _originated(self, ev: dict[str, str]) -> None:
        aid, response = ev.get("ActionID", ""), ev.get("Response")
        if aid not in self.originates:
            log.info("asterisk: an OriginateResponse the adapter did not ask for: %r", ev)
        elif response == "Success":
            self.dial_answered(self.originates.pop(aid))
        elif response == "Failure":
            reason = ev.get("Reason", "")
            self.dial_failed(self.originates.pop(aid), _REASONS.get(reason, f"reason {reason}"))
        else:
            self.malformed += 1
            log.warning("asterisk: an OriginateResponse without its outcome: %r", ev)

    # ------------------------------------------------------------ to Asterisk

    def put_through(self, call: SwitchCall, dial: str) -> None:
        self._fire("Setvar", {"Channel": call.handle, "Variable": "AGNER_DIAL", "Value": dial})
        self._fire(
            "Redirect",
            {"Channel": call.handle, "Context": self.context, "Exten": "s", "Priority": "1"},
        )

    def ring_all(self, call: SwitchCall, dials: list[tuple[str, str]]) -> None:
        # the legs are named by the DialBegin events of the Dial()
        self.put_through(call, "&".join(dial for _, dial in dials))

    def drop_leg(self, call: SwitchCall, agent: str, leg: str) -> None:
        self._fire("Hangup", {"Channel": leg, "Cause": "16"})  # by its Uniqueid

    def end_call(self, call: SwitchCall, to: str) -> None:
        self._fire("Hangup", {"Channel": call.handle, "Cause": _CAUSES.get(to, "16")})

    def new_leg(self) -> str:
        # Asterisk's own Uniqueids are EPOCH.SEQ; these cannot collide with them
        self._leg += 1
        return f"agner-{int(time.time())}-{self._leg}"

    def place_dial(self, call: SwitchCall, agent: str, customer: str) -> bool:
        if self.writer is None:
            return False
        ring = max(1, int(self.ring_s))
        variables = [f"Variable: AGNER_NUMBER={call.dial}"]
        if safe_token(call.call_id):
            variables.append(f"Variable: AGNER_CALL={call.call_id}")
        uid = call.uid
        aid = self._fire(
            "Originate",
            {
                "Channel": agent,
                "Application": "Dial",
                "Data": f"{customer},{ring}",
                "Timeout": str(ring * 1000),
                "ChannelId": uid,
                "Async": "true",
            },
            variables,
            lambda message: self.dial_failed(uid, message),
        )
        self.originates[aid] = uid
        return True

    def drop_dial(self, call: SwitchCall) -> None:
        # Hangup finds a channel by its name, or else by its Uniqueid
        self._fire("Hangup", {"Channel": call.handle, "Cause": "16"})

    async def _reconcile(self) -> None:
        events = await self.action("CoreShowChannels")
        chans = [e for e in events if e.get("Event") == "CoreShowChannel"]
        self.still_there({e.get("Uniqueid", "") for e in chans})
        self.rings_state(
            {e.get("Uniqueid", "") for e in chans},
            {e.get("Uniqueid", "") for e in chans if e.get("ChannelStateDesc") == "Up"},
        )
        for e in chans:
            # a dial's agent leg: did the agent, then the customer, pick up meanwhile?
            self.dial_state(
                e.get("Uniqueid", ""),
                answered=e.get("ChannelStateDesc") == "Up",
                bridged=bool(e.get("BridgeId")),
            )
        self.place_unsent()
        for e in chans:
            uid = e.get("Uniqueid", "")
            if uid in self.legs or e.get("Application") != "MusicOnHold":
                continue
            (reply,) = await self.action(
                "Getvar", Channel=e.get("Channel", ""), Variable="AGNER_QUEUE"
            )
            queue = reply.get("Value", "") if reply.get("Response") == "Success" else ""
            if queue:
                self.arrived(uid, queue, e.get("Channel", ""), e.get("CallerIDNum") or None, None)
