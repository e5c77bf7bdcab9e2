"""Frame encoding and the hot-path codecs.

pamqp (`pamqp.frame`) encodes and decodes every method we rarely send or
receive. The few frames on the per-message path (Basic.Publish, content
headers and bodies, Basic.Deliver, Basic.Ack/Nack/Reject) are coded here by
hand with precompiled `struct`s: pamqp's generic, attribute-walking codec
costs ~35 us per published message and ~30 us per delivery, more than the
rest of a broker round trip's client-side work. ``tests/protocol`` checks
that both codecs produce and accept the same bytes.

Field tables are coded here too, because pamqp cannot encode ``bytes`` values
and picks unsigned integer types that older peers reject; we use the type
letters RabbitMQ and py-amqp use (signed ``I``/``l``, ``S``, ``x``, ...).

Decoding treats every byte as hostile: any client can publish a content
header, and RabbitMQ relays its property bytes untouched. Tables and arrays
nest at most `MAX_NESTING` levels (the decoder recurses once per level, and
Python's recursion limit would otherwise be the cap, raised on the I/O
thread); lengths must stay inside their frame and their parent; a
truncated, overlong or non-UTF-8 field raises `DecodeError`, nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import struct
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any

from pamqp import frame

from nameko._broker.base import MAX_HEADER_NESTING, Properties

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "HEARTBEAT",
    "HEADER",
    "MAX_NESTING",
    "DecodeError",
    "decode_deliver",
    "decode_deliver_tags",
    "decode_properties",
    "decode_table",
    "encode_ack",
    "encode_method",
    "encode_properties",
    "encode_publish",
    "encode_reject",
    "encode_shortstr",
    "encode_table",
]

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_OVERHEAD = 8  # 7-byte header + frame-end octet

HEADER = struct.Struct(">BHI")  # frame type, channel, payload size
HEARTBEAT = HEADER.pack(FRAME_HEARTBEAT, 0, 0) + FRAME_END_BYTE
CLASS_METHOD = struct.Struct(">HH")

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_METHOD_HEAD = struct.Struct(">BHIHH")  # frame header + class id + method id
_PUBLISH_HEAD = struct.Struct(">BHIHHH")  # ... + ticket
_CONTENT_HEAD = struct.Struct(">BHIHHQ")  # frame header + class, weight, body size
_TAG_BIT = struct.Struct(">BHIHHQB")  # Basic.Ack / Basic.Reject: tag + one bit octet
_TAG_BIT_SIZE = 4 + 8 + 1

#: tables and arrays a field value may sit in, the outermost table counted
MAX_NESTING = MAX_HEADER_NESTING


class DecodeError(ValueError):
    """Bytes from the broker that are not a well-formed (or acceptable) field
    table, content header or delivery method."""


# what a malformed buffer makes the low-level decoders raise
_MALFORMED = (struct.error, IndexError, UnicodeDecodeError, ValueError, OverflowError, OSError)


def encode_method(channel: int, method: Any) -> bytes:
    """A whole method frame, encoded by pamqp.

    An ``arguments`` table (always the last field) is encoded by
    `encode_table` instead, so that binding arguments and message headers
    use the same integer types: RabbitMQ's headers exchange compares nested
    tables type by type.
    """
    arguments = getattr(method, "arguments", None)
    if not arguments or type(method).__slots__[-1] != "arguments":
        return frame.marshal(method, channel)
    method.arguments = {}
    try:
        raw = frame.marshal(method, channel)
    finally:
        method.arguments = arguments
    payload = raw[7:-5] + encode_table(arguments)  # drop the empty table pamqp wrote
    return HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


# -- hot path: outgoing ----------------------------------------------------


def encode_shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"short string longer than 255 bytes: {value[:40]!r}...")
    return _U8.pack(len(raw)) + raw


def encode_publish(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    properties: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes | memoryview]:
    """Basic.Publish + content header + body frames split by ``frame_max``.

    ``properties`` is the output of `encode_properties`. Returns the frames as
    one or more chunks, ready to be written in order.
    """
    names = (
        encode_shortstr(exchange)
        + encode_shortstr(routing_key)
        + (b"\x01" if mandatory else b"\x00")
    )
    size = len(body)
    head = [
        _PUBLISH_HEAD.pack(FRAME_METHOD, channel, 6 + len(names), 60, 40, 0),
        names,
        FRAME_END_BYTE,
        _CONTENT_HEAD.pack(FRAME_HEADER, channel, 12 + len(properties), 60, 0, size),
        properties,
        FRAME_END_BYTE,
    ]
    limit = frame_max - FRAME_OVERHEAD
    if size <= limit:
        if size:  # an empty body is sent as no body frame at all
            head += (HEADER.pack(FRAME_BODY, channel, size), body, FRAME_END_BYTE)
        return [b"".join(head)]
    chunks: list[bytes | memoryview] = [b"".join(head)]
    view = memoryview(body)
    for start in range(0, size, limit):
        part = view[start : start + limit]
        chunks += (HEADER.pack(FRAME_BODY, channel, len(part)), part, FRAME_END_BYTE)
    return chunks


def encode_ack(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    return (
        _TAG_BIT.pack(FRAME_METHOD, channel, _TAG_BIT_SIZE, 60, 80, delivery_tag, multiple)
        + FRAME_END_BYTE
    )


def encode_reject(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    return (
        _TAG_BIT.pack(FRAME_METHOD, channel, _TAG_BIT_SIZE, 60, 90, delivery_tag, requeue)
        + FRAME_END_BYTE
    )


# -- hot path: incoming ----------------------------------------------------


def decode_shortstr(buf: bytes, offset: int) -> tuple[str, int]:
    end = offset + 1 + buf[offset]
    return str(buf[offset + 1 : end], "utf-8"), end


def decode_deliver(buf: bytes, offset: int) -> tuple[str, int, bool, str, str]:
    """Basic.Deliver arguments (``offset`` is just past class and method ids).

    `DecodeError` when the exchange or routing key is not UTF-8 (a publisher
    may use any bytes): `decode_deliver_tags` still finds the delivery.
    """
    consumer_tag, delivery_tag, redelivered = decode_deliver_tags(buf, offset)
    offset += 1 + buf[offset] + 9
    try:
        exchange, offset = decode_shortstr(buf, offset)
        routing_key, _ = decode_shortstr(buf, offset)
    except UnicodeDecodeError:
        raise DecodeError("the exchange or routing key is not UTF-8") from None
    return consumer_tag, delivery_tag, redelivered, exchange, routing_key


def decode_deliver_tags(buf: bytes, offset: int) -> tuple[str, int, bool]:
    """The consumer tag (ours), delivery tag and redelivered bit of a
    Basic.Deliver: the broker writes them, so they always decode."""
    consumer_tag, offset = decode_shortstr(buf, offset)
    (delivery_tag,) = _U64.unpack_from(buf, offset)
    return consumer_tag, delivery_tag, bool(buf[offset + 8] & 1)


def decode_tag_bits(buf: bytes, offset: int) -> tuple[int, int]:
    """Basic.Ack / Basic.Nack from the server: delivery tag and the bit octet."""
    (delivery_tag,) = _U64.unpack_from(buf, offset)
    return delivery_tag, buf[offset + 8]


# -- field tables ----------------------------------------------------------


def _long_bytes(kind: bytes, raw: bytes) -> bytes:
    return kind + _U32.pack(len(raw)) + raw


def encode_value(value: Any, depth: int = 1) -> bytes:
    """One typed field value (type letter + data), inside ``depth`` containers."""
    kind = type(value)
    if kind is str:
        return _long_bytes(b"S", value.encode())
    if kind is bool:
        return b"t\x01" if value else b"t\x00"
    if kind is int:
        if -0x80000000 <= value <= 0x7FFFFFFF:
            return b"I" + struct.pack(">i", value)
        return b"l" + struct.pack(">q", value)
    if value is None:
        return b"V"
    return _encode_other(value, depth)


def _encode_other(value: Any, depth: int) -> bytes:
    if isinstance(value, bool):
        return encode_value(bool(value))
    if isinstance(value, int):
        return encode_value(int(value))
    if isinstance(value, str):
        return encode_value(str(value))
    if isinstance(value, float):
        return b"d" + struct.pack(">d", value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _long_bytes(b"x", bytes(value))
    if isinstance(value, Mapping):
        return b"F" + encode_table(value, depth + 1)
    if isinstance(value, (list, tuple)):
        if depth >= MAX_NESTING:
            raise _too_deep()
        return _long_bytes(b"A", b"".join(map(encode_value, value, repeat(depth + 1))))
    if isinstance(value, decimal.Decimal):
        return b"D" + _encode_decimal(value)
    if isinstance(value, datetime.datetime):
        return b"T" + _U64.pack(int(value.timestamp()))
    raise TypeError(f"cannot encode {type(value).__name__} in an AMQP field table: {value!r}")


def _encode_decimal(value: decimal.Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    places = max(0, -int(exponent))
    raw = int(value.scaleb(places))
    return struct.pack(">Bi", places, raw)


def _too_deep() -> ValueError:  # what no shimeji consumer would decode
    return ValueError(f"header tables and arrays nested deeper than {MAX_NESTING} levels")


def encode_table(table: Mapping[str, Any], depth: int = 1) -> bytes:
    """A field table with its 4-byte length prefix (``depth``: the containers
    it is the innermost of). Raises `ValueError` past `MAX_NESTING`."""
    if depth > MAX_NESTING:
        raise _too_deep()
    parts = []
    for key, value in table.items():
        parts.append(encode_shortstr(key))
        parts.append(encode_value(value, depth))
    raw = b"".join(parts)
    return _U32.pack(len(raw)) + raw


def _fixed(fmt: str) -> Callable[[bytes, int], tuple[Any, int]]:
    codec = struct.Struct(fmt)
    size = codec.size

    def decode(buf: bytes, offset: int) -> tuple[Any, int]:
        return codec.unpack_from(buf, offset)[0], offset + size

    return decode


def _decode_longstr(buf: bytes, offset: int) -> tuple[str | bytes, int]:
    (size,) = _U32.unpack_from(buf, offset)
    raw = bytes(buf[offset + 4 : offset + 4 + size])
    try:
        return raw.decode(), offset + 4 + size
    except UnicodeDecodeError:  # binary data sent as a string: keep the bytes
        return raw, offset + 4 + size


def _decode_bytes(buf: bytes, offset: int) -> tuple[bytes, int]:
    (size,) = _U32.unpack_from(buf, offset)
    return bytes(buf[offset + 4 : offset + 4 + size]), offset + 4 + size


def _decode_array(buf: bytes, offset: int, depth: int) -> tuple[list[Any], int]:
    if depth >= MAX_NESTING:
        raise DecodeError(f"field tables and arrays nested deeper than {MAX_NESTING} levels")
    (size,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + size  # past the buffer: a read fails, or the caller's end check
    items = []
    while offset < end:
        value, offset = decode_value(buf, offset, depth)
        items.append(value)
    if offset != end:
        raise DecodeError("a field value runs past the end of its array")
    return items, end


def _decode_decimal(buf: bytes, offset: int) -> tuple[decimal.Decimal, int]:
    places, raw = struct.unpack_from(">Bi", buf, offset)
    return decimal.Decimal(raw).scaleb(-places), offset + 5


def _decode_timestamp(buf: bytes, offset: int) -> tuple[datetime.datetime, int]:
    (seconds,) = _U64.unpack_from(buf, offset)
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc), offset + 8


_DECODERS: dict[int, Callable[[bytes, int], tuple[Any, int]]] = {
    ord("t"): lambda buf, offset: (bool(buf[offset]), offset + 1),
    ord("b"): _fixed(">b"),
    ord("B"): _fixed(">B"),
    ord("s"): _fixed(">h"),
    ord("u"): _fixed(">H"),
    ord("I"): _fixed(">i"),
    ord("i"): _fixed(">I"),
    ord("l"): _fixed(">q"),
    ord("L"): _fixed(">Q"),
    ord("f"): _fixed(">f"),
    ord("d"): _fixed(">d"),
    ord("D"): _decode_decimal,
    ord("S"): _decode_longstr,
    ord("x"): _decode_bytes,
    ord("T"): _decode_timestamp,
    ord("V"): lambda buf, offset: (None, offset),
}


_TABLE, _ARRAY = ord("F"), ord("A")  # the containers: decoded with their depth


def decode_value(buf: bytes, offset: int, depth: int = 0) -> tuple[Any, int]:
    """One typed field value inside a container ``depth`` levels down."""
    decoder = _DECODERS.get(buf[offset])
    if decoder is not None:  # a scalar: the common case, one lookup as before
        return decoder(buf, offset + 1)
    kind = buf[offset]
    if kind == _TABLE:
        return _decode_table(buf, offset + 1, depth + 1)
    if kind == _ARRAY:
        return _decode_array(buf, offset + 1, depth + 1)
    raise DecodeError(f"unknown field type {chr(kind)!r}")


def decode_table(buf: bytes, offset: int) -> tuple[dict[str, Any], int]:
    """A field table at ``offset``; returns it and the offset just past it.
    Raises `DecodeError` (only) when the bytes are not an acceptable table."""
    try:
        table, end = _decode_table(buf, offset, 0)
    except DecodeError:
        raise
    except UnicodeDecodeError:
        raise DecodeError("a field name that is not UTF-8") from None
    except (struct.error, IndexError):
        raise DecodeError("a field table or array longer than its frame") from None
    except _MALFORMED as exc:
        raise DecodeError(f"malformed field table ({exc})") from None
    if end > len(buf):
        raise DecodeError("a field table runs past the end of its frame")
    return table, end


def _decode_table(buf: bytes, offset: int, depth: int = 0) -> tuple[dict[str, Any], int]:
    if depth >= MAX_NESTING:
        raise DecodeError(f"field tables and arrays nested deeper than {MAX_NESTING} levels")
    (size,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + size  # past the buffer: a read fails, or the caller's end check
    table = {}
    while offset < end:
        key, offset = decode_shortstr(buf, offset)
        table[key], offset = decode_value(buf, offset, depth)
    if offset != end:
        raise DecodeError("a field value runs past the end of its table")
    return table, end


# -- basic properties --------------------------------------------------------


def _decode_octet(buf: bytes, offset: int) -> tuple[int, int]:
    return buf[offset], offset + 1


def _encode_headers(value: Mapping[str, Any]) -> bytes:
    return encode_table(value)


# (attribute of `Properties`, flag bit, encoder, decoder); the order is the
# wire order. cluster-id (bit 2) is deprecated: skipped when decoding.
_PROPERTIES: tuple[
    tuple[str, int, Callable[[Any], bytes], Callable[[bytes, int], tuple[Any, int]]], ...
] = (
    ("content_type", 0x8000, encode_shortstr, decode_shortstr),
    ("content_encoding", 0x4000, encode_shortstr, decode_shortstr),
    ("headers", 0x2000, _encode_headers, _decode_table),
    ("delivery_mode", 0x1000, _U8.pack, _decode_octet),
    ("priority", 0x0800, _U8.pack, _decode_octet),
    ("correlation_id", 0x0400, encode_shortstr, decode_shortstr),
    ("reply_to", 0x0200, encode_shortstr, decode_shortstr),
    ("expiration", 0x0100, encode_shortstr, decode_shortstr),
    ("message_id", 0x0080, encode_shortstr, decode_shortstr),
    ("timestamp", 0x0040, _U64.pack, _fixed(">Q")),
    ("type", 0x0020, encode_shortstr, decode_shortstr),
    ("user_id", 0x0010, encode_shortstr, decode_shortstr),
    ("app_id", 0x0008, encode_shortstr, decode_shortstr),
    ("cluster_id", 0x0004, encode_shortstr, decode_shortstr),
)
_ENCODED = _PROPERTIES[:-1]


def encode_properties(properties: Properties) -> bytes:
    """The property flags and list of a content header. Unset (None) values
    and empty headers are left out."""
    flags = 0
    parts = [b""]
    for name, bit, encode, _ in _ENCODED:
        value = getattr(properties, name)
        if value is not None and (value or name != "headers"):
            flags |= bit
            parts.append(encode(value))
    parts[0] = _U16.pack(flags)
    return b"".join(parts)


def decode_properties(buf: bytes, offset: int) -> Properties:
    """Properties from a content header payload (``offset`` at the flags;
    ``buf`` ends where the frame's payload ends). Raises `DecodeError` (only)
    when they cannot be decoded, naming the property."""
    name = "property flags"
    try:
        (flags,) = _U16.unpack_from(buf, offset)
        offset += 2
        extra = flags
        while extra & 1:  # continuation flag words: no properties defined there
            (extra,) = _U16.unpack_from(buf, offset)
            offset += 2
        values: dict[str, Any] = {}
        for name, bit, _, decode in _PROPERTIES:
            if flags & bit:
                values[name], offset = decode(buf, offset)
    except DecodeError as exc:
        raise DecodeError(f"{name}: {exc}") from None
    except UnicodeDecodeError:
        raise DecodeError(f"{name}: a string that is not UTF-8") from None
    except (struct.error, IndexError):
        raise DecodeError(f"{name}: longer than the content header") from None
    except _MALFORMED as exc:
        raise DecodeError(f"{name}: malformed ({exc})") from None
    if offset > len(buf):  # a string cut short: the last one decoded
        raise DecodeError(f"{next(reversed(values))}: runs past the end of the content header")
    values.pop("cluster_id", None)
    return _new_properties(values)


def _plain_dataclass(cls: type) -> bool:
    """True if instances can be built by filling ``__dict__`` (see below)."""
    if (
        not dataclasses.is_dataclass(cls)
        or hasattr(cls, "__post_init__")
        or "__slots__" in vars(cls)
    ):
        return False
    fields = [f for f in dataclasses.fields(cls) if f.name != "headers"]
    return all(f.default is not dataclasses.MISSING for f in fields)


if _plain_dataclass(Properties):
    _DEFAULTS = {f.name: f.default for f in dataclasses.fields(Properties) if f.name != "headers"}

    def _new_properties(values: dict[str, Any]) -> Properties:
        """`Properties(**values)` at a fifth of the cost: a frozen dataclass's
        ``__init__`` goes through ``object.__setattr__`` once per field, and
        this runs once per delivery."""
        props = object.__new__(Properties)
        attributes = props.__dict__
        attributes.update(_DEFAULTS)
        attributes["headers"] = {}
        attributes.update(values)
        return props

else:  # pragma: no cover - if Properties ever grows slots or validation
    _new_properties = lambda values: Properties(**values)  # noqa: E731
