"""The wire protocol: every message round-trips in both encodings, the schema file
is current, and the decoder refuses hostile bytes with an error, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agner import protocol as p

ROOT = Path(__file__).resolve().parent.parent

SAMPLES: list[Any] = [
    p.Hello("tok", switch=True, ref=1),
    p.Ping(ref=2),
    p.Arrived("c1", "sales", "chat", 5, {"sales": 2}, "+4930", "800", {"ivr": "2"}, ref=3),
    p.Answered("c1", "ann"),
    p.HungUp("c1"),
    p.NoAnswer("c1"),
    p.Transfer("c1", "support"),
    p.Login("ann"),
    p.Logout(),
    p.Ready(),
    p.NotReady(reason=7),
    p.Accept("c1"),
    p.Complete("c1", disposition="sold", satisfaction=4, wrap_up_s=1.5),
    p.Dial("sales", "+4930", "o1"),
    p.CallbackRequest("c1", "+4930"),
    p.QueryContact("c1", ref=4),
    p.Subscribe(["sales"], 500),
    p.Unsubscribe(),
]
SERVER_SAMPLES: list[Any] = [
    p.Welcome(1, "acme", None, 5),
    p.Ok(3, "out-1"),
    p.Error("unknown", "no queue"),
    p.Pong(5),
    p.Connect("c1", "ann", "sales", "callback", "+4930"),
    p.Revoked("c1", "ann", "rona"),
    p.Offer("c1", "ann", "sales", "voice", "+4930", {}, {"name": "Ada"}, False),
    p.ContactStatus("c1", "sales", "waiting", 3, 42.5, [], ref=4),
    p.AgentReady("ann", "ready"),
    p.Diverted("c1", "backup", "queue"),
    p.Stats(9, [p.QueueSnapshot("sales", 1, 2.0, 3, 2, 0, 1.5, 0.5, 1.0, waiting_calls=["c"])]),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_client_messages_round_trip(msg: Any) -> None:
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(msg), type=p.ClientMessage) == msg
    assert msgspec.json.decode(msgspec.json.encode(msg), type=p.ClientMessage) == msg


@pytest.mark.parametrize("msg", SERVER_SAMPLES, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip(msg: Any) -> None:
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(msg), type=p.ServerMessage) == msg
    assert msgspec.json.decode(msgspec.json.encode(msg), type=p.ServerMessage) == msg


def test_wire_shape_is_a_tagged_map() -> None:
    assert json.loads(msgspec.json.encode(p.Ready(agent="ann", ref=4))) == {
        "type": "ready",
        "agent": "ann",
        "ref": 4,
    }
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(b'{"type":"ready","agnt":"x"}', type=p.ClientMessage)
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'fly'"):
        msgspec.json.decode(b'{"type":"fly"}', type=p.ClientMessage)


def test_schema_file_is_current() -> None:
    """docs/protocol.schema.json is `python -m agner.protocol`; regenerate it when this fails."""
    assert (ROOT / "docs" / "protocol.schema.json").read_text() == p.schema_text()
    schema = p.json_schema()
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {})
    }
    assert {"hello", "arrived", "complete", "callback_request", "connect", "offer"} <= tags


def test_protocol_doc_names_every_message() -> None:
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text()
    for cls in [type(m) for m in SAMPLES + SERVER_SAMPLES]:
        tag = cls.__struct_config__.tag
        assert f"`{tag}`" in doc, tag


_decoder = msgspec.msgpack.Decoder(p.ClientMessage)
_json_decoder = msgspec.json.Decoder(p.ClientMessage)

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_tags = st.sampled_from([type(m).__struct_config__.tag for m in SAMPLES] + ["x", ""])
_maps = st.builds(
    lambda tag, extra: {"type": tag, **extra},
    _tags,
    st.dictionaries(
        st.sampled_from(["call_id", "queue", "agent", "ref", "token", "reason", "require", "zz"]),
        _values,
        max_size=4,
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | _maps.map(msgspec.msgpack.encode))
def test_decoder_refuses_hostile_msgpack_cleanly(data: bytes) -> None:
    try:
        msg = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    assert isinstance(msg, p.ClientMessage.__args__)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | _maps.map(msgspec.json.encode))
def test_decoder_refuses_hostile_json_cleanly(data: bytes) -> None:
    try:
        msg = _json_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    assert isinstance(msg, p.ClientMessage.__args__)  # type: ignore[attr-defined]


def test_take_frames_splits_whole_frames_and_keeps_a_partial_one() -> None:
    one, two = msgspec.msgpack.encode(p.Ping(ref=1)), msgspec.msgpack.encode(p.Ping(ref=2))
    wire = len(one).to_bytes(4, "big") + one + len(two).to_bytes(4, "big") + two
    buf = bytearray(wire[:-3])  # the second frame is still arriving
    assert p.take_frames(buf) == [one]
    assert buf == bytearray(wire[4 + len(one) : -3])
    buf += wire[-3:]
    assert p.take_frames(buf) == [two]
    assert buf == bytearray()
    assert p.take_frames(bytearray(b"\x00\x00")) == []  # not even a length yet
