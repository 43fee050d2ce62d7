"""Checks and normalization of everything written to the store.

Each function returns the normalized value or raises :class:`InvalidInput` naming
the field; the store calls them before it opens a transaction, so a refused value
never leaves anything half-written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import phonenumbers

from agner.crm.errors import InvalidInput
from agner.crm.models import CHANNELS, OUTCOMES, Interaction, StoreOptions

#: Longest accepted value of each text field, in characters.
LIMITS: dict[str, int] = {
    "tenant": 64,
    "name": 200,
    "phone": 40,
    "email": 254,
    "tier": 32,
    "language": 35,
    "attribute_name": 64,
    "attribute": 1000,
    "attributes": 50,  # how many attributes a customer may carry
    "ref": 128,
    "queue": 128,
    "agent": 128,
    "disposition": 128,
    "notes": 10_000,
    "recording": 2048,
}

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Pragmatic, not RFC 5322: one @, no spaces, a dotted domain of sane labels.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})((?:-[A-Za-z0-9]{2,8})*)")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]*")


def text(value: Any, field: str, *, required: bool = False) -> str | None:
    """A stripped string within ``LIMITS[field]``; None (or '') only if not required."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    out: str = value.strip()
    if not out:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if "\x00" in out:
        raise InvalidInput(field, "must not contain a NUL character")
    limit = LIMITS[field]
    if len(out) > limit:
        raise InvalidInput(field, f"is {len(out)} characters long, the limit is {limit}")
    return out


def tenant(value: Any) -> str:
    """A tenant name: 1-64 of letters, digits, '_', '.', '-', starting alphanumeric."""
    name = text(value, "tenant", required=True)
    assert name is not None
    if not _TENANT.fullmatch(name):
        raise InvalidInput(
            "tenant", f"{name!r} must be letters, digits, '_', '.' or '-' (from a letter/digit)"
        )
    return name


