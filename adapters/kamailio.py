"""Kamailio (SIP) adapter: suspended INVITEs over evapi, decisions from agner.

Kamailio runs adapters/kamailio.cfg (:data:`CONFIG`). Every new INVITE is a
contact for the queue named by its Request-URI user: Kamailio suspends the
transaction and sends an ``invite`` event over evapi (netstring-framed JSON on
a TCP socket the adapter connects to). The adapter sends ``arrived`` to agner;
agner's ``connect`` names the agent, and the adapter tells Kamailio to resume
the transaction and relay the INVITE to that agent's SIP address. Kamailio
reports the agent's answer (``answered``), a failure (``failed``: busy, no
answer, unreachable; the transaction is suspended again and agner chooses
another agent), the caller's CANCEL and BYE; the adapter turns them into
``answered``, ``no_answer`` (RONA), ``hung_up`` (an abandon) and ``complete``
(an answered call ended: its interaction record is written at once). While a
caller waits, the adapter has Kamailio send 182 Queued and a 180 every
``ring_every_s``.

The ``connect``s of a parallel offer (one per agent, back to back) are
collected until the end of the current read of the agner link and relayed
in one ``relay`` command: Kamailio forks the INVITE to every agent at once
(tm cancels the others when one answers). Kamailio names the branch of each
answer and failure (``branch``: the agents' order in the command). A
``connect`` that comes while a fork rings is held and relayed once the fork
has failed; a ``revoked`` agent's branch rings on until the fork ends (tm
cannot stop one branch of it).

A ``connect`` with ``dial`` (a callback or click-to-dial) for a call Kamailio
does not hold is placed through Kamailio: the agent's phone rings (dialog's
``dlg_bridge``) and, once answered, is REFERed to the customer's URI
(``dial_uri``). When evapi comes back after a drop, the adapter asks Kamailio
about every call it holds (``check``) and catches up with what happened
meanwhile: answers, failed agents, BYEs.

docs/ADAPTERS.md describes the evapi messages both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from agner.adapters.base import hold_for_ring
from agner.adapters.link import Backoff, Batcher, no_delay, open_link, parse_address, quickack
from agner.protocol import (
    Answered,
    Arrived,
    Complete,
    Connect,
    ContactStatus,
    Diverted,
    Error,
    HungUp,
    Login,
    NoAnswer,
    Ok,
    QueryContact,
    Ready,
    Revoked,
)

if TYPE_CHECKING:
    from agner.server import Server

__all__ = ["CONFIG", "Call", "KamailioAdapter", "NetstringReader", "check_settings"]

log = logging.getLogger("agner.adapters.kamailio")

#: The Kamailio configuration that ships with the adapter.
CONFIG = Path(__file__).with_name("kamailio.cfg")

_MAX_FRAME = 1 << 20


class NetstringReader:
    """Splits a byte stream into netstrings (``LEN:PAYLOAD,``).

    A frame whose length is not digits, too long, or not followed by ``,`` is
    malformed: it is counted, and the reader skips to the next ``,`` and goes on.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.malformed = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while True:
            colon = buf.find(b":", pos, pos + 9)
            if colon < 0:
                if len(buf) - pos >= 9 or (len(buf) > pos and not buf[pos:].isdigit()):
                    pos = self._skip(pos)
                    continue
                break
            head = bytes(buf[pos:colon])
            if not head.isdigit() or int(head) > _MAX_FRAME:
                pos = self._skip(pos)
                continue
            n = int(head)
            end = colon + 1 + n
            if len(buf) < end + 1:
                break
            if buf[end] != 0x2C:  # ","
                pos = self._skip(pos)
                continue
            out.append(bytes(buf[colon + 1 : end]))
            pos = end + 1
        del buf[:pos]
        return out

    def _skip(self, pos: int) -> int:
        self.malformed += 1
        comma = self.buf.find(b",", pos)
        log.warning("evapi: skipped a malformed netstring")
        return len(self.buf) if comma < 0 else comma + 1


