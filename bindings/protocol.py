"""The wire protocol of ``agner serve``: msgspec tagged-union messages, version 1.

Every message is a map with a ``type`` tag. The same structs travel as
MessagePack over TCP (each frame a 4-byte big-endian length, then the message)
and as JSON text frames over WebSocket. docs/PROTOCOL.md describes each message
and who may send it; ``python -m agner.protocol`` prints the JSON Schema
(docs/protocol.schema.json is that output, checked by a test).

Names (agents, queues, skills) and the switch's call ids travel on the wire;
the core's dense ids never do.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "take_frames",
    "Accept",
    "AgentReady",
    "AgentSnapshot",
    "AgentStatus",
    "Answered",
    "Arrived",
    "CallbackRequest",
    "ClientMessage",
    "Complete",
    "Connect",
    "Connected",
    "ContactStatus",
    "DeskContact",
    "Dial",
    "Diverted",
    "Ended",
    "Error",
    "HungUp",
    "Hello",
    "Intraday",
    "IntradayInterval",
    "IntradayQueue",
    "IntradayReport",
    "Login",
    "Logout",
    "NoAnswer",
    "NotReady",
    "Offer",
    "Ok",
    "Ping",
    "Pong",
    "QueryContact",
    "QueueSnapshot",
    "Ready",
    "Revoked",
    "SaveLead",
    "ServerMessage",
    "Stats",
    "Subscribe",
    "Transfer",
    "Unsubscribe",
    "Welcome",
    "json_schema",
]

#: The protocol version this server speaks; a Hello with another is refused.
PROTOCOL_VERSION = 1

Channel = Literal["voice", "chat", "email", "callback"]


class _Msg(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    """Base of every message; ``ref`` is the sender's correlation number.

    Messages hold no reference cycles, so they stay out of the garbage
    collector (``gc=False``): tens of thousands a second would otherwise make
    its passes, and the pauses of the event loop, frequent.

    A client message with ``ref`` != 0 gets an ``ok`` (or ``error``) reply
    carrying the same ``ref``; with ``ref`` = 0 only errors are replied.
    """


# ---------------------------------------------------------------- session


class Hello(_Msg, tag="hello"):
    """First message of every connection: the API token, and who speaks.

    A tenant's token opens a service session (switch adapter, CRM application,
    supervisor), which may act for any agent, queue and contact of its tenant;
    ``switch = true`` makes it receive ``connect`` and ``revoked`` events. An
    agent's token opens a desktop session that acts only as that agent and
    receives its events: ``agent_status`` (at once after ``welcome``, then at
    each change), ``offer`` (with the screen pop), ``connected``, ``ended``,
    ``revoked``, ``agent_ready``.
    """

    token: str
    version: int = PROTOCOL_VERSION
    switch: bool = False
    ref: int = 0


class Ping(_Msg, tag="ping"):
    ref: int = 0


# ---------------------------------------------------------- contact events


class Arrived(_Msg, tag="arrived"):
    """A contact arrived at the switch for ``queue``; ``call_id`` is the switch's
    id, unique among the tenant's live contacts. ``require`` adds skill minimums
    (by name) to the queue's; ``priority`` overrides the queue's."""

    call_id: str
    queue: str
    channel: Channel = "voice"
    priority: int | None = None
    require: dict[str, int] | None = None
    customer: str | None = None  # caller's number (ANI) or e-mail: CRM look-up key
    dialed: str | None = None  # DNIS
    data: dict[str, str] = {}  # IVR input and the like, passed to the desktop
    preferred: list[str] | None = None  # up to 4 agents who alone may take it at first
    preferred_s: float | None = None  # for how long (default: the server's preferred_s)
    ref: int = 0


class Answered(_Msg, tag="answered"):
    """The agent picked up the offered contact (from the switch)."""

    call_id: str
    agent: str | None = None  # default: the agent it rings (needed if it rings several)
    ref: int = 0


class HungUp(_Msg, tag="hung_up"):
    """The caller's line ended: a waiting or ringing contact is abandoned, an
    answered one is completed (its agent goes to wrap-up). After a callback
    request the contact keeps its place instead."""

    call_id: str
    ref: int = 0


class NoAnswer(_Msg, tag="no_answer"):
    """The offered agent did not pick up (RONA): it goes not ready, and the
    contact returns to its queue (or rings on at the other agents of a parallel
    offer). ``agent``: needed when the contact rings several."""

    call_id: str
    agent: str | None = None
    ref: int = 0


class Transfer(_Msg, tag="transfer"):
    """Move an answered contact to ``queue``: its agent is released (as on
    completion) and the contact waits in the new queue under the same call id;
    with ``agent``, only that agent may take it for the server's ``preferred_s``."""

    call_id: str
    queue: str
    agent: str | None = None
    ref: int = 0


