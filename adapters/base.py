"""What the FreeSWITCH and Asterisk adapters share: the call table and its
translation to agner's wire events, the link to agner and reconciliation.

A subclass speaks one switch protocol. It reports what the switch saw with
:meth:`arrived`, :meth:`failed` (the agent did not take the call),
:meth:`answered` and :meth:`hung_up`, and implements :meth:`put_through`
(ring an agent for a waiting call), :meth:`end_call` (agner ended it: play
nothing, hang up with a cause) and :meth:`reconcile_switch` (after the switch
link comes back: which calls still exist, and which waiting calls are new).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from typing import Any

import msgspec

from agner.adapters.link import AgnerLink, Backoff
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
    QueryContact,
    Ready,
    Revoked,
)

__all__ = ["SwitchAdapter", "SwitchCall"]

log = logging.getLogger("agner.adapters")


class SwitchCall(msgspec.Struct, gc=False):
    """A caller the switch holds for agner; ``handle`` is the switch's name for
    its channel. ``state``: queued, ringing (``agent``), talking."""

    call_id: str
    queue: str
    handle: str
    customer: str | None = None
    state: str = "queued"
    agent: str | None = None


class SwitchAdapter(abc.ABC):
    """The call table between one switch and one ``agner serve`` switch session.

    ``agents`` maps agent names to the switch's dial strings; ``login`` names
    agents to log in and make ready whenever the agner link comes up.
    """

    name = "switch"

    def __init__(
        self,
        *,
        server: str,
        token: str,
        agents: dict[str, str],
        login: list[str] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.agents = dict(agents)
        self.login = list(login or [])
        self.backoff = backoff or Backoff()
        self.calls: dict[str, SwitchCall] = {}
        self.link = AgnerLink(server, token, self.on_agner, on_up=self._agner_up)
        self.malformed = 0
        self.switch_connections = 0
        self._refs: dict[int, tuple[str, str]] = {}  # ref -> (call id, "arrived" | "query")
        self._ref = 1
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.link.start()
        self._tasks.append(asyncio.get_running_loop().create_task(self._switch_loop()))

    async def close(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.link.close()

    async def _switch_loop(self) -> None:
        while not self._closing:
            try:
                await self.session()
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                log.info("%s: link lost: %s", self.name, exc)
            except ConnectionError as exc:
                log.warning("%s: refused: %s", self.name, exc)
            if not self._closing:
                await asyncio.sleep(self.backoff.next())

    @abc.abstractmethod
    async def session(self) -> None:
        """Connect, log in, subscribe, :meth:`reconcile_switch`, then read
        events until the link drops. Call ``self.backoff.reset()`` once in."""

    @abc.abstractmethod
    def put_through(self, call: SwitchCall, dial: str) -> None:
        """Ring the agent at ``dial`` for ``call``."""

    @abc.abstractmethod
    def end_call(self, call: SwitchCall, to: str) -> None:
        """agner ended a waiting call (``rejected``, ``timed_out``, ``voicemail``, ``callback``)."""

    # ------------------------------------------------------------ from the switch

    def arrived(
        self, call_id: str, queue: str, handle: str, customer: str | None, dialed: str | None
    ) -> None:
        if not call_id or not queue or call_id in self.calls:
            log.warning("%s: skipped an arrival for %r (queue %r)", self.name, call_id, queue)
            return
        self.calls[call_id] = SwitchCall(call_id, queue, handle, customer)
        self._ref += 1
        self._refs[self._ref] = (call_id, "arrived")
        self.link.send(Arrived(call_id, queue, customer=customer, dialed=dialed, ref=self._ref))

    def failed(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is None or call.state != "ringing":
            return
        agent, call.agent, call.state = call.agent, None, "queued"
        if agent is not None:
            self.link.send(NoAnswer(call_id, agent))

    def answered(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.state == "ringing" and call.agent is not None:
            call.state = "talking"
            self.link.send(Answered(call_id, call.agent))

    def hung_up(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        # An answered call ends with one complete (the contact ends and its
        # record is written); after a hung_up the record would wait for the
        # complete, which agner refuses once the agent has its next offer.
        if call.state == "talking":
            self.link.send(Complete(call_id, call.agent))
        else:
            self.link.send(HungUp(call_id))

    def still_there(self, present: set[str]) -> None:
        """After the switch link comes back: the calls the switch still has;
        the others ended while it was down."""
        for call_id in [c for c in self.calls if c not in present]:
            self.hung_up(call_id)

    # ------------------------------------------------------------ from agner

    def on_agner(self, msg: Any) -> None:
        if isinstance(msg, Connect):
            call = self.calls.get(msg.call_id)
            if call is None:
                self.link.send(HungUp(msg.call_id))  # gone at the switch
            elif call.state == "queued":
                self._connect(call, msg.agent)
        elif isinstance(msg, Revoked):
            call = self.calls.get(msg.call_id)
            if call is not None and call.agent == msg.agent and call.state == "ringing":
                call.state, call.agent = "queued", None
        elif isinstance(msg, Diverted):
            call = self.calls.get(msg.call_id)
            if call is None:
                return
            if msg.to == "queue":
                call.queue = msg.queue
            elif call.state == "queued":
                del self.calls[call.call_id]
                self.end_call(call, msg.to)
        elif isinstance(msg, ContactStatus):
            self._refs.pop(msg.ref, None)
            call = self.calls.get(msg.call_id)
            if call is None:
                self.link.send(HungUp(msg.call_id))
            elif call.state == "queued" and msg.state == "ringing" and msg.agents:
                self._connect(call, msg.agents[0])
            elif call.state == "talking" and msg.state == "ringing" and call.agent is not None:
                self.link.send(Answered(call.call_id, call.agent))
        elif isinstance(msg, Error):
            call_id, what = self._refs.pop(msg.ref, ("", ""))
            call = self.calls.get(call_id)
            if what == "query" and call is not None and call.state == "queued":
                # agner lost it (or never got it): it arrives again
                self.link.send(
                    Arrived(call.call_id, call.queue, customer=call.customer, dialed=call.queue)
                )
                return
            log.warning("%s: agner refused %s: %s %s", self.name, what, msg.code, msg.message)
            if what == "arrived" and call is not None and call.state == "queued":
                del self.calls[call_id]
                self.end_call(call, "rejected")

    def _connect(self, call: SwitchCall, agent: str) -> None:
        dial = self.agents.get(agent)
        if dial is None:
            log.warning("%s: no dial string for agent %r", self.name, agent)
            self.link.send(NoAnswer(call.call_id, agent))
            return
        call.state, call.agent = "ringing", agent
        self.put_through(call, dial)

    def _agner_up(self) -> None:
        for name in self.login:
            self.link.send(Login(name))
            self.link.send(Ready(name))
        for call in self.calls.values():
            self._ref += 1
            self._refs[self._ref] = (call.call_id, "query")
            self.link.send(QueryContact(call.call_id, ref=self._ref))