def check_settings(
    *,
    evapi: str,
    agents: dict[str, str],
    agent_uri: str | None,
    dial_uri: str | None,
    ring_ms: int,
    ring_every_s: float,
    name: Callable[[str], str] = str,
) -> None:
    """Refuse settings a :class:`KamailioAdapter` cannot work with: ValueError
    naming the setting (``name`` turns a keyword into what the user wrote)."""
    try:
        parse_address(evapi)
    except ValueError:
        raise ValueError(f"{name('evapi')}: not a HOST:PORT address: {evapi!r}") from None
    if not agents and agent_uri is None:
        raise ValueError(f"give the agents' SIP addresses: {name('agents')} or {name('agent_uri')}")
    if agent_uri is not None and "{agent}" not in agent_uri:
        raise ValueError(f"{name('agent_uri')}: no {{agent}} in {agent_uri!r}")
    if dial_uri is not None and "{number}" not in dial_uri:
        raise ValueError(f"{name('dial_uri')}: no {{number}} in {dial_uri!r}")
    if ring_ms <= 0:
        raise ValueError(f"{name('ring_ms')} must be > 0")
    if not ring_every_s > 0:
        raise ValueError(f"{name('ring_every_s')} must be > 0")


class _Event(msgspec.Struct, gc=False):
    """One evapi event of adapters/kamailio.cfg."""

    event: str
    call_id: str = ""
    tindex: int = 0
    tlabel: int = 0
    cseq: str = ""
    code: int = 0
    queue: str = ""
    from_: str = msgspec.field(default="", name="from")
    state: str = ""  # status: ringing, talking, queued, ended, gone
    branch: int = -1  # answered, branch_failed, status: the branch of a parallel offer
    token: str = ""  # dial_answered, dial_failed, dialing: which dial


_event_decoder = msgspec.json.Decoder(_Event)
# events that may come for a call the adapter has forgotten (it ended)
_QUIET = ("pong", "bye", "cancel", "gone", "timeout", "answered", "status", "branch_failed")
_json = msgspec.json.Encoder()


class Call(msgspec.Struct, gc=False):
    """A caller Kamailio holds for agner. ``state``: queued (suspended, waiting
    for a connect), ringing (relayed to ``agent``), talking (answered).

    A dialed call (``token`` set: a callback or click-to-dial) rings the agent
    first, then the agent's phone calls the customer; ``sip_id`` is the
    Call-ID of that second call once Kamailio has seen it."""

    call_id: str
    queue: str
    cseq: str
    tindex: int
    tlabel: int
    customer: str | None = None
    state: str = "queued"
    agent: str | None = None
    revoked: bool = False  # agner already gave up on the ringing agent (its RONA)
    next_agent: str | None = None  # a connect that came while the last agent still rang
    invite_ns: int = 0  # when the invite event was read
    ring_ns: int = 0  # when the last provisional reply was asked for
    routed: bool = False  # agner has connected it at least once
    token: str = ""  # a dialed call: the one-use token of its REFER
    sip_id: str = ""  # a dialed call: the Call-ID of the agent's call to the customer
    deadline_ns: int = 0  # a dialed call: when waiting for the agent or its phone gives up
    # A parallel offer (state ringing, ``agent`` None): ``fork`` the agents in
    # branch order, ``offers`` those agner still offers it to; connects not
    # relayed yet: those of the current read, or late ones (held until the
    # fork has failed)
    fork: list[str] = []
    offers: list[str] = []
    held: list[str] = []
    ring_due: bool = False


class _Evapi(asyncio.Protocol):
    def __init__(self, adapter: KamailioAdapter) -> None:
        self.adapter = adapter
        self.reader = NetstringReader()
        self.transport: asyncio.Transport | None = None
        self.out: Batcher | None = None
        self.sock: Any = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.out = Batcher(transport)
        self.sock = no_delay(transport)
        quickack(self.sock)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        quickack(self.sock)
        adapter = self.adapter
        for frame in self.reader.feed(data):
            try:
                ev = _event_decoder.decode(frame)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                adapter.malformed += 1
                log.warning("evapi: skipped an event: %s: %r", exc, frame[:200])
                continue
            try:
                adapter.on_event(ev)
            except Exception:  # a bug on one event must not stop the others
                log.exception("evapi: failed on %r", frame[:200])
        adapter.malformed += self.reader.malformed
        self.reader.malformed = 0