# ---------------------------------------------------------- agent commands


class Login(_Msg, tag="login"):
    agent: str | None = None  # a desktop session: itself; a service session: required
    ref: int = 0


class Logout(_Msg, tag="logout"):
    agent: str | None = None
    ref: int = 0


class Ready(_Msg, tag="ready"):
    agent: str | None = None
    ref: int = 0


class NotReady(_Msg, tag="not_ready"):
    agent: str | None = None
    reason: int = 0
    ref: int = 0


class Accept(_Msg, tag="accept"):
    """The agent takes the offered contact (chat, e-mail; for voice the switch
    sends ``answered``)."""

    call_id: str
    agent: str | None = None
    ref: int = 0


class Complete(_Msg, tag="complete"):
    """The agent is done with the contact: ends it if still active, and gives the
    disposition and satisfaction score for the interaction record."""

    call_id: str
    agent: str | None = None
    disposition: str | None = None
    satisfaction: int | None = None  # 1..5
    wrap_up_s: float | None = None  # default: the agent's group's
    notes: str | None = None  # the agent's notes, kept in the interaction record
    ref: int = 0


# ------------------------------------------------------------ CTI commands


class Dial(_Msg, tag="dial"):
    """Click-to-dial: an outbound contact to ``number`` waits in ``queue`` and is
    offered like any other; the switch is told to dial when it is connected.
    With ``agent`` (a desktop's dial: always itself), only that agent may take it
    for the server's ``preferred_s``."""

    queue: str
    number: str
    call_id: str | None = None  # default: the server gives "out-N"
    agent: str | None = None
    ref: int = 0


class CallbackRequest(_Msg, tag="callback_request"):
    """The caller leaves the line but keeps the place: when the contact reaches
    an agent, the switch is told to dial ``number`` back."""

    call_id: str
    number: str
    ref: int = 0


class QueryContact(_Msg, tag="query_contact"):
    """Where a contact stands (for IVR announcements): replied by ``contact_status``."""

    call_id: str
    ref: int = 0


class Subscribe(_Msg, tag="subscribe"):
    """Live statistics of the tenant's queues (all, or those named) every ``interval_ms``.

    With ``live``, ``stats`` are pushed when the tenant's queues or agents change
    instead (at most one per ``interval_ms``, and at least one every 10 s); with
    ``agents``, each carries the count of the tenant's agents by state."""

    queues: list[str] | None = None
    interval_ms: int = 1000
    live: bool = False
    agents: bool = False
    ref: int = 0


class Unsubscribe(_Msg, tag="unsubscribe"):
    ref: int = 0


class SaveLead(_Msg, tag="save_lead"):
    """The new-lead form of an unknown caller, saved to the CRM store: the lead's
    name and notes, and with ``convert`` the customer it becomes (with the lead's
    number or address, plus ``phone``/``email``), so that its next contact pops
    the customer's record. A desktop may save only the leads it was shown."""

    lead_id: int
    name: str | None = None
    notes: str | None = None
    phone: str | None = None
    email: str | None = None
    tier: str | None = None
    language: str | None = None
    convert: bool = True
    ref: int = 0


class Intraday(_Msg, tag="intraday"):
    """Service level per interval of the tenant's queues from the CRM store's
    interaction records since ``since_us`` (default: the start of the UTC day);
    replied by ``intraday_report``. ``interval_s`` divides a day in whole minutes."""

    interval_s: int = 900
    since_us: int | None = None
    ref: int = 0


