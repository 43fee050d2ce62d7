"""What the FreeSWITCH and Asterisk adapters share: the call table and its
translation to agner's wire events, the link to agner and reconciliation.

A subclass speaks one switch protocol. It reports what the switch saw with
:meth:`arrived`, :meth:`failed` (the agent did not take the call),
:meth:`answered` and :meth:`hung_up`, and implements :meth:`put_through`
(ring an agent for a waiting call), :meth:`end_call` (agner ended it: play
nothing, hang up with a cause) and :meth:`session`, which after the switch
link comes back tells :meth:`still_there` which calls still exist and
:meth:`arrived` the waiting calls that are new.

Parallel offers (a queue's ``parallel``: agner sends one ``connect`` per
agent for the same call, back to back) are collected until the end of the
current read of the agner link and rung at once: one agent goes through
:meth:`put_through` as before, several through :meth:`ring_all` (one switch
command, a leg per agent). The subclass reports each leg by agent:
:meth:`leg_answered`, :meth:`leg_failed`, :meth:`ring_failed` (the whole
ring ended unanswered), and stops one agent's leg in :meth:`drop_leg` when
agner revokes it. A ``connect`` that comes while a ring is under way is held
and rung when that ring has ended unanswered.

Callbacks and click-to-dial (a ``connect`` with ``dial`` for a call the switch
does not hold) are placed by the switch: :meth:`place_dial` rings the agent's
phone and, once the agent answers, calls the customer and bridges the two.
The subclass reports :meth:`dial_answered` (the agent picked up),
:meth:`dial_failed` (the agent's phone did not answer, or the switch refused),
then :meth:`answered` (the customer picked up), :meth:`failed` (the customer
was not reached) and :meth:`hung_up`, all by the agent leg's id; and after a
dropped switch link :meth:`dial_state`. A dial the switch says nothing about
within ``ring_s`` + ``dial_grace_s`` is given up.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol, Required, TypedDict

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

__all__ = ["SwitchAdapter", "SwitchCall", "SwitchOptions", "hold_for_ring", "safe_token"]

log = logging.getLogger("agner.adapters")

# What a number may hold before it goes into a dial string or a switch
# command: no spaces, newlines, commas, quotes or braces (they would end the
# command or open a variable block).
_TOKEN = re.compile(r"[0-9A-Za-z+*#@._:-]{1,64}")


def safe_token(text: str) -> bool:
    """Whether ``text`` (a number, a call id) can go into a dial string or a
    switch command as it is."""
    return _TOKEN.fullmatch(text) is not None


class SwitchCall(msgspec.Struct, gc=False):
    """A call the switch holds for agner; ``handle`` is the switch's name for
    its channel, ``uid`` the id its events carry (the caller's channel; for a
    dialed call, the agent's). ``state``: queued, ringing (``agent``), talking.

    A dialed call (``dial``: the customer's number) rings the agent first
    (ringing), then the customer (talking, ``bridged`` once they answer)."""

    call_id: str
    queue: str
    handle: str
    customer: str | None = None
    state: str = "queued"
    agent: str | None = None
    uid: str = ""
    dial: str | None = None
    placed: bool = False  # dial: the switch was asked to place it
    bridged: bool = False  # dial: the customer answered
    deadline: float = 0.0  # dial: loop time by which the switch must have told
    # A parallel ring (state ringing, ``agent`` None): the agents whose legs
    # still ring, in ring order, and agent -> the switch's id of its leg
    offers: list[str] = []
    offer_legs: dict[str, str] = {}
    ring_arg: str = ""  # the last ring's command argument, to tell its end from an older one's
    stop: list[str] = []  # revoked agents whose leg the switch has not named yet
    # connects not rung yet: those of the current read, or late ones (a ring
    # was under way), rung once it ends unanswered
    held: list[str] = []
    ring_due: bool = False  # a ring of ``held`` is scheduled


class _Ringable(Protocol):
    held: list[str]
    ring_due: bool


def hold_for_ring(call: _Ringable, agent: str, ring: Callable[[Any], None]) -> None:
    """Hold ``agent`` for ``call`` and have ``ring(call)`` run once, at the end of
    this turn of the loop: the connects of one decision (a parallel offer) come
    back to back, in one read of the agner link, and are rung together."""
    if agent not in call.held:
        call.held.append(agent)
    if not call.ring_due:
        call.ring_due = True
        asyncio.get_running_loop().call_soon(ring, call)


class SwitchOptions(TypedDict, total=False):
    """The keyword arguments of :class:`SwitchAdapter` that a subclass passes on."""

    server: Required[str]
    token: Required[str]
    agents: Required[dict[str, str]]
    login: list[str] | None
    dial: str | None
    ring_s: int
    backoff: Backoff | None


class SwitchAdapter(abc.ABC):
    """The call table between one switch and one ``agner serve`` switch session.

    ``agents`` maps agent names to the switch's dial strings; ``login`` names
    agents to log in and make ready whenever the agner link comes up.
    ``dial`` (a template with ``{number}``) is the dial string of a callback's
    or click-to-dial's customer; without it only agents can be rung.
    ``ring_s``: how long the switch rings an agent or a dialed customer.
    """

    name = "switch"

    def __init__(
        self,
        *,
        server: str,
        token: str,
        agents: dict[str, str],
        login: list[str] | None = None,
        dial: str | None = None,
        ring_s: int = 20,
        backoff: Backoff | None = None,
    ) -> None:
        self.agents = dict(agents)
        self.login = list(login or [])
        self.dial = dial
        self.ring_s = ring_s
        self.dial_grace_s = 5.0  # a dial's deadline: ring_s plus this for the switch's word
        self.backoff = backoff or Backoff()
        self.calls: dict[str, SwitchCall] = {}
        self.legs: dict[str, str] = {}  # uid -> call id
        # a leg of a parallel ring -> (call id, agent)
        self.ring_legs: dict[str, tuple[str, str]] = {}
        # legs of parallel rings that ended (the latest) -> call id: their late
        # events are skipped, but for an answer
        self.ended_legs: dict[str, str] = {}
        self.link = AgnerLink(server, token, self.on_agner, on_up=self._agner_up)
        self.malformed = 0
        self.switch_connections = 0
        self._refs: dict[int, tuple[str, str]] = {}  # ref -> (call id, "arrived" | "query")
        self._ref = 1
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.link.start()
        self._tasks.append(loop.create_task(self._switch_loop()))
        self._tasks.append(loop.create_task(self._deadline_loop()))

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

    async def _deadline_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.dial_grace_s / 4))
            now = loop.time()
            for call in [c for c in self.calls.values() if c.deadline and now > c.deadline]:
                # the switch's word about a dial never came (its link was down,
                # or it lost the job): give up on it and hang up what is left
                log.warning("%s: dial %s: no word from the switch in time", self.name, call.uid)
                try:
                    if call.placed:
                        self.drop_dial(call)
                    self.dial_failed(call.uid, "timeout")
                except Exception:  # one dial's bug must not stop the others' deadlines
                    log.exception("%s: dial %s: giving up failed", self.name, call.uid)
                    self._forget(call)

    @abc.abstractmethod
    async def session(self) -> None:
        """Connect, log in, subscribe, reconcile (:meth:`still_there`,
        :meth:`dial_state`, :meth:`place_unsent`), then read events until the
        link drops. Call ``self.backoff.reset()`` once in."""

    @abc.abstractmethod
    def put_through(self, call: SwitchCall, dial: str) -> None:
        """Ring the agent at ``dial`` for ``call``."""

    @abc.abstractmethod
    def ring_all(self, call: SwitchCall, dials: list[tuple[str, str]]) -> None:
        """Ring the agents of ``dials`` ((agent, dial string), at least two) at
        once for ``call``, in one switch command; the first to answer takes
        it. Record each leg's id the switch will name in ``call.offer_legs``
        and :meth:`offer_leg` as soon as it is known."""

    @abc.abstractmethod
    def drop_leg(self, call: SwitchCall, agent: str, leg: str) -> None:
        """Stop the ringing leg ``leg`` of ``agent`` only; the others ring on."""

    @abc.abstractmethod
    def end_call(self, call: SwitchCall, to: str) -> None:
        """agner ended a waiting call (``rejected``, ``timed_out``, ``voicemail``, ``callback``)."""

    @abc.abstractmethod
    def new_leg(self) -> str:
        """A fresh id for the agent's leg of a dial (the switch will use it)."""

    @abc.abstractmethod
    def place_dial(self, call: SwitchCall, agent: str, customer: str) -> bool:
        """Ring the agent's dial string ``agent`` as leg ``call.uid``; once it
        answers, call ``customer`` (a dial string) and bridge them. False when
        the switch link is down (it is placed when the link is back)."""

    @abc.abstractmethod
    def drop_dial(self, call: SwitchCall) -> None:
        """Hang up the agent's leg of a dial (and so the customer's)."""

    # ------------------------------------------------------------ from the switch

    def _call(self, uid: str) -> SwitchCall | None:
        call_id = self.legs.get(uid)
        return None if call_id is None else self.calls.get(call_id)

    def _forget(self, call: SwitchCall) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if self.legs.get(call.uid) == call.call_id:
            del self.legs[call.uid]
        self._end_ring(call)

    # ------------------------------------------------------------ parallel rings

    def offer_leg(self, call: SwitchCall, agent: str, leg: str) -> None:
        """The switch names ``leg`` as ``agent``'s leg of the parallel ring of ``call``."""
        if agent in call.stop:  # agner revoked it before the switch named its leg
            call.stop.remove(agent)
            self.ended_legs[leg] = call.call_id
            self.drop_leg(call, agent, leg)
            return
        call.offer_legs[agent] = leg
        self.ring_legs[leg] = (call.call_id, agent)

    def offer_of(self, leg: str) -> tuple[SwitchCall, str] | None:
        """The ringing call and agent of a parallel ring's leg, or None."""
        call_id, agent = self.ring_legs.get(leg, ("", ""))
        call = self.calls.get(call_id)
        if call is None or call.state != "ringing" or agent not in call.offers:
            return None
        return call, agent

    def _end_ring(self, call: SwitchCall) -> None:
        for leg in call.offer_legs.values():
            self.ring_legs.pop(leg, None)
            self.ended_legs[leg] = call.call_id
        while len(self.ended_legs) > 4096:
            del self.ended_legs[next(iter(self.ended_legs))]
        call.offers, call.offer_legs, call.stop = [], {}, []

    def leg_answered(self, leg: str) -> None:
        """The agent of a parallel ring's leg answered: it takes the call
        (agner revokes the others, reason taken; the switch stops their legs)."""
        found = self.offer_of(leg)
        if found is None:
            call = self.calls.get(self.ended_legs.get(leg, ""))
            if call is not None and call.dial is None and call.state in ("queued", "ringing"):
                # An agent agner had revoked answered before its leg stopped:
                # agner would refuse the answer and keep the contact for
                # others, so it is told the caller left (the agents it still
                # rings are released, not blamed); the switch keeps the call.
                log.warning(
                    "%s: call %s answered on a leg agner revoked: ended in agner",
                    self.name,
                    call.call_id,
                )
                self._forget(call)
                self.link.send(HungUp(call.call_id))
            return
        call, agent = found
        self._end_ring(call)
        call.state, call.agent, call.held = "talking", agent, []
        self.link.send(Answered(call.call_id, agent))

    def leg_failed(self, leg: str, cause: str = "") -> None:
        """One leg of a parallel ring failed (busy, no answer, unreachable):
        ``no_answer`` for its agent; the others ring on."""
        found = self.offer_of(leg)
        if found is None:
            return
        call, agent = found
        call.offers.remove(agent)
        self.ring_legs.pop(leg, None)
        self.ended_legs[leg] = call.call_id
        call.offer_legs.pop(agent, None)
        log.info("%s: call %s: agent %s failed (%s)", self.name, call.call_id, agent, cause)
        self.link.send(NoAnswer(call.call_id, agent))
        if not call.offers:
            self._ring_over(call)

    def ring_failed(self, uid: str, cause: str = "") -> None:
        """The parallel ring of the caller ``uid`` ended unanswered: every
        agent still ringing gets ``no_answer``."""
        call = self._call(uid)
        if call is None or call.state != "ringing" or not call.offers:
            return
        for agent in call.offers:
            self.link.send(NoAnswer(call.call_id, agent))
        log.info("%s: call %s: nobody answered (%s)", self.name, call.call_id, cause)
        self._ring_over(call)

    def _ring_over(self, call: SwitchCall) -> None:
        """A parallel ring ended unanswered: the caller waits again, and the
        connects held meanwhile ring now."""
        self._end_ring(call)
        call.state, call.agent = "queued", None
        if call.held:
            self._ring(call)

    def _collect(self, call: SwitchCall, agent: str) -> None:
        """A connect for a waiting call: ring it with the others of the same decision."""
        hold_for_ring(call, agent, self._ring)

    def _ring(self, call: SwitchCall) -> None:
        call.ring_due = False
        if self.calls.get(call.call_id) is not call or call.state != "queued" or not call.held:
            return  # gone, or a ring started meanwhile: the held ones wait for its end
        agents, call.held = call.held, []
        dials: list[tuple[str, str]] = []
        for agent in agents:
            dial = self.agents.get(agent)
            if dial is None:
                log.warning("%s: no dial string for agent %r", self.name, agent)
                self.link.send(NoAnswer(call.call_id, agent))
            else:
                dials.append((agent, dial))
        if len(dials) == 1:
            self._connect(call, dials[0][0])
        elif dials:
            call.state, call.agent, call.stop = "ringing", None, []
            call.offers = [a for a, _ in dials]
            self.ring_all(call, dials)

    def arrived(
        self, uid: str, queue: str, handle: str, customer: str | None, dialed: str | None
    ) -> None:
        if not uid or not queue or uid in self.calls or uid in self.legs:
            log.warning("%s: skipped an arrival for %r (queue %r)", self.name, uid, queue)
            return
        self.calls[uid] = SwitchCall(uid, queue, handle, customer, uid=uid)
        self.legs[uid] = uid
        self._ref += 1
        self._refs[self._ref] = (uid, "arrived")
        self.link.send(Arrived(uid, queue, customer=customer, dialed=dialed, ref=self._ref))

    def failed(self, uid: str, cause: str = "") -> None:
        """The agent did not take a waiting call; for a dial, the customer was not reached."""
        call = self._call(uid)
        if call is None:
            return
        if call.dial is not None:
            if call.state == "talking" and not call.bridged:
                self.dial_failed(uid, cause or "failed")
            return
        if call.state != "ringing" or call.agent is None:
            return  # (a parallel ring ends by ring_failed)
        agent, call.agent, call.state = call.agent, None, "queued"
        self.link.send(NoAnswer(call.call_id, agent))
        if call.held:
            self._ring(call)

    def answered(self, uid: str) -> None:
        """The agent answered a waiting call; for a dial, the customer answered."""
        call = self._call(uid)
        if call is None:
            return
        if call.dial is not None:
            if call.state == "talking":
                call.bridged, call.deadline = True, 0.0
        elif call.state == "ringing" and call.agent is not None:
            call.state, call.held = "talking", []
            self.link.send(Answered(call.call_id, call.agent))

    def hung_up(self, uid: str, cause: str = "") -> None:
        call = self._call(uid)
        if call is None:
            return
        if call.dial is not None and not call.bridged:
            self.dial_failed(uid, cause or "hung up")
            return
        self._forget(call)
        # An answered call ends with one complete (the contact ends and its
        # record is written); after a hung_up the record would wait for the
        # complete, which agner refuses once the agent has its next offer.
        if call.state == "talking":
            self.link.send(Complete(call.call_id, call.agent))
        else:
            self.link.send(HungUp(call.call_id))

    def dial_answered(self, uid: str) -> None:
        """The agent picked up a dial: the switch now calls the customer."""
        call = self._call(uid)
        if call is None or call.dial is None or call.state != "ringing":
            return
        call.state = "talking"
        call.deadline = asyncio.get_running_loop().time() + self.ring_s + self.dial_grace_s
        self.link.send(Answered(call.call_id, call.agent))

    def dial_failed(self, uid: str, cause: str) -> None:
        """A dial ended before agent and customer talked: before the agent
        answered, agner offers it again (``no_answer``); after, the contact
        ends with its record (``complete``, not reached)."""
        call = self._call(uid)
        if call is None or call.dial is None:
            return
        self._forget(call)
        if call.state == "ringing":
            if call.agent is not None:
                self.link.send(NoAnswer(call.call_id, call.agent))
        elif call.bridged:
            self.link.send(Complete(call.call_id, call.agent))
        else:
            self.link.send(Complete(call.call_id, call.agent, disposition=f"not reached ({cause})"))

    def dial_state(self, uid: str, *, answered: bool, bridged: bool) -> None:
        """After the switch link came back: a dial's leg still exists, and
        whether the agent (``answered``) and the customer (``bridged``) picked up."""
        call = self._call(uid)
        if call is None or call.dial is None:
            return
        if answered:
            self.dial_answered(uid)
        if bridged:
            self.answered(uid)

    def still_there(self, present: set[str]) -> None:
        """After the switch link comes back: the legs (uids) the switch still
        has; the others ended while it was down."""
        for call in [c for c in self.calls.values() if c.uid not in present]:
            if call.dial is None or call.placed:
                self.hung_up(call.uid, "gone")

    def rings_state(self, present: set[str], up: set[str]) -> None:
        """After the switch link came back: of the parallel rings' legs, those
        that still exist (``present``) and those answered (``up``). An
        answered leg took its call; a leg gone failed; the others ring on."""
        for leg in list(self.ring_legs):
            if leg in up:
                self.leg_answered(leg)
        for leg in list(self.ring_legs):
            if leg not in present:
                self.leg_failed(leg, "gone")

    def place_unsent(self) -> None:
        """Once the switch link is up: place the dials asked for while it was down."""
        for call in [c for c in self.calls.values() if c.dial is not None and not c.placed]:
            self._place(call)

    # ------------------------------------------------------------ from agner

    def on_agner(self, msg: Any) -> None:
        if isinstance(msg, Connect):
            call = self.calls.get(msg.call_id)
            if call is None and msg.dial:
                self._start_dial(msg.call_id, msg.queue, msg.agent, msg.dial)
            elif call is None:
                self.link.send(HungUp(msg.call_id))  # gone at the switch
            elif call.dial is None and call.state in ("queued", "ringing"):
                # (a late one, while a ring is under way: held until it ends)
                self._collect(call, msg.agent)
            else:
                log.warning("%s: connect for %s, %s", self.name, call.call_id, call.state)
        elif isinstance(msg, Revoked):
            call = self.calls.get(msg.call_id)
            if call is not None and msg.agent in call.held:
                call.held.remove(msg.agent)  # not rung yet
            elif call is not None and call.state == "ringing" and msg.agent in call.offers:
                self._revoke_leg(call, msg.agent)
            elif call is not None and call.agent == msg.agent and call.state == "ringing":
                if call.dial is not None:
                    self._stop_dial(call)  # agner offers it again: stop this phone
                else:
                    call.state, call.agent = "queued", None
                    if call.held:
                        self._ring(call)
        elif isinstance(msg, Diverted):
            call = self.calls.get(msg.call_id)
            if call is None:
                return
            if msg.to == "queue":
                call.queue = msg.queue
            elif call.state == "queued":
                self._forget(call)
                self.end_call(call, msg.to)
        elif isinstance(msg, ContactStatus):
            self._refs.pop(msg.ref, None)
            self._reconciled(msg)
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
            if what == "query" and call is not None and call.dial is not None:
                if call.state == "ringing":
                    self._stop_dial(call)  # agner has no contact for the agent to take
            elif what == "arrived" and call is not None and call.state == "queued":
                self._forget(call)
                self.end_call(call, "rejected")

    def _revoke_leg(self, call: SwitchCall, agent: str) -> None:
        """agner gave up on one agent of a parallel ring: stop its leg (or, if
        the switch has not named it yet, as soon as it does)."""
        call.offers.remove(agent)
        leg = call.offer_legs.pop(agent, None)
        if leg is None:
            call.stop.append(agent)
        else:
            self.ring_legs.pop(leg, None)
            self.ended_legs[leg] = call.call_id
            self.drop_leg(call, agent, leg)
        if not call.offers:
            # like a serial ring's revoke: the caller waits for the next connect
            stop = call.stop
            self._end_ring(call)
            call.stop = stop  # legs the switch names later are stopped then
            call.state, call.agent = "queued", None
            if call.held:
                self._ring(call)

    def _reconciled(self, st: ContactStatus) -> None:
        call = self.calls.get(st.call_id)
        if call is None:
            self.link.send(HungUp(st.call_id))
        elif call.state == "queued" and st.state == "ringing" and st.agents:
            for agent in st.agents:  # its connects were lost
                self._collect(call, agent)
        elif call.dial is None and call.state == "ringing" and call.agent is None:
            # a parallel ring: stop the agents agner gave up on meanwhile (their
            # revokes were lost), hold those it offered it to since
            rings = st.agents if st.state == "ringing" else []
            for agent in [a for a in call.offers if a not in rings]:
                self._revoke_leg(call, agent)
            for agent in rings:
                if agent not in call.offers:
                    self._collect(call, agent)
        elif call.state == "talking" and st.state == "ringing" and call.agent is not None:
            self.link.send(Answered(call.call_id, call.agent))
        elif call.dial is not None and call.state == "ringing" and call.agent not in st.agents:
            # agner gave up on this agent while its link was down (the revoke
            # was lost): stop the phone, and ring the agent it chose since
            self._stop_dial(call)
            if st.state == "ringing" and st.agents:
                self._start_dial(call.call_id, call.queue, st.agents[0], call.dial)

    def _connect(self, call: SwitchCall, agent: str) -> None:
        dial = self.agents.get(agent)
        if dial is None:
            log.warning("%s: no dial string for agent %r", self.name, agent)
            self.link.send(NoAnswer(call.call_id, agent))
            return
        call.state, call.agent = "ringing", agent
        self.put_through(call, dial)

    # ------------------------------------------------------------ dialing out

    def _start_dial(self, call_id: str, queue: str, agent: str, number: str) -> None:
        """A callback or click-to-dial: ring ``agent``, then ``number``."""
        if agent not in self.agents or self.dial is None or not safe_token(number):
            log.error(
                "%s: cannot dial %r for agent %r (no dial string for the agent, no dial "
                "template, or a number with characters a dial string cannot hold)",
                self.name,
                number,
                agent,
            )
            self.link.send(NoAnswer(call_id, agent))
            return
        uid = self.new_leg()
        call = SwitchCall(call_id, queue, uid, number, "ringing", agent, uid=uid, dial=number)
        self.calls[call_id] = call
        self.legs[uid] = call_id
        self._place(call)

    def _place(self, call: SwitchCall) -> None:
        assert call.dial is not None and call.agent is not None and self.dial is not None
        call.deadline = asyncio.get_running_loop().time() + self.ring_s + self.dial_grace_s
        customer = self.dial.replace("{number}", call.dial)
        call.placed = self.place_dial(call, self.agents[call.agent], customer)

    def _stop_dial(self, call: SwitchCall) -> None:
        self._forget(call)
        if call.placed:
            self.drop_dial(call)

    # ------------------------------------------------------------ reconciliation

    def _agner_up(self) -> None:
        for name in self.login:
            self.link.send(Login(name))
            self.link.send(Ready(name))
        for call in self.calls.values():
            self._ref += 1
            self._refs[self._ref] = (call.call_id, "query")
            self.link.send(QueryContact(call.call_id, ref=self._ref))
