"""The CRM store's records, as msgspec Structs (JSON and MessagePack ready).

Times are int64 microseconds since the Unix epoch (UTC), like the routing core's.
Phone numbers are E.164 strings (``+33142685300``); e-mail addresses are lower case.
Records never carry their tenant: every store call names it, and a record read
through one tenant is that tenant's.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from agner.core._api import Channel as _CoreChannel

__all__ = [
    "CHANNELS",
    "OUTCOMES",
    "Customer",
    "ImportResult",
    "Interaction",
    "Lead",
    "LeadForm",
    "RoutingHints",
    "ScreenPop",
    "StoreOptions",
]

ChannelName = Literal["voice", "chat", "email", "callback"]
#: The channel names, the routing core's :class:`agner.Channel` members in lower case.
CHANNELS: tuple[str, ...] = tuple(c.name.lower() for c in _CoreChannel)

Outcome = Literal["answered", "abandoned", "overflowed", "timed_out", "rejected"]
#: How a contact ended: its one terminal state (see docs/ROUTING.md).
OUTCOMES: tuple[str, ...] = ("answered", "abandoned", "overflowed", "timed_out", "rejected")


class StoreOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a store interprets what it holds; given to :func:`agner.crm.open_store`.

    - ``tiers``: value tier name -> routing priority (higher is served first). A
      customer's tier must be one of these names.
    - ``default_tier``: the tier of a customer given none.
    - ``default_region``: ISO 3166 region (``"GB"``) for numbers written without a
      country code; ``None`` means every number must start with ``+``.
    - ``language_skill``: the routing skill named for a customer's language;
      ``{language}`` is replaced by the language tag (``"lang_fr"``).
    - ``preferred_window_s``: how far back (seconds) an agent counts as having served
      the customer, for preferred agents.
    - ``good_satisfaction``: the lowest satisfaction score (1-5) that counts as good.
    - ``max_preferred_agents``: at most this many preferred agents, latest first.
    - ``screen_pop_history``: how many past interactions a screen pop carries.
    """

    tiers: dict[str, int] = msgspec.field(
        default_factory=lambda: {"standard": 0, "silver": 1, "gold": 2, "platinum": 3}
    )
    default_tier: str = "standard"
    default_region: str | None = None
    language_skill: str = "lang_{language}"
    preferred_window_s: float = 90 * 86400.0
    good_satisfaction: int = 4
    max_preferred_agents: int = 3
    screen_pop_history: int = 5


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    """A known customer of a tenant.

    ``phones`` (E.164) and ``emails`` (lower case) each belong to one customer of the
    tenant; ``attributes`` holds any other columns of an import (text values).
    """

    id: int
    name: str
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    tier: str = "standard"
    language: str | None = None
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    created_us: int = 0
    updated_us: int = 0


class Lead(msgspec.Struct, frozen=True, kw_only=True):
    """An unknown caller: the number (or address) they contacted us from.

    ``converted_to`` is the customer it became (:meth:`Store.convert_lead`), else None.
    """

    id: int
    phone: str | None = None
    email: str | None = None
    name: str | None = None
    notes: str | None = None
    created_us: int = 0
    converted_to: int | None = None


class Interaction(msgspec.Struct, frozen=True, kw_only=True):
    """One contact, recorded when it ends (:meth:`Store.record_interaction`).

    Timestamps (microseconds since the epoch, UTC) must not go backwards:
    ``arrived_us <= offered_us <= answered_us <= ended_us <= wrap_up_end_us``.
    ``outcome`` is the contact's terminal state; an answered contact has
    ``answered_us`` and an ``agent``, an unanswered one has no ``answered_us``.

    The store fills ``id``, ``customer_id`` or ``lead_id`` (from ``caller`` unless
    given) and the durations: ``wait_us`` (arrival to answer, or to the end when not
    answered), ``talk_us`` (answer to end) and ``wrap_up_us`` (end to wrap-up end).

    ``ref`` is the recorder's own id for the contact (e.g. the server's contact id):
    unique in the tenant, so recording the same contact twice stores it once.
    ``caller`` and ``called`` are E.164 numbers, or e-mail addresses for e-mail;
    ``caller`` is None when withheld. ``satisfaction`` is a 1-5 score.
    """

    arrived_us: int
    ended_us: int
    outcome: Outcome
    channel: ChannelName = "voice"
    id: int | None = None
    ref: str | None = None
    caller: str | None = None
    called: str | None = None
    queue: str | None = None
    agent: str | None = None
    offered_us: int | None = None
    answered_us: int | None = None
    wrap_up_end_us: int | None = None
    wait_us: int | None = None
    talk_us: int | None = None
    wrap_up_us: int | None = None
    disposition: str | None = None
    satisfaction: int | None = None
    notes: str | None = None
    recording: str | None = None
    customer_id: int | None = None
    lead_id: int | None = None


class RoutingHints(msgspec.Struct, frozen=True, kw_only=True):
    """What the router uses from the CRM about a caller (:meth:`Store.lookup`).

    ``known`` says a customer matched; for an unknown caller every other field keeps
    its default (``priority`` 0, no language, no preferred agents).
    ``priority`` comes from the customer's tier (:class:`StoreOptions` ``tiers``);
    ``language_skill`` is the skill name for the customer's language;
    ``preferred_agents`` are the agents who served the customer with a good
    satisfaction score within the window, the latest first.
    """

    known: bool = False
    customer_id: int | None = None
    tier: str | None = None
    priority: int = 0
    language: str | None = None
    language_skill: str | None = None
    preferred_agents: tuple[str, ...] = ()


class LeadForm(msgspec.Struct, frozen=True, kw_only=True):
    """The new-lead form an agent sees for an unknown caller: what is known already
    and what to ask. ``lead_id`` is None when the caller's number was withheld or
    not a valid number (nothing is stored then)."""

    lead_id: int | None
    phone: str | None = None
    email: str | None = None
    fields: tuple[str, ...] = ("name", "phone", "email", "tier", "language", "notes")
    tiers: tuple[str, ...] = ()


class ScreenPop(msgspec.Struct, frozen=True, kw_only=True):
    """What the agent's desktop shows when a contact is offered (:meth:`Store.screen_pop`).

    ``kind`` is ``"customer"`` (``customer`` and ``hints`` set) or ``"new_lead"``
    (``lead`` and ``form`` set; ``lead`` is None for a withheld number).
    ``interactions`` are the latest contacts of that customer or lead, newest first.
    """

    kind: Literal["customer", "new_lead"]
    query: str
    customer: Customer | None = None
    hints: RoutingHints | None = None
    lead: Lead | None = None
    form: LeadForm | None = None
    interactions: tuple[Interaction, ...] = ()


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did: ``created`` new customers, ``updated`` existing ones
    (matched by a phone number or e-mail address), ``leads_converted`` open leads
    that matched an imported customer."""

    rows: int
    created: int
    updated: int
    leads_converted: int
