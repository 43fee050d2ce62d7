"""agner: a contact-center routing core (ACD) with a Cython hot path.

The public face is small:

- :class:`Router`, the routing core: agents with skills, queues with strategies,
  contacts that are offered to agents; clock-free, every call takes ``now`` in
  integer microseconds. Its semantics are written down in docs/ROUTING.md.
- the enums and records it speaks in (:class:`AgentState`, :class:`ContactState`,
  :class:`Strategy`, :class:`Channel`, :class:`Decision`, :class:`QueueStats`,
  :class:`AgentStats`), and
- the errors it raises, all derived from :class:`RouterError`; a call that raises
  leaves the router as it was.
"""

from agner.core._api import (
    REASON_RONA,
    AgentState,
    AgentStats,
    Channel,
    ConfigError,
    ContactState,
    Decision,
    DecisionKind,
    HookContact,
    InvalidTransition,
    QueueStats,
    RouterError,
    Strategy,
    TimeError,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
)
from agner.core.router import Router

__all__ = [
    "REASON_RONA",
    "AgentState",
    "AgentStats",
    "Channel",
    "ConfigError",
    "ContactState",
    "Decision",
    "DecisionKind",
    "HookContact",
    "InvalidTransition",
    "QueueStats",
    "Router",
    "RouterError",
    "Strategy",
    "TimeError",
    "UnknownAgent",
    "UnknownContact",
    "UnknownQueue",
]

__version__ = "0.1.0"