ClientMessage = (
    Hello
    | Ping
    | Arrived
    | Answered
    | HungUp
    | NoAnswer
    | Transfer
    | Login
    | Logout
    | Ready
    | NotReady
    | Accept
    | Complete
    | Dial
    | CallbackRequest
    | QueryContact
    | Subscribe
    | Unsubscribe
    | SaveLead
    | Intraday
)

# ------------------------------------------------------------ server -> client


class Welcome(_Msg, tag="welcome"):
    version: int
    tenant: str
    agent: str | None
    server_time_us: int
    ref: int = 0


class Ok(_Msg, tag="ok"):
    ref: int
    call_id: str | None = None  # for dial: the call id given


class Error(_Msg, tag="error"):
    """``code``: bad_frame, bad_message, unauthorized, forbidden, unknown,
    invalid_state, too_large, rate_limited, version, internal."""

    code: str
    message: str
    ref: int = 0


class Pong(_Msg, tag="pong"):
    server_time_us: int
    ref: int = 0


class Connect(_Msg, tag="connect"):
    """To the switch: connect ``call_id`` to ``agent``'s device (ring it). With
    ``dial`` set (outbound or callback), first dial that number."""

    call_id: str
    agent: str
    queue: str
    channel: Channel
    dial: str | None = None
    ref: int = 0


class Revoked(_Msg, tag="revoked"):
    """To the switch and the desktop: the offer of ``call_id`` to ``agent`` ended
    without an answer. ``reason``: rona (ring timeout), abandoned, logout,
    taken (another agent took it: parallel offers)."""

    call_id: str
    agent: str
    reason: str
    ref: int = 0


class Diverted(_Msg, tag="diverted"):
    """To the switch: the ACD moved or ended a contact on its own (queue limits,
    no agent logged in, maximum wait; see the queue's ``overflow``). ``to``:
    ``queue`` (it now waits in ``queue``, same call id), ``callback`` (release the
    caller's line; it keeps its place and is dialed back when connected),
    ``voicemail`` (send the caller to voicemail), ``rejected`` and ``timed_out``
    (it ends: play a message and hang up)."""

    call_id: str
    queue: str
    to: Literal["queue", "callback", "voicemail", "rejected", "timed_out"]
    ref: int = 0


class Offer(_Msg, tag="offer"):
    """To the agent's desktop: a contact is ringing for it, with the screen pop:
    the customer's record from the CRM store, or a new-lead form when unknown."""

    call_id: str
    agent: str
    queue: str
    channel: Channel
    customer: str | None
    data: dict[str, str]
    screen_pop: dict[str, Any] | None
    new_lead: bool
    dial: str | None = None  # outbound or callback: the number the agent calls
    ref: int = 0


class ContactStatus(_Msg, tag="contact_status"):
    """Reply to ``query_contact``. ``state``: waiting, ringing, answered. While
    waiting: ``position`` in its queue (1: next) and ``estimated_wait_s`` (the
    core's estimate from the agents who can take it and their handle times; None
    when no such agent is working); ``agents``: those it rings, or its agent."""

    call_id: str
    queue: str
    state: Literal["waiting", "ringing", "answered"]
    position: int | None
    estimated_wait_s: float | None
    agents: list[str]
    ref: int = 0


class AgentReady(_Msg, tag="agent_ready"):
    """To the desktop: the agent's wrap-up ended; it is ready (or not ready if it asked)."""

    agent: str
    state: str
    ref: int = 0


