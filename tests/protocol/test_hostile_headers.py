"""Bytes any publisher can put in a message, fed to the decoders and to the
sans-IO connection: too-deep, malformed or non-UTF-8 field tables, property
strings and routing keys give a typed `DecodeError`, and a delivery carrying
them comes out as an `Undecodable` event (to be rejected) while the
connection goes on with the next frame."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands

from nameko._amqp import codec
from nameko._amqp.events import Delivered, ProtocolError, Returned, Undecodable
from tests.protocol.test_amqp_connection import content, encode, open_channel, open_connection

CAP = codec.MAX_NESTING


def deep_tables(levels: int) -> bytes:
    """``{"k": {"k": ... {}}}``: ``levels`` tables, the outermost included."""
    raw = b"\x00\x00\x00\x00"
    for _ in range(levels - 1):
        entry = b"\x01kF" + raw
        raw = struct.pack(">I", len(entry)) + entry
    return raw


def deep_mixed(levels: int) -> bytes:
    """A table holding an array holding a table...: ``levels`` containers."""
    kinds = ["F" if level % 2 else "A" for level in range(1, levels + 1)]
    raw = b"\x00\x00\x00\x00"  # the innermost container, empty
    for level in range(levels - 1, 0, -1):  # wrap it in the container one level up
        item = kinds[level].encode() + raw
        entry = b"\x01k" + item if kinds[level - 1] == "F" else item
        raw = struct.pack(">I", len(entry)) + entry
    return raw


def depth_of(value: object) -> int:
    """Containers on the path through every first item."""
    depth = 0
    while isinstance(value, (dict, list)):
        depth += 1
        if not value:
            break
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return depth


# -- the codec ---------------------------------------------------------------


def test_tables_nested_up_to_the_cap_decode() -> None:
    raw = deep_tables(CAP)
    table, end = codec.decode_table(raw, 0)
    assert end == len(raw)
    assert depth_of(table) == CAP


@pytest.mark.parametrize("levels", [CAP + 1, 340, 400, 10_000])
def test_tables_nested_past_the_cap_are_a_decode_error(levels: int) -> None:
    with pytest.raises(codec.DecodeError, match=f"nested deeper than {CAP} levels"):
        codec.decode_table(deep_tables(levels), 0)


def test_arrays_and_tables_nested_alternately_count_together() -> None:
    table, _ = codec.decode_table(deep_mixed(CAP), 0)
    assert depth_of(table) == CAP
    assert isinstance(table["k"], list) and isinstance(table["k"][0], dict)
    for levels in (CAP + 1, 401):
        with pytest.raises(codec.DecodeError, match="nested deeper"):
            codec.decode_table(deep_mixed(levels), 0)


def test_arrays_of_arrays_in_a_table_are_capped_too() -> None:
    def arrays(levels: int) -> bytes:  # {"k": [[[...]]]}: the table and levels-1 arrays
        raw = b"\x00\x00\x00\x00"
        for _ in range(levels - 2):
            raw = struct.pack(">I", 1 + len(raw)) + b"A" + raw
        entry = b"\x01kA" + raw
        return struct.pack(">I", len(entry)) + entry

    table, _ = codec.decode_table(arrays(CAP), 0)
    assert depth_of(table) == CAP
    with pytest.raises(codec.DecodeError, match="nested deeper"):
        codec.decode_table(arrays(CAP + 1), 0)
    with pytest.raises(codec.DecodeError, match="nested deeper"):
        codec.decode_value(b"A" + arrays(500)[7:], 0)


def test_huge_flat_tables_and_arrays_are_fine() -> None:
    table = {f"key-{i}": i for i in range(20_000)}
    table["list"] = list(range(50_000))
    raw = codec.encode_table(table)
    assert codec.decode_table(raw, 0) == (table, len(raw))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\x00\x00\x09\x01kZ\x00\x00\x00\x00\x00\x00", "unknown field type 'Z'"),
        (b"\x00\x00\x00\x04\x01\xffV\x00", "field name that is not UTF-8"),
        (b"\x00\x00\x00\x10\x01kV", "longer than its frame"),
        (b"\x00\x00\x00\x03\x01kI\x00\x00\x00\x01", "runs past the end of its table"),
        (b"\x00\x00\x00\x08\x01kF\x00\x00\x00\x09", "longer than its frame"),
        (b"\x00\x00\x00\x0b\x01kT\x7f\xff\xff\xff\xff\xff\xff\xff", "malformed"),
        (b"\x00\x00", "longer than its frame"),
        (b"\x00\x00\x00\x07\x01kS\x00\x00\x00\x09", "runs past the end of its table"),
    ],
    ids=["type", "key", "overlong", "overrun", "child", "timestamp", "short", "string"],
)
def test_malformed_tables_are_a_decode_error(raw: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeError, match=reason):
        codec.decode_table(raw, 0)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(codec.DecodeError, ValueError)  # what unknown types raised before


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    for decode in (codec.decode_table, codec.decode_properties):
        try:
            decode(raw, 0)
        except codec.DecodeError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_valid_header_cut_anywhere_is_a_decode_error(data: st.DataObject) -> None:
    raw = codec.encode_table({"a": [1, "two", {"three": b"\xff"}], "b": {"c": None}})
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(codec.DecodeError):
        codec.decode_table(raw[:cut], 0)


def test_properties_name_the_property_that_failed() -> None:
    headers = struct.pack(">H", 0x2000) + deep_tables(400)
    with pytest.raises(codec.DecodeError, match=r"^headers: .*nested deeper than"):
        codec.decode_properties(headers, 0)
    bad_reply_to = struct.pack(">H", 0x0200) + b"\x02\xff\xfe"
    with pytest.raises(codec.DecodeError, match=r"^reply_to: a string that is not UTF-8"):
        codec.decode_properties(bad_reply_to, 0)
    short = struct.pack(">H", 0x0400) + b"\x09abc"
    with pytest.raises(codec.DecodeError, match=r"^correlation_id: runs past the end"):
        codec.decode_properties(short, 0)


def test_a_routing_key_that_is_not_utf8_is_a_decode_error_with_the_tags_intact() -> None:
    method = b"\x05ctag1" + struct.pack(">Q", 7) + b"\x01" + b"\x02ex" + b"\x03r\xffk"
    with pytest.raises(codec.DecodeError, match="not UTF-8"):
        codec.decode_deliver(method, 0)
    assert codec.decode_deliver_tags(method, 0) == ("ctag1", 7, True)


# -- the connection ----------------------------------------------------------


def _header_frame(channel: int, body_size: int, properties: bytes) -> bytes:
    payload = struct.pack(">HHQ", 60, 0, body_size) + properties
    return codec.HEADER.pack(codec.FRAME_HEADER, channel, len(payload)) + payload + b"\xce"


def _body_frames(channel: int, body: bytes, limit: int) -> bytes:
    return b"".join(
        codec.HEADER.pack(codec.FRAME_BODY, channel, len(part)) + part + b"\xce"
        for part in (body[i : i + limit] for i in range(0, len(body), limit))
    )


def _deliver(tag: int, routing_key: bytes = b"svc.method") -> bytes:
    args = (
        b"\x04ctag" + struct.pack(">Q", tag) + b"\x00" + b"\x0anameko-rpc"
        + bytes([len(routing_key)]) + routing_key
    )  # fmt: skip
    payload = struct.pack(">HH", 60, 60) + args
    return codec.HEADER.pack(codec.FRAME_METHOD, 3, len(payload)) + payload + b"\xce"


def _good(tag: int) -> bytes:
    method = commands.Basic.Deliver("ctag", tag, False, "nameko-rpc", "svc.method")
    return content(3, method, b"next", headers={"ok": 1})


@pytest.mark.parametrize("body", [b"", b"x" * 10, b"y" * 300_000], ids=["empty", "small", "split"])
def test_a_too_deep_header_is_an_undecodable_delivery_and_the_next_one_arrives(
    body: bytes,
) -> None:
    conn = open_connection()
    open_channel(conn, 3)
    poison = (
        _deliver(5)
        + _header_frame(3, len(body), struct.pack(">H", 0x2000) + deep_tables(400))
        + _body_frames(3, body, 131072 - 8)
    )
    events = conn.receive_data(poison + _good(6), 0.0)
    [bad, good] = events
    assert isinstance(bad, Undecodable)
    assert (bad.channel, bad.consumer_tag, bad.delivery_tag) == (3, "ctag", 5)
    assert (bad.exchange, bad.routing_key, bad.body_size) == ("nameko-rpc", "svc.method", len(body))
    assert bad.reason.startswith("headers: field tables and arrays nested deeper than 64")
    assert isinstance(good, Delivered) and good.delivery_tag == 6 and good.body == b"next"
    assert good.properties.headers == {"ok": 1}
    assert conn.is_ready


def test_a_routing_key_that_is_not_utf8_is_an_undecodable_delivery() -> None:
    conn = open_connection()
    open_channel(conn, 3)
    props = struct.pack(">H", 0x8000) + b"\x10application/json"
    frames = _deliver(9, b"svc.\xff\xfe") + _header_frame(3, 2, props) + _body_frames(3, b"{}", 100)
    [bad, good] = conn.receive_data(frames + _good(10), 0.0)
    assert isinstance(bad, Undecodable) and bad.delivery_tag == 9
    assert (bad.exchange, bad.routing_key) == ("", "")
    assert "not UTF-8" in bad.reason
    assert isinstance(good, Delivered) and good.delivery_tag == 10


def test_a_returned_message_with_undecodable_properties_keeps_its_place() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    method = commands.Basic.Return(312, "NO_ROUTE", "ex", "rk")
    frames = (
        encode((1, method))
        + _header_frame(1, 3, struct.pack(">H", 0x2000) + deep_tables(100))
        + _body_frames(1, b"abc", 100)
    )
    [returned] = conn.receive_data(frames, 0.0)
    assert isinstance(returned, Returned)
    assert (returned.routing_key, returned.body, returned.properties.headers) == ("rk", b"abc", {})


def test_a_content_header_too_short_for_its_fields_is_a_protocol_error() -> None:
    conn = open_connection()
    open_channel(conn, 3)
    payload = struct.pack(">HH", 60, 0)  # no weight, no body size
    frame = codec.HEADER.pack(codec.FRAME_HEADER, 3, len(payload)) + payload + b"\xce"
    with pytest.raises(ProtocolError, match="malformed frame .type 2. on channel 3"):
        conn.receive_data(_deliver(1) + frame, 0.0)


def test_a_method_frame_too_short_for_its_fields_is_a_protocol_error() -> None:
    conn = open_connection()
    open_channel(conn, 3)
    payload = struct.pack(">HH", 20, 40)  # Channel.Close without its arguments
    frame = codec.HEADER.pack(codec.FRAME_METHOD, 3, len(payload)) + payload + b"\xce"
    with pytest.raises(ProtocolError, match="malformed frame .type 1. on channel 3"):
        conn.receive_data(frame, 0.0)