class KamailioAdapter:
    """Bridges Kamailio's evapi socket and an ``agner serve`` switch session.

    ``server`` is agner serve's ``--tcp`` address (``HOST:PORT``), or the
    :class:`agner.server.Server` of this process: that is how ``agner serve``
    runs the adapters of its ``[[adapters]]`` tables, in its own event loop
    with no socket in between (:class:`agner.adapters.link.LocalLink`).

    ``agents`` maps agent names to SIP URIs; ``agent_uri`` (a template with
    ``{agent}``) serves the others. ``login``: agents to log in and make ready
    each time the link to agner comes up. ``ring_ms``: how long an agent's
    phone rings before Kamailio gives up (408, reported as ``no_answer``);
    keep it below the server's ``ring_timeout_s``. ``dial_uri`` (a template
    with ``{number}``, e.g. ``sip:{number}@gw.example.net``) is where the
    customer of a callback or click-to-dial is called; a number that is a SIP
    URI already is called as it is.
    """

    def __init__(
        self,
        *,
        evapi: str,
        server: str | Server,
        token: str,
        agents: dict[str, str] | None = None,
        agent_uri: str | None = None,
        login: list[str] | None = None,
        ring_ms: int = 12_000,
        ring_every_s: float = 5.0,
        dial_uri: str | None = None,
        backoff: Backoff | None = None,
        keep_latencies: int = 1_000_000,
    ) -> None:
        self.evapi_host, self.evapi_port = parse_address(evapi)
        self.agents = dict(agents or {})
        self.agent_uri = agent_uri
        self.dial_uri = dial_uri
        self.login = list(login or [])
        self.ring_ms = ring_ms
        self.ring_every_s = ring_every_s
        # a dial's deadline: ring_ms plus this for Kamailio's word (see _ring_loop)
        self.dial_grace_ms = 4000
        self.backoff = backoff or Backoff()
        self.calls: dict[str, Call] = {}
        self.dials: dict[str, Call] = {}  # dial token -> dialed call, until its phone calls out
        self.sip_calls: dict[str, Call] = {}  # Call-ID of an agent's call out -> dialed call
        self._unsent: list[Call] = []  # dials asked for while evapi was down
        self.link = open_link(server, token, self.on_agner, on_up=self._agner_up)
        self.proto: _Evapi | None = None
        self.evapi_connections = 0
        self.malformed = 0
        # invite event read -> relay written (ns), the adapter's and agner's share of setup
        self.latencies: list[int] = []
        self.keep_latencies = keep_latencies
        self._refs: dict[int, tuple[str, str]] = {}  # ref -> (call id, "arrived" | "query")
        self._ref = 1
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.on_change: Callable[[], None] | None = None  # tests: something happened

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.link.start()
        self._tasks.append(loop.create_task(self._evapi_loop()))
        self._tasks.append(loop.create_task(self._ring_loop()))

    async def wait_up(self, timeout: float = 10.0) -> None:
        """Until both links are up."""
        await self.link.wait_up(timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.proto is None or self.proto.transport is None:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("no evapi connection to Kamailio")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._closing = True
        if self.proto is not None and self.proto.transport is not None:
            if self.proto.out is not None:
                self.proto.out.flush()
            self.proto.transport.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.link.close()

    async def _evapi_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                _, proto = await loop.create_connection(
                    lambda: _Evapi(self), self.evapi_host, self.evapi_port
                )
            except OSError as exc:
                log.info("evapi: cannot connect: %s", exc)
                await asyncio.sleep(self.backoff.next())
                continue
            self.proto = proto
            self.evapi_connections += 1
            self.backoff.reset()
            log.info("evapi up (%s:%d)", self.evapi_host, self.evapi_port)
            self._evapi_up()
            await proto.lost
            self.proto = None
            if not self._closing:
                log.warning("evapi down; reconnecting")
                await asyncio.sleep(self.backoff.next())

    async def _ring_loop(self) -> None:
        """A 180 every ``ring_every_s`` to callers still waiting, so that no
        proxy on their way gives up on a quiet transaction."""
        period_ns = int(self.ring_every_s * 1e9)
        while True:
            await asyncio.sleep(min(1.0, self.ring_every_s / 2))
            now = time.monotonic_ns()
            late: list[Call] = []
            for call in self.calls.values():
                if call.state == "queued" and call.ring_ns and now - call.ring_ns >= period_ns:
                    call.ring_ns = now
                    self._reply(call, 180, "Ringing")
                elif call.deadline_ns and now > call.deadline_ns:
                    late.append(call)
            for call in late:
                # Kamailio's answer about a dial never came (evapi was down,
                # or the agent's phone did not follow the REFER)
                log.warning("dial %s: no word from Kamailio in time", call.call_id)
                self._dial_failed(call, 408)

    # ------------------------------------------------------------ to Kamailio

    def _cmd(self, obj: dict[str, Any]) -> bool:
        p = self.proto
        if p is None or p.out is None:
            return False
        body = _json.encode(obj)
        p.out.write(b"%d:%s," % (len(body), body))
        return True

    def _reply(self, call: Call, code: int, reason: str) -> None:
        self._cmd(
            {
                "cmd": "reply",
                "call_id": call.call_id,
                "cseq": call.cseq,
                "code": code,
                "reason": reason,
            }
        )

    def _agent_address(self, agent: str) -> str | None:
        uri = self.agents.get(agent)
        if uri is None and self.agent_uri is not None:
            uri = self.agent_uri.replace("{agent}", agent)
        return uri

    def _relay(self, call: Call, agent: str) -> None:
        uri = self._agent_address(agent)
        call.agent = agent
        call.revoked = False
        if uri is None:
            log.warning("no SIP address for agent %r: call %s not put through", agent, call.call_id)
            call.state = "queued"
            self.link.send(NoAnswer(call.call_id, agent))
            return
        call.state = "ringing"
        call.routed = True
        self._send_relay(call, [uri])

    def _send_relay(self, call: Call, uris: list[str]) -> None:
        """Resume the caller's transaction to ring ``uris`` (several: a fork)."""
        cmd: dict[str, Any] = {
            "cmd": "relay",
            "call_id": call.call_id,
            "tindex": call.tindex,
            "tlabel": call.tlabel,
            "uri": uris[0],
            "ring_ms": self.ring_ms,
        }
        if len(uris) > 1:
            cmd["more"], cmd["n"] = "|".join(uris[1:]), len(uris) - 1
        self._cmd(cmd)
        if call.invite_ns and len(self.latencies) < self.keep_latencies:
            self.latencies.append(time.monotonic_ns() - call.invite_ns)
            call.invite_ns = 0

    def _collect(self, call: Call, agent: str) -> None:
        """A connect: relayed with the others of the same decision."""
        hold_for_ring(call, agent, self._relay_due)

    def _relay_due(self, call: Call) -> None:
        call.ring_due = False
        if self.calls.get(call.call_id) is call and call.state == "queued" and call.held:
            self._relay_held(call)

    def _relay_held(self, call: Call) -> None:
        """Ring the held agents: one as before, several at once (a fork)."""
        agents, call.held = call.held, []
        if len(agents) == 1:
            self._relay(call, agents[0])
            return
        uris: list[str] = []
        for agent in agents:
            uri = self._agent_address(agent)
            if uri is None:
                log.warning("no SIP address for agent %r: not rung for %s", agent, call.call_id)
                self.link.send(NoAnswer(call.call_id, agent))
            else:
                call.fork.append(agent)
                uris.append(uri)
        if len(call.fork) <= 1:
            agents, call.fork = call.fork, []
            if agents:
                self._relay(call, agents[0])
            return
        call.state, call.agent, call.revoked, call.routed = "ringing", None, False, True
        call.offers = list(call.fork)
        self._send_relay(call, uris)

    def _reject(self, call: Call, code: int, reason: str) -> None:
        self.calls.pop(call.call_id, None)
        self._cmd(
            {
                "cmd": "reject",
                "call_id": call.call_id,
                "tindex": call.tindex,
                "tlabel": call.tlabel,
                "code": code,
                "reason": reason,
            }
        )

    # ------------------------------------------------------------ from Kamailio

    def on_event(self, ev: _Event) -> None:
        kind = ev.event
        if ev.token:
            call = self.dials.get(ev.token)
        else:
            call = self.calls.get(ev.call_id) or self.sip_calls.get(ev.call_id)
        if kind == "invite":
            if call is not None or not ev.call_id or not ev.queue:
                log.warning("evapi: skipped an invite for %r (queue %r)", ev.call_id, ev.queue)
                return
            call = Call(ev.call_id, ev.queue, ev.cseq, ev.tindex, ev.tlabel, ev.from_ or None)
            call.invite_ns = time.monotonic_ns()
            self.calls[ev.call_id] = call
            ref = self._next_ref(ev.call_id, "arrived")
            self.link.send(
                Arrived(ev.call_id, ev.queue, customer=call.customer, dialed=ev.queue, ref=ref)
            )
        elif call is None:
            if kind not in _QUIET:
                log.warning("evapi: %s for a call the adapter does not know: %r", kind, ev.call_id)
            return
        elif kind == "failed" or (kind == "alive" and call.state == "ringing"):
            # the agent was busy (486), did not answer (408) or was unreachable
            # (alive: that happened while evapi was down): Kamailio holds the
            # caller again and agner picks another agent
            self._agent_failed(call, ev)
        elif call.fork and kind in ("answered", "branch_failed", "status"):
            self._fork_event(call, ev)
        elif kind == "branch_failed":
            pass  # a branch of a fork that ended
        elif kind == "answered":
            if call.state == "ringing" and call.agent is not None and not call.token:
                call.state = "talking"
                self.link.send(Answered(call.call_id, call.agent))
        elif kind in ("cancel", "timeout", "bye", "gone"):
            # a CANCEL ends a waiting or ringing caller, or an agent's call out
            self._ended(call)
        elif kind == "status":
            self._status(call, ev.state)
        elif kind == "alive":
            call.tindex, call.tlabel = ev.tindex, ev.tlabel
        elif kind == "dial_answered":
            if call.state == "ringing" and call.agent is not None:
                call.state = "talking"
                call.deadline_ns = (
                    time.monotonic_ns() + (self.ring_ms + self.dial_grace_ms) * 1_000_000
                )
                self.link.send(Answered(call.call_id, call.agent))
        elif kind == "dialing":
            self.dials.pop(call.token, None)
            call.sip_id = ev.call_id
            call.deadline_ns = 0  # Kamailio's timers bound the customer's ringing
            self.sip_calls[ev.call_id] = call
        elif kind == "dial_failed":
            self._dial_failed(call, ev.code)
        else:
            log.warning("evapi: unknown event %r", kind)
        if self.on_change is not None:
            self.on_change()

    def _agent_failed(self, call: Call, ev: _Event) -> None:
        call.tindex, call.tlabel = ev.tindex, ev.tlabel
        agent, call.agent, call.state = call.agent, None, "queued"
        if agent is not None and not call.revoked:
            self.link.send(NoAnswer(call.call_id, agent))
        for other in call.offers:  # a fork: those whose branch-failure was not seen
            self.link.send(NoAnswer(call.call_id, other))
        call.fork, call.offers = [], []
        if call.next_agent is not None:
            nxt, call.next_agent = call.next_agent, None
            self._relay(call, nxt)
        elif call.held:
            self._relay_held(call)

    def _fork_event(self, call: Call, ev: _Event) -> None:
        """An answer or a failure of one branch of a parallel offer, or the
        state Kamailio tells after evapi was down."""
        if call.state != "ringing":
            return
        agent = call.fork[ev.branch] if 0 <= ev.branch < len(call.fork) else None
        if ev.event == "branch_failed":
            if agent in call.offers:  # (a revoked agent's failure: agner knows)
                call.offers.remove(agent)
                self.link.send(NoAnswer(call.call_id, agent))
            return
        if ev.event == "status" and ev.state not in ("talking", "ended"):
            self._status(call, ev.state)  # still ringing, or it ended unanswered
            return
        if agent is None and len(call.offers) == 1:
            agent = call.offers[0]  # Kamailio did not say which: the only one left
        if agent is not None and agent in call.offers:
            call.state, call.agent = "talking", agent
            call.fork, call.offers, call.held = [], [], []
            self.link.send(Answered(call.call_id, agent))
            if ev.event == "status" and ev.state == "ended":
                self._ended(call)
            return
        # An agent agner had revoked answered (tm cannot stop one branch of a
        # fork): agner would refuse its answer and keep the contact for
        # others, so it is told the caller left (the agents it still rings
        # are released, not blamed); Kamailio keeps the call.
        log.warning(
            "call %s: answered by %s, whom agner no longer offers it to: ended in agner",
            call.call_id,
            agent or f"branch {ev.branch}",
        )
        self._forget(call)
        self.link.send(HungUp(call.call_id))

    def _forget(self, call: Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if call.token:
            self.dials.pop(call.token, None)
        if call.sip_id:
            self.sip_calls.pop(call.sip_id, None)

    def _ended(self, call: Call, disposition: str | None = None) -> None:
        """The call is over at Kamailio: abandoned if no agent had it, else
        completed. One ``complete`` ends an answered call and writes its record
        at once; a ``hung_up`` first would leave the record pending until the
        agent's next offer, and the ``complete`` after it refused."""
        self._forget(call)
        if call.state == "talking":
            self.link.send(Complete(call.call_id, call.agent, disposition=disposition))
        else:
            self.link.send(HungUp(call.call_id))

    def _status(self, call: Call, state: str) -> None:
        """Kamailio's answer to a check after evapi was down."""
        if state == "ringing":
            return
        if call.state == "ringing" and call.agent is not None and state in ("talking", "ended"):
            call.state = "talking"  # answered while evapi was down
            self.link.send(Answered(call.call_id, call.agent))
        if state in ("ended", "gone", "queued"):
            self._ended(call)

    def _evapi_up(self) -> None:
        # events sent while the socket was down are lost: ask Kamailio what
        # became of every call (alive: waiting again; status: ringing,
        # talking, ended or gone) and place the dials held meanwhile
        for call in list(self.calls.values()):
            if call.token and not call.sip_id:
                continue  # the agent's phone has not called out: the deadline covers it
            self._cmd(
                {
                    "cmd": "check",
                    "call_id": call.sip_id or call.call_id,
                    "tindex": call.tindex,
                    "tlabel": call.tlabel,
                }
            )
        unsent, self._unsent = self._unsent, []
        for call in unsent:
            if self.calls.get(call.call_id) is call and call.state == "ringing":
                self._send_dial(call)

    # ------------------------------------------------------------ dialing out

    def _customer_address(self, number: str) -> str | None:
        if number.startswith(("sip:", "sips:")):
            return number
        if self.dial_uri is None:
            return None
        return self.dial_uri.replace("{number}", number)

    def _dial(self, call: Call, agent: str) -> None:
        """Ring ``agent``; once it answers, its phone calls the customer."""
        call.agent = agent
        call.revoked = False
        call.state = "ringing"
        call.routed = True
        uri = self._agent_address(agent)
        if uri is None or self._customer_address(call.customer or "") is None:
            log.error(
                "call %s: cannot dial %r for agent %r (no SIP address for the agent, "
                "or no dial_uri for the number)",
                call.call_id,
                call.customer,
                agent,
            )
            self._forget(call)
            self.link.send(NoAnswer(call.call_id, agent))
            return
        if call.token:
            self.dials.pop(call.token, None)
        call.token = secrets.token_hex(8)
        self.dials[call.token] = call
        self.calls[call.call_id] = call
        call.deadline_ns = time.monotonic_ns() + (self.ring_ms + self.dial_grace_ms) * 1_000_000
        self._send_dial(call)

    def _send_dial(self, call: Call) -> None:
        uri = self._agent_address(call.agent or "")
        customer = self._customer_address(call.customer or "")
        assert uri is not None and customer is not None
        sent = self._cmd(
            {
                "cmd": "dial",
                "token": call.token,
                "agent": f"{uri};agner={call.token}",
                "refer": f"<{customer};agner={call.token}>",
                "customer": customer,
            }
        )
        if not sent:
            self._unsent.append(call)

    def _dial_failed(self, call: Call, code: int) -> None:
        if call.state == "ringing":
            # the agent did not take it: agner offers it again (another connect)
            agent = call.agent
            if call.next_agent is not None:
                nxt, call.next_agent = call.next_agent, None
                if agent is not None and not call.revoked:
                    self.link.send(NoAnswer(call.call_id, agent))
                self._dial(call, nxt)
                return
            self._forget(call)
            if agent is not None and not call.revoked:
                self.link.send(NoAnswer(call.call_id, agent))
        else:
            # the agent answered but the customer was not reached
            self._ended(call, disposition=f"not reached ({code})")

    # ------------------------------------------------------------ from agner

    def _next_ref(self, call_id: str, what: str) -> int:
        self._ref += 1
        self._refs[self._ref] = (call_id, what)
        return self._ref

    def on_agner(self, msg: Any) -> None:
        if isinstance(msg, Connect):
            call = self.calls.get(msg.call_id)
            if call is None and msg.dial:
                # a callback or click-to-dial: ring the agent, then the customer
                call = Call(msg.call_id, msg.queue, "", 0, 0, msg.dial)
                self._dial(call, msg.agent)
            elif call is None:
                # agner has a contact Kamailio no longer holds: end it there too
                log.warning("connect for a call that is gone: %s", msg.call_id)
                self.link.send(HungUp(msg.call_id))
            elif call.state == "queued" and not call.token:
                self._collect(call, msg.agent)
            elif call.state == "ringing" and call.revoked:
                call.next_agent = msg.agent  # once the last agent's branch has failed
            elif call.state == "ringing" and not call.token:
                self._collect(call, msg.agent)  # a late one: once the ringing has failed
            else:
                log.warning("connect for call %s that is %s", msg.call_id, call.state)
        elif isinstance(msg, Ok):
            call_id, _ = self._refs.pop(msg.ref, ("", ""))
            call = self.calls.get(call_id)
            if call is not None and call.state == "queued" and not call.routed and not call.held:
                # not connected at once (no connect came before this ok, to be
                # relayed at the end of the read): the caller hears it is queued
                call.ring_ns = time.monotonic_ns()
                self._reply(call, 182, "Queued")
        elif isinstance(msg, Error):
            call_id, what = self._refs.pop(msg.ref, ("", ""))
            call = self.calls.get(call_id)
            if what == "query" and call is not None and msg.code == "unknown":
                self._arrive_again(call)
                return
            log.warning("agner refused %s %s: %s %s", what, call_id, msg.code, msg.message)
            if what == "arrived" and call is not None and call.state == "queued":
                code, reason = (404, "No Such Queue") if msg.code == "unknown" else (500, "Refused")
                self._reject(call, code, reason)
        elif isinstance(msg, Revoked):
            call = self.calls.get(msg.call_id)
            if call is not None and msg.agent in call.held:
                call.held.remove(msg.agent)  # not relayed yet
            elif call is not None and msg.agent in call.offers:
                call.offers.remove(msg.agent)  # its branch rings on until the fork ends
            elif call is not None and call.agent == msg.agent and call.state == "ringing":
                call.revoked = True  # agner re-queued it; its branch still rings until ring_ms
        elif isinstance(msg, Diverted):
            self._diverted(msg)
        elif isinstance(msg, ContactStatus):
            self._reconciled(msg)
        if self.on_change is not None:
            self.on_change()

    def _diverted(self, msg: Diverted) -> None:
        call = self.calls.get(msg.call_id)
        if call is None:
            return
        if msg.to == "queue":
            call.queue = msg.queue
            return
        if call.state != "queued":
            log.warning("diverted %s while %s: left to Kamailio", msg.call_id, call.state)
            return
        code, reason = {
            "rejected": (486, "Queue Full"),
            "timed_out": (408, "Queue Timeout"),
            "voicemail": (480, "Voicemail"),
            "callback": (480, "Callback Scheduled"),
        }[msg.to]
        self._reject(call, code, reason)

    # ------------------------------------------------------------ reconciliation

    def _agner_up(self) -> None:
        for name in self.login:
            self.link.send(Login(name))
            self.link.send(Ready(name))
        # the server may have restarted, or missed what was sent as the link
        # dropped: ask it about every call Kamailio still holds
        for call in self.calls.values():
            self.link.send(QueryContact(call.call_id, ref=self._next_ref(call.call_id, "query")))

    def _arrive_again(self, call: Call) -> None:
        """agner does not know a call Kamailio still holds (it lost it, or never
        got its arrival): a waiting one arrives again; another is let be."""
        if call.state == "queued":
            call.routed = True  # no second 182
            self.link.send(
                Arrived(call.call_id, call.queue, customer=call.customer, dialed=call.queue)
            )
        else:
            log.warning("agner lost call %s while %s", call.call_id, call.state)

    def _reconciled(self, st: ContactStatus) -> None:
        self._refs.pop(st.ref, None)
        call = self.calls.get(st.call_id)
        if call is None:
            self.link.send(HungUp(st.call_id))
            return
        if call.state == "queued" and st.state == "ringing" and st.agents:
            for agent in st.agents:  # its connects were lost
                self._collect(call, agent)
        elif call.fork and call.state == "ringing":
            # a fork: agner gave up on some agents meanwhile (their branches
            # ring on), or offered it to others (held until the fork fails)
            rings = st.agents if st.state == "ringing" else []
            call.offers = [a for a in call.offers if a in rings]
            for agent in rings:
                if agent not in call.fork:
                    self._collect(call, agent)
        elif call.state == "talking" and st.state == "ringing" and call.agent is not None:
            self.link.send(Answered(call.call_id, call.agent))
        elif call.state == "ringing" and st.state == "waiting":
            call.revoked = True  # agner re-queued it: the next connect waits for the branch