class DeskContact(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """The contact an agent's desktop shows. ``phase``: ``ringing`` (offered to
    the agent), ``answered`` (the agent handles it since ``answered_us``),
    ``ended`` (the caller hung up at ``ended_us``; its disposition is still owed:
    ``complete`` with its call id writes it). ``screen_pop`` and ``new_lead`` as
    in ``offer``: filled in the ``agent_status`` that follows ``welcome``, None
    in those of later changes (the desktop keeps the one of its ``offer``)."""

    call_id: str
    queue: str
    channel: Channel
    phase: Literal["ringing", "answered", "ended"]
    customer: str | None = None
    data: dict[str, str] = {}
    dial: str | None = None
    answered_us: int | None = None
    ended_us: int | None = None
    screen_pop: dict[str, Any] | None = None
    new_lead: bool = False


class AgentStatus(_Msg, tag="agent_status"):
    """To the agent's desktops: where the agent stands, right after ``welcome``
    (so a reloaded page or a second tab restores its view) and again whenever it
    changes. ``state``: logged_out, not_ready, ready, reserved, busy, wrap_up;
    ``reason``: the not-ready reason (-1: ring-no-answer); ``since_us``: when the
    server saw it enter ``state`` (from the journal too; None: not since the
    snapshot the server started from, or at all);
    ``contact``: the contact offered to it, the one it handles, or the one whose
    disposition it still owes."""

    agent: str
    state: str
    reason: int
    since_us: int | None
    contact: DeskContact | None = None
    ref: int = 0


class Connected(_Msg, tag="connected"):
    """To the agent's desktops: its offered contact was answered (the switch's
    ``answered`` or the agent's ``accept``); the agent handles it since
    ``answered_us``."""

    call_id: str
    agent: str
    answered_us: int
    ref: int = 0


class Ended(_Msg, tag="ended"):
    """To the agent's desktops: its answered contact ended before its
    ``complete``. ``reason``: ``hung_up`` (the caller hung up; the disposition is
    still owed: ``complete`` writes it into the record), ``transferred`` (moved
    to ``queue``, same call id; its record is written, nothing is owed)."""

    call_id: str
    agent: str
    reason: Literal["hung_up", "transferred"]
    ended_us: int
    queue: str | None = None
    ref: int = 0


class QueueSnapshot(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One queue now: counters since the server's start (the core's queue_stats)
    and the call ids waiting, in the order they will be served."""

    name: str
    waiting: int
    longest_wait_ms: float
    offered: int
    answered: int
    abandoned: int
    asa_ms: float | None
    service_level_offered: float | None
    service_level_answered: float | None
    overflowed: int = 0
    voicemail: int = 0
    rejected: int = 0
    timed_out: int = 0
    callbacks: int = 0
    waiting_calls: list[str] = []
    threshold_s: float | None = None  # the queue's service level: T ...
    target: float | None = None  # ... and the share to answer within it


class AgentSnapshot(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    name: str
    state: str  # logged_out, not_ready, ready, reserved, busy, wrap_up
    reason: int
    call_id: str | None
    handled: int
    occupancy: float | None


class Stats(_Msg, tag="stats"):
    time_us: int
    queues: list[QueueSnapshot]
    agents: dict[str, int] | None = None  # the tenant's agents by state (subscribe's agents)
    ref: int = 0


class IntradayInterval(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One interval of one queue: contacts that arrived in it, and the service level
    answered within the queue's T / offered (None when none was offered)."""

    start_us: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None


class IntradayQueue(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    name: str
    threshold_s: float
    target: float
    intervals: list[IntradayInterval]


class IntradayReport(_Msg, tag="intraday_report"):
    """Reply to ``intraday``: per queue, its intervals that had contacts, oldest first."""

    interval_s: int
    since_us: int
    queues: list[IntradayQueue]
    ref: int = 0


ServerMessage = (
    Welcome
    | Ok
    | Error
    | Pong
    | Connect
    | Revoked
    | Diverted
    | Offer
    | ContactStatus
    | AgentReady
    | AgentStatus
    | Connected
    | Ended
    | Stats
    | IntradayReport
)


def take_frames(buf: bytearray) -> list[bytes]:
    """The whole TCP frames (a 4-byte big-endian length, then the message) at the
    start of `buf`, removed from it; a frame still arriving stays. For clients;
    the server applies its message size limit as it splits."""
    frames = []
    pos, end = 0, len(buf)
    while end - pos >= 4:
        n = int.from_bytes(buf[pos : pos + 4], "big")
        if end - pos - 4 < n:
            break
        frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    del buf[:pos]
    return frames


def json_schema() -> dict[str, Any]:
    """The JSON Schema of both directions (client and server messages)."""
    (client, server), components = msgspec.json.schema_components(
        [ClientMessage, ServerMessage], ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"agner wire protocol, version {PROTOCOL_VERSION}",
        "$defs": components,
        "properties": {"client": client, "server": server},
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m agner.protocol > docs/protocol.schema.json
    sys.stdout.write(schema_text())