def phone(value: Any, region: str | None, field: str = "phone") -> str:
    """The E.164 form of a valid phone number; ``region`` reads national numbers."""
    raw = text(value, "phone", required=True)
    assert raw is not None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or raw.startswith("+") else " (no country code, and no region)"
        why = re.sub(r"^\(\d+\)\s*", "", str(exc)).rstrip(".")
        raise InvalidInput(field, f"{raw!r} is not a phone number{hint}: {why}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(field, f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value: Any, field: str = "email") -> str:
    """A plausible e-mail address, in lower case."""
    raw = text(value, "email", required=True)
    assert raw is not None
    local = raw.rpartition("@")[0]
    if not _EMAIL.fullmatch(raw) or len(local) > 64 or ".." in raw:
        raise InvalidInput(field, f"{raw!r} is not a valid e-mail address")
    return raw.lower()


def contact_key(query: str, region: str | None) -> tuple[str, str] | None:
    """``("phone", e164)`` or ``("email", address)`` for a look-up, or None when the
    query cannot be any customer's number or address (a look-up never raises)."""
    q = query.strip()
    if "@" in q:
        try:
            return "email", email(q)
        except InvalidInput:
            return None
    # Fast path: a switch usually hands over E.164 already, and parsing costs ~30 us.
    # Only valid numbers are ever stored, so an E.164-shaped invalid one simply misses.
    if _E164.fullmatch(q):
        return "phone", q
    try:
        return "phone", phone(q, region)
    except InvalidInput:
        return None


def language(value: Any) -> str | None:
    """A BCP 47-style language tag: ``fr``, ``pt-BR``; primary subtag in lower case,
    a two-letter region in upper case."""
    raw = text(value, "language")
    if raw is None:
        return None
    m = _LANGUAGE.fullmatch(raw.replace("_", "-"))
    if not m:
        raise InvalidInput("language", f"{raw!r} is not a language tag such as 'en' or 'pt-BR'")
    parts = [m.group(1).lower()] + [p for p in m.group(2).split("-") if p]
    return "-".join(p.upper() if i and len(p) == 2 else p for i, p in enumerate(parts))


def tier(value: Any, options: StoreOptions) -> str:
    """One of the configured tier names (the default tier when empty)."""
    name = text(value, "tier")
    if name is None:
        return options.default_tier
    name = name.lower()
    if name not in options.tiers:
        raise InvalidInput("tier", f"{name!r} is not one of {', '.join(sorted(options.tiers))}")
    return name


def attributes(value: Mapping[str, Any] | None) -> dict[str, str]:
    """Extra text attributes: sane names, bounded values (empty values are dropped)."""
    out: dict[str, str] = {}
    for key, raw in (value or {}).items():
        if not isinstance(key, str) or not _ATTRIBUTE_NAME.fullmatch(key):
            raise InvalidInput(str(key), "is not a usable attribute name")
        if len(key) > LIMITS["attribute_name"]:
            raise InvalidInput(key, f"attribute names are limited to {LIMITS['attribute_name']}")
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise InvalidInput(key, f"must be text, not {type(raw).__name__}")
        val = raw.strip()
        if len(val) > LIMITS["attribute"]:
            raise InvalidInput(key, f"is {len(val)} characters long, the limit is 1000")
        if val:
            out[key] = val
    if len(out) > LIMITS["attributes"]:
        raise InvalidInput("attributes", f"{len(out)} attributes, the limit is 50")
    return out


def phones(values: Iterable[Any], region: str | None) -> tuple[str, ...]:
    """Each number normalized, in order, each once."""
    return tuple(dict.fromkeys(phone(v, region) for v in values))


def emails(values: Iterable[Any]) -> tuple[str, ...]:
    """Each address normalized, in order, each once."""
    return tuple(dict.fromkeys(email(v) for v in values))


def _time(value: Any, field: str, required: bool) -> int | None:
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**62:
        raise InvalidInput(field, f"must be microseconds since the epoch, not {value!r}")
    return value


def interaction(i: Interaction, options: StoreOptions) -> Interaction:
    """A checked interaction with normalized numbers and the durations filled."""
    if i.channel not in CHANNELS:
        raise InvalidInput("channel", f"{i.channel!r} is not one of {', '.join(CHANNELS)}")
    if i.outcome not in OUTCOMES:
        raise InvalidInput("outcome", f"{i.outcome!r} is not one of {', '.join(OUTCOMES)}")
    times = {
        "arrived_us": _time(i.arrived_us, "arrived_us", True),
        "offered_us": _time(i.offered_us, "offered_us", False),
        "answered_us": _time(i.answered_us, "answered_us", False),
        "ended_us": _time(i.ended_us, "ended_us", True),
        "wrap_up_end_us": _time(i.wrap_up_end_us, "wrap_up_end_us", False),
    }
    last_name, last = "arrived_us", times["arrived_us"]
    for name, t in times.items():
        assert last is not None
        if t is None:
            continue
        if t < last:
            raise InvalidInput(name, f"{t} is before {last_name} ({last})")
        last_name, last = name, t
    arrived, answered, ended = times["arrived_us"], times["answered_us"], times["ended_us"]
    assert arrived is not None and ended is not None
    if (i.outcome == "answered") != (answered is not None):
        raise InvalidInput("answered_us", "is required exactly when the outcome is 'answered'")
    agent = text(i.agent, "agent")
    if answered is not None and agent is None:
        raise InvalidInput("agent", "an answered contact needs its agent")
    wrap_end = times["wrap_up_end_us"]
    if wrap_end is not None and answered is None:
        raise InvalidInput("wrap_up_end_us", "only an answered contact has a wrap-up")
    computed = {
        "wait_us": (answered if answered is not None else ended) - arrived,
        "talk_us": ended - answered if answered is not None else None,
        "wrap_up_us": wrap_end - ended if wrap_end is not None else None,
    }
    for name, value in computed.items():
        given = getattr(i, name)
        if given is not None and given != value:
            raise InvalidInput(name, f"is computed from the timestamps ({value}), not {given}")
    if i.satisfaction is not None and (
        not isinstance(i.satisfaction, int) or not 1 <= i.satisfaction <= 5
    ):
        raise InvalidInput("satisfaction", f"must be a score from 1 to 5, not {i.satisfaction!r}")
    return msgspec.structs.replace(
        i,
        ref=text(i.ref, "ref"),
        caller=party(i.caller, "caller", options.default_region),
        called=party(i.called, "called", options.default_region),
        queue=text(i.queue, "queue"),
        agent=agent,
        disposition=text(i.disposition, "disposition"),
        notes=text(i.notes, "notes"),
        recording=text(i.recording, "recording"),
        **computed,
    )


def party(value: Any, field: str, region: str | None) -> str | None:
    """A caller or called party: None (withheld), an e-mail address or a phone number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and "@" in value:
        return email(value, field)
    return phone(value, region, field)
