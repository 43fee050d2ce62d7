"""Python-level types of the routing core: enums, decisions, statistics, errors.

They live in a plain module so that the compiled router, the pure-Python
reference router and the bindings share one definition of each.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "AgentState",
    "ContactState",
    "Strategy",
    "Channel",
    "DecisionKind",
    "Decision",
    "HookContact",
    "QueueStats",
    "AgentStats",
    "REASON_RONA",
    "RouterError",
    "UnknownAgent",
    "UnknownQueue",
    "UnknownContact",
    "InvalidTransition",
    "ConfigError",
    "TimeError",
]

#: Not-ready reason the core sets on ring-no-answer (user reasons are >= 0).
REASON_RONA = -1


class AgentState(IntEnum):
    """An agent's state; values match the core's ``agent_state_t``."""

    LOGGED_OUT = 0
    NOT_READY = 1
    READY = 2
    RESERVED = 3
    BUSY = 4
    WRAP_UP = 5


class ContactState(IntEnum):
    """A live contact's state (ended contacts have no state: their id is invalid)."""

    WAITING = 0
    OFFERED = 1
    ACTIVE = 2


class Strategy(IntEnum):
    """How a queue chooses among eligible idle agents (see docs/ROUTING.md)."""

    LONGEST_IDLE = 0
    ROUND_ROBIN = 1
    FEWEST_CONTACTS = 2
    LEAST_TALK_TIME = 3
    MOST_SKILLED = 4
    RANDOM = 5
    LINEAR = 6


class Channel(IntEnum):
    """The medium of a contact."""

    VOICE = 0
    CHAT = 1
    EMAIL = 2
    CALLBACK = 3


class DecisionKind(IntEnum):
    """What the core decided on its own initiative."""

    OFFER = 1  #: offer `contact` to `agent` (it rings)
    RONA = 2  #: `agent` did not answer `contact` in time; the contact goes back
    WRAP_UP_END = 3  #: `agent`'s wrap-up ended
    RELEASE = 4  #: `agent` stops ringing for `contact`: another agent took it
    OVERFLOW = 5  #: `contact` moved to `queue`, keeping its id
    VOICEMAIL = 6  #: `contact` ends: send it to voicemail
    CALLBACK = 7  #: `contact` became a callback (release the caller's line)
    REJECT = 8  #: `contact` ends: `queue` was full or had no agent logged in
    TIMEOUT = 9  #: `contact` ends: it waited `queue`'s maximum, with nowhere to go


class Decision(NamedTuple):
    """One decision of the core; ``time`` in microseconds, -1 for fields that do not apply."""

    kind: DecisionKind
    time: int
    contact: int
    agent: int
    queue: int


class HookContact(NamedTuple):
    """What a decision hook (``Router.set_decision_hook``) is given; times in us."""

    contact: int
    queue: int
    priority: int
    channel: Channel
    arrival_us: int
    waited_us: int  # in its current queue
    candidates: tuple[int, ...]  # READY eligible agents, by id


class QueueStats(NamedTuple):
    """Real-time statistics of one queue (times in microseconds)."""

    offered: int
    answered: int
    abandoned: int
    abandoned_within_sl: int
    waiting: int
    longest_wait_us: int
    answered_within_sl: int
    wait_answered_us: int
    asa_us: float | None
    ring_no_answer: int
    service_level_offered: float | None
    service_level_answered: float | None
    service_level_excluding_short_abandons: float | None
    overflowed: int
    voicemail: int
    rejected: int
    timed_out: int
    callbacks: int
    waiting_callbacks: int


class AgentStats(NamedTuple):
    """Real-time statistics of one agent (times in microseconds)."""

    state: AgentState
    reason: int
    handled: int
    talk_time_us: int
    rona: int
    time_in_state_us: tuple[int, int, int, int, int, int]
    idle_time_us: int
    occupancy: float | None


class RouterError(Exception):
    """Base of every error the router raises; the router's state is left unchanged."""


class UnknownAgent(RouterError, LookupError):
    """An agent id that was never added."""


class UnknownQueue(RouterError, LookupError):
    """A queue id that was never added."""


class UnknownContact(RouterError, LookupError):
    """A contact id that was never issued, or whose contact has ended."""


class InvalidTransition(RouterError):
    """The call does not apply to the agent's or contact's current state."""


class ConfigError(RouterError, ValueError):
    """An argument value out of range (skill, level, priority, reason, duration, time)."""


class TimeError(RouterError, ValueError):
    """``now`` is earlier than a time the router has already seen."""


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def make_queue_stats(
    offered: int,
    answered: int,
    abandoned: int,
    abandoned_within_sl: int,
    waiting: int,
    longest_wait_us: int,
    answered_within_sl: int,
    wait_answered_us: int,
    ring_no_answer: int,
    *,
    overflowed: int = 0,
    voicemail: int = 0,
    rejected: int = 0,
    timed_out: int = 0,
    callbacks: int = 0,
    waiting_callbacks: int = 0,
) -> QueueStats:
    """Derive the ratios from the counters, the same way for every router."""
    return QueueStats(
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        abandoned_within_sl=abandoned_within_sl,
        waiting=waiting,
        longest_wait_us=longest_wait_us,
        answered_within_sl=answered_within_sl,
        wait_answered_us=wait_answered_us,
        asa_us=_ratio(wait_answered_us, answered),
        ring_no_answer=ring_no_answer,
        service_level_offered=_ratio(answered_within_sl, offered),
        service_level_answered=_ratio(answered_within_sl, answered),
        service_level_excluding_short_abandons=_ratio(
            answered_within_sl, answered + abandoned - abandoned_within_sl
        ),
        overflowed=overflowed,
        voicemail=voicemail,
        rejected=rejected,
        timed_out=timed_out,
        callbacks=callbacks,
        waiting_callbacks=waiting_callbacks,
    )


def make_agent_stats(
    state: int,
    reason: int,
    handled: int,
    talk_time_us: int,
    rona: int,
    time_in_state_us: tuple[int, int, int, int, int, int],
) -> AgentStats:
    """Derive idle time and occupancy from the per-state times."""
    t = time_in_state_us
    handling = t[AgentState.RESERVED] + t[AgentState.BUSY] + t[AgentState.WRAP_UP]
    return AgentStats(
        state=AgentState(state),
        reason=reason,
        handled=handled,
        talk_time_us=talk_time_us,
        rona=rona,
        time_in_state_us=t,
        idle_time_us=t[AgentState.READY],
        occupancy=_ratio(handling, handling + t[AgentState.READY]),
    )
