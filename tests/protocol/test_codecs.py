"""Body serializers (codecs, jsoncodec) and nameko.serialization.setup (SPEC 1.15).

The ``KOMBU_*`` literals were captured from kombu 5.7.0's json serializer (the
same bytes as 5.3.7 and 5.4.0; 5.3.0 differs only by an extra
``"version": null`` in UUIDs) and pin wire compatibility in both directions.
"""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import json
import math
import pickle
import subprocess
import sys
import types
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko import serialization
from nameko._protocol import codecs, jsoncodec
from nameko._protocol.errors import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    ProtocolError,
    SerializationError,
    UnknownSerializer,
)
from nameko.exceptions import ConfigurationError

JSON = "application/json"
TZ2 = datetime.timezone(datetime.timedelta(hours=2))

# (value, exact kombu 5.7 body)
KOMBU_JSON = [
    (
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
        '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.678901"}',
    ),
    (
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}',
    ),
    (
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc),
        '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.678901+00:00"}',
    ),
    (
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=TZ2),
        '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05+02:00"}',
    ),
    (datetime.date(2024, 1, 2), '{"__type__": "date", "__value__": "2024-01-02"}'),
    (datetime.time(3, 4, 5, 6), '{"__type__": "time", "__value__": "03:04:05.000006"}'),
    (datetime.time(3, 4, 5), '{"__type__": "time", "__value__": "03:04:05"}'),
    (
        datetime.time(3, 4, 5, tzinfo=datetime.timezone.utc),
        '{"__type__": "time", "__value__": "03:04:05+00:00"}',
    ),
    (decimal.Decimal("1.10"), '{"__type__": "decimal", "__value__": "1.10"}'),
    (decimal.Decimal("-0.00"), '{"__type__": "decimal", "__value__": "-0.00"}'),
    (
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        '{"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}',
    ),
    (b"abc", '{"__type__": "bytes", "__value__": "abc"}'),
    (b"abc\xff", '{"__type__": "base64", "__value__": "YWJj/w=="}'),
    ("\u00e9\u2603", '"\\u00e9\\u2603"'),
    (2**70, "1180591620717411303424"),
    (1.0, "1.0"),
    (True, "true"),
    (None, "null"),
    (
        {"k": datetime.date(2024, 1, 1), "l": [datetime.time(1, 2)]},
        '{"k": {"__type__": "date", "__value__": "2024-01-01"}, '
        '"l": [{"__type__": "time", "__value__": "01:02:00"}]}',
    ),
]


class TestKombuJsonWire:
    @pytest.mark.parametrize(("value", "body"), KOMBU_JSON)
    def test_encode_matches_kombu(self, value, body):
        assert codecs.encode(value, "json") == (body.encode(), JSON, "utf-8")

    @pytest.mark.parametrize(("value", "body"), KOMBU_JSON)
    def test_decode_kombu_body(self, value, body):
        decoded = codecs.decode(body.encode(), JSON, "utf-8", ["json"])
        assert decoded == value
        assert type(decoded) is type(value)
        if isinstance(value, (datetime.datetime, datetime.time)):
            assert decoded.utcoffset() == value.utcoffset()

    def test_tuples_become_lists(self):
        assert codecs.encode((1, 2), "json")[0] == b"[1, 2]"

    def test_int_keys_become_strings(self):
        assert codecs.encode({1: 2}, "json")[0] == b'{"1": 2}'

    def test_nan_and_infinity(self):
        assert codecs.encode([math.nan, math.inf], "json")[0] == b"[NaN, Infinity]"
        decoded = codecs.decode(b"[NaN, Infinity]", JSON, "utf-8")
        assert math.isnan(decoded[0]) and decoded[1] == math.inf

    def test_datetime_subclass(self):
        class Stamp(datetime.datetime):
            pass

        assert codecs.encode(Stamp(2024, 1, 1), "json")[0] == (
            b'{"__type__": "datetime", "__value__": "2024-01-01T00:00:00"}'
        )

    def test_dunder_json_protocol(self):
        class Point:
            def __json__(self):
                return {"x": 1}

        assert codecs.encode(Point(), "json")[0] == b'{"x": 1}'

    def test_uuid_from_kombu_5_3_0(self):
        body = (
            b'{"__type__": "uuid", "__value__": '
            b'{"hex": "12345678123456781234567812345678", "version": null}}'
        )
        assert codecs.decode(body, JSON, "utf-8") == uuid.UUID(
            int=0x12345678123456781234567812345678
        )

    def test_uuid_version_applied_like_kombu(self):
        body = (
            b'{"__type__": "uuid", "__value__": '
            b'{"hex": "12345678123456781234567812345678", "version": 4}}'
        )
        assert codecs.decode(body, JSON, "utf-8") == uuid.UUID(
            "12345678-1234-4678-9234-567812345678"
        )

    @pytest.mark.parametrize(
        ("body", "value"),
        [
            (
                '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05Z"}',
                datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            ),
            (
                '{"__type__": "datetime", "__value__": "2024-01-02"}',
                datetime.datetime(2024, 1, 2),
            ),
            ('{"__type__": "decimal", "__value__": "1e5"}', decimal.Decimal("1E+5")),
            ('{"__type__": "decimal", "__value__": 5}', decimal.Decimal(5)),
            ('{"__value__": "2024-01-02", "__type__": "date"}', datetime.date(2024, 1, 2)),
        ],
    )
    def test_decode_variants_kombu_accepts(self, body, value):
        assert codecs.decode(body.encode(), JSON, "utf-8") == value

    @pytest.mark.parametrize(
        "body",
        [
            '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05", "x": 1}',
            '{"__type__": "datetime"}',
            '{"__value__": 1}',
            '{"__type__": 5, "__value__": 1}',
        ],
    )
    def test_non_marker_dicts_untouched(self, body):
        assert codecs.decode(body.encode(), JSON, "utf-8") == json.loads(body)

    def test_unknown_marker_left_alone(self):
        # kombu raises here; a user dict is more likely than a type we should know
        body = b'{"__type__": "unknown", "__value__": 1}'
        assert codecs.decode(body, JSON, "utf-8") == {"__type__": "unknown", "__value__": 1}

    def test_escaped_marker_key_still_decoded(self):
        body = b'{"\\u005f_type__": "date", "__value__": "2024-01-02"}'
        assert codecs.decode(body, JSON, "utf-8") == datetime.date(2024, 1, 2)

    @pytest.mark.parametrize(
        "body",
        [
            '{"__type__": "datetime", "__value__": "abc"}',
            '{"__type__": "decimal", "__value__": "abc"}',
            '{"__type__": "uuid", "__value__": "12345678-1234-5678-1234-567812345678"}',
            '{"__type__": "base64", "__value__": "abc"}',
            '{"__type__": "bytes", "__value__": 5}',
        ],
    )
    def test_invalid_marker_value(self, body):
        with pytest.raises(DecodeError, match="invalid"):
            codecs.decode(body.encode(), JSON, "utf-8")

    def test_old_kombu_strings_stay_strings(self):
        # kombu <= 5.2 sent plain isoformat strings; nothing can tell them apart
        body = b'{"v": "2024-01-02T03:04:05.678901"}'
        assert codecs.decode(body, JSON, "utf-8") == {"v": "2024-01-02T03:04:05.678901"}

    @pytest.mark.parametrize(
        "value", [{1, 2}, frozenset([1]), datetime.timedelta(1), object(), bytearray(b"x")]
    )
    def test_unserialisable_like_kombu(self, value):
        with pytest.raises(EncodeError, match="json"):
            codecs.encode(value, "json")

    def test_non_string_dict_key(self):
        with pytest.raises(EncodeError):
            codecs.encode({(1, 2): 1}, "json")

    def test_circular(self):
        loop: list = []
        loop.append(loop)
        with pytest.raises(EncodeError):
            codecs.encode(loop, "json")

    def test_register_json_type(self, monkeypatch):
        monkeypatch.setattr(jsoncodec, "_encoders", list(jsoncodec._encoders))
        monkeypatch.setattr(jsoncodec, "_decoders", dict(jsoncodec._decoders))
        jsoncodec.register_type(
            datetime.timedelta,
            "timedelta",
            lambda v: v.total_seconds(),
            lambda s: datetime.timedelta(seconds=s),
        )
        body, ct, enc = codecs.encode(datetime.timedelta(seconds=90), "json")
        assert body == b'{"__type__": "timedelta", "__value__": 90.0}'
        assert codecs.decode(body, ct, enc) == datetime.timedelta(seconds=90)


class TestDecodeErrors:
    @pytest.mark.parametrize("body", [b"{bad", b"", b"[1,", b"\xef\xbb\xbf{}"])
    def test_invalid_json(self, body):
        with pytest.raises(DecodeError, match="Cannot decode json message body"):
            codecs.decode(body, JSON, "utf-8", ["json"])

    def test_invalid_utf8(self):
        with pytest.raises(DecodeError, match="utf-8"):
            codecs.decode(b'{"a": "\xe9"}', JSON, "utf-8", ["json"])

    def test_json_ignores_declared_encoding(self):
        # like kombu: json bodies are UTF-8 whatever the property says
        assert codecs.decode(b'{"a": 1}', JSON, "binary", ["json"]) == {"a": 1}
        assert codecs.decode(b'{"a": 1}', JSON, None, ["json"]) == {"a": 1}

    def test_yaml_is_safe(self):
        with pytest.raises(DecodeError, match="yaml"):
            codecs.decode(b"!!python/object:os.system {}", "application/x-yaml", "utf-8", ["yaml"])

    def test_truncated_pickle(self):
        with pytest.raises(DecodeError, match="pickle"):
            codecs.decode(b"garbage", "application/x-python-serialize", "binary", ["pickle"])

    def test_error_hierarchy(self):
        for cls in (ContentDisallowed, DecodeError, EncodeError, UnknownSerializer):
            assert issubclass(cls, SerializationError)
            assert issubclass(cls, ProtocolError)
        assert issubclass(UnknownSerializer, KeyError)
        assert str(UnknownSerializer("msg")) == "msg"


class TestAccept:
    def test_disallowed(self):
        with pytest.raises(ContentDisallowed) as info:
            codecs.decode(b"x", "application/x-python-serialize", "binary", ["json"])
        assert "application/x-python-serialize" in str(info.value)
        assert "json" in str(info.value)

    def test_disallowed_json(self):
        with pytest.raises(ContentDisallowed):
            codecs.decode(b"{}", JSON, "utf-8", ["yaml"])

    def test_accept_by_content_type(self):
        assert codecs.decode(b"{}", JSON, "utf-8", [JSON]) == {}

    def test_accept_none_allows_all(self):
        body = pickle.dumps({"a": 1})
        assert codecs.decode(body, "application/x-python-serialize", "binary") == {"a": 1}

    def test_unknown_content_type_disallowed(self):
        with pytest.raises(ContentDisallowed):
            codecs.decode(b"x", "text/plain", "utf-8", ["json"])

    @pytest.mark.parametrize(
        ("content_type", "encoding", "expected"),
        [
            (None, None, '{"a": 1}'),
            ("", "", '{"a": 1}'),
            (None, "binary", b'{"a": 1}'),
            ("application/data", "binary", b'{"a": 1}'),
            ("application/data", None, b'{"a": 1}'),
        ],
    )
    def test_untyped_bodies_pass_through(self, content_type, encoding, expected):
        assert codecs.decode(b'{"a": 1}', content_type, encoding, ["json"]) == expected

    def test_untyped_invalid_text(self):
        with pytest.raises(DecodeError):
            codecs.decode(b"\xff", None, None, ["json"])

    def test_accepted_type_without_decoder_passes_through(self):
        assert codecs.decode(b"abc", "application/x-mine", "utf-8", ["application/x-mine"]) == "abc"
        assert (
            codecs.decode(b"abc", "application/x-mine", "binary", ["application/x-mine"]) == b"abc"
        )

    def test_accepted_content_types(self):
        assert codecs.accepted_content_types(["json", "pickle", "application/x-other"]) == {
            JSON,
            "application/x-python-serialize",
            "application/x-other",
        }

    def test_body_types(self):
        for body in (bytearray(b"[1]"), memoryview(b"[1]"), "[1]"):
            assert codecs.decode(body, JSON, "utf-8") == [1]


class TestRegistry:
    def test_builtins(self):
        for name, content_type, encoding in [
            ("json", JSON, "utf-8"),
            ("pickle", "application/x-python-serialize", "binary"),
            ("yaml", "application/x-yaml", "utf-8"),
        ]:
            codec = codecs.get_codec(name)
            assert (codec.content_type, codec.content_encoding) == (content_type, encoding)
            assert codecs.serializer_for(content_type) == name

    def test_serializer_for_unknown(self):
        assert codecs.serializer_for("text/plain") is None
        assert codecs.serializer_for(None) is None

    def test_unknown_serializer(self):
        with pytest.raises(UnknownSerializer, match="nope"):
            codecs.encode(1, "nope")
        assert not codecs.is_registered("nope")
        assert not codecs.is_registered(None)  # type: ignore[arg-type]

    def test_msgpack_only_when_importable(self):
        # kombu, once imported (by an extension), has a msgpack entry without msgpack
        importlib.import_module("kombu.serialization")
        importable = importlib.util.find_spec("msgpack") is not None
        assert codecs.is_registered("msgpack") is importable

    def test_msgpack_registration(self, monkeypatch):
        fake = types.SimpleNamespace(
            packb=lambda obj, use_bin_type: repr((obj, use_bin_type)).encode(),
            unpackb=lambda data, raw: ("unpacked", data, raw),
        )
        monkeypatch.setitem(sys.modules, "msgpack", fake)
        try:
            codecs._register_msgpack()
            assert codecs.encode([1], "msgpack") == (
                b"([1], True)",
                "application/x-msgpack",
                "binary",
            )
            assert codecs.decode(b"x", "application/x-msgpack", "binary", ["msgpack"]) == (
                "unpacked",
                b"x",
                False,
            )
        finally:
            codecs.unregister("msgpack")
            monkeypatch.undo()
            codecs._register_msgpack()  # restore the real state

    def test_register_custom(self):
        codecs.register("upper", str.upper, str.lower, "application/x-upper", "utf-8")
        try:
            assert codecs.encode("abc", "upper") == (b"ABC", "application/x-upper", "utf-8")
            assert codecs.decode(b"ABC", "application/x-upper", "utf-8", ["upper"]) == "abc"
            assert "upper" in codecs.registered_names()
        finally:
            codecs.unregister("upper")
        assert not codecs.is_registered("upper")
        assert codecs.serializer_for("application/x-upper") is None

    def test_register_binary_custom_gets_bytes(self):
        codecs.register("rev", lambda b: b[::-1], lambda b: b[::-1], "application/x-rev", "binary")
        try:
            assert codecs.encode(b"ab", "rev")[0] == b"ba"
            assert codecs.decode(b"ba", "application/x-rev", "binary", ["rev"]) == b"ab"
        finally:
            codecs.unregister("rev")

    def test_replacing_keeps_content_type_map_consistent(self):
        codecs.register("tmp", str, str, "application/x-a")
        codecs.register("tmp", str, str, "application/x-b")
        try:
            assert codecs.serializer_for("application/x-a") is None
            assert codecs.serializer_for("application/x-b") == "tmp"
        finally:
            codecs.unregister("tmp")

    def test_encoder_errors_wrapped(self):
        def boom(obj):
            raise RuntimeError("nope")

        codecs.register("boom", boom, boom, "application/x-boom")
        try:
            with pytest.raises(EncodeError, match="nope"):
                codecs.encode(1, "boom")
            with pytest.raises(DecodeError, match="nope"):
                codecs.decode(b"x", "application/x-boom", "utf-8")
        finally:
            codecs.unregister("boom")


class TestOtherBuiltins:
    def test_pickle_bytes_match_kombu(self):
        assert codecs.encode({"a": 1}, "pickle")[0] == (
            b"\x80\x04\x95\n\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
        )

    @pytest.mark.parametrize(
        ("value", "body"),
        [
            ({"a": 1}, b"a: 1\n"),
            ("x", b"x\n...\n"),
            ({"a": (1, 2)}, b"a:\n- 1\n- 2\n"),
            ({"a": datetime.datetime(2024, 1, 1)}, b"a: 2024-01-01 00:00:00\n"),
        ],
    )
    def test_yaml_bytes_match_kombu(self, value, body):
        assert codecs.encode(value, "yaml") == (body, "application/x-yaml", "utf-8")


# -- round-trip properties ---------------------------------------------------------

offsets = st.integers(min_value=-23 * 60 + 1, max_value=23 * 60 - 1).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
tz = st.one_of(st.none(), offsets)
rich_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=16),
    st.datetimes(timezones=tz),
    st.dates(),
    st.times(timezones=tz),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
)
plain_keys = st.text(max_size=8).filter(lambda key: not key.startswith("__"))


def containers(children):
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(plain_keys, children, max_size=4),
    )


rich_values = st.recursive(rich_leaves, containers, max_leaves=12)


def same(left, right) -> bool:
    """Equality that also checks types and UTC offsets (== ignores both)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, (datetime.datetime, datetime.time)):
        return left == right and left.utcoffset() == right.utcoffset()
    if isinstance(left, decimal.Decimal):
        return str(left) == str(right)
    return left == right


@given(value=rich_values)
def test_json_round_trip(value):
    body, content_type, encoding = codecs.encode(value, "json")
    body.decode("ascii")  # kombu-style JSON is pure ASCII
    assert same(codecs.decode(body, content_type, encoding, ["json"]), value)


@given(
    value=st.recursive(st.one_of(rich_leaves, st.sets(st.integers())), containers, max_leaves=12)
)
def test_pickle_round_trip(value):
    body, content_type, encoding = codecs.encode(value, "pickle")
    assert same(codecs.decode(body, content_type, encoding, ["pickle"]), value)


yaml_text = st.text(st.characters(blacklist_categories=("Cs",)))
yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), yaml_text),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(yaml_text, children, max_size=4)
    ),
    max_leaves=12,
)


@given(value=yaml_values)
def test_yaml_round_trip(value):
    body, content_type, encoding = codecs.encode(value, "yaml")
    assert same(codecs.decode(body, content_type, encoding, ["yaml"]), value)


@given(value=rich_values, serializer=st.sampled_from(["json", "pickle"]))
def test_serializer_for_selects_the_decoder(value, serializer):
    body, content_type, encoding = codecs.encode(value, serializer)
    assert codecs.serializer_for(content_type) == serializer
    assert same(codecs.decode(body, content_type, encoding, [serializer]), value)


@given(body=st.binary(max_size=40))
def test_arbitrary_bytes_never_escape_as_other_errors(body):
    for content_type in (JSON, "application/x-yaml"):
        try:
            codecs.decode(body, content_type, "utf-8")
        except DecodeError:
            pass


# -- nameko.serialization.setup -----------------------------------------------------


def upper_encode(value: str) -> str:
    return value.upper()


def upper_decode(value: str) -> str:
    return value.lower()


class TestSetup:
    def test_defaults(self):
        assert serialization.setup({}) == ("json", ["json"])

    def test_is_a_named_tuple(self):
        config = serialization.setup({"serializer": "pickle"})
        serializer, accept = config
        assert (config.serializer, config.accept) == (serializer, accept) == ("pickle", ["pickle"])

    def test_accept_given(self):
        assert serialization.setup({"serializer": "json", "ACCEPT": ["json", "pickle"]}) == (
            "json",
            ["json", "pickle"],
        )

    def test_uppercase_serializer_key_is_not_read(self):
        assert serialization.setup({"SERIALIZER": "pickle"}) == ("json", ["json"])

    def test_unknown_serializer(self):
        with pytest.raises(ConfigurationError) as info:
            serialization.setup({"serializer": "nope"})
        assert str(info.value) == 'Please register a serializer for "nope" format'

    def test_unknown_accept(self):
        with pytest.raises(ConfigurationError, match='"avro"'):
            serialization.setup({"ACCEPT": ["json", "avro"]})

    def test_content_type_in_accept_is_not_a_name(self):
        with pytest.raises(ConfigurationError, match="application/json"):
            serialization.setup({"ACCEPT": ["application/json"]})

    def test_custom_serializer(self):
        config = {
            "serializer": "upper",
            "SERIALIZERS": {
                "upper": {
                    "encoder": f"{__name__}.upper_encode",
                    "decoder": f"{__name__}.upper_decode",
                    "content_type": "application/x-upper",
                    "content_encoding": "utf-8",
                }
            },
        }
        try:
            assert serialization.setup(config) == ("upper", ["upper"])
            assert codecs.encode("abc", "upper") == (b"ABC", "application/x-upper", "utf-8")
            # the user's config is left untouched
            assert "encoder" in config["SERIALIZERS"]["upper"]
            assert serialization.setup(config) == ("upper", ["upper"])
        finally:
            codecs.unregister("upper")

    def test_custom_serializer_bad_path(self):
        config = {
            "SERIALIZERS": {
                "x": {"encoder": "no.such.thing", "decoder": "json.loads", "content_type": "a/b"}
            }
        }
        with pytest.raises(ImportError, match="`no.such.thing` could not be imported"):
            serialization.setup(config)

    def test_custom_serializer_incomplete(self):
        config = {"SERIALIZERS": {"x": {"encoder": "json.dumps", "decoder": "json.loads"}}}
        with pytest.raises(ConfigurationError, match="content_type"):
            serialization.setup(config)
        assert not codecs.is_registered("x")

    def test_custom_serializer_unknown_option(self):
        config = {
            "SERIALIZERS": {
                "x": {
                    "encoder": "json.dumps",
                    "decoder": "json.loads",
                    "content_type": "a/b",
                    "colour": "red",
                }
            }
        }
        with pytest.raises(ConfigurationError, match="colour"):
            serialization.setup(config)


class TestKombuRegisteredSerializers:
    """A name we lack is looked up in kombu's registry, only once kombu is loaded."""

    def test_a_name_only_kombu_knows_is_adopted(self):
        kombu_serialization = pytest.importorskip("kombu.serialization")
        kombu_serialization.register(
            "kombu-upper",
            lambda obj: json.dumps(obj).upper(),
            lambda text: json.loads(text.lower()),
            "application/x-kombu-upper",
            "utf-8",
        )
        try:
            assert serialization.setup({"serializer": "kombu-upper"}) == (
                "kombu-upper",
                ["kombu-upper"],
            )
            body, content_type, encoding = codecs.encode({"a": "b"}, "kombu-upper")
            assert (body, content_type, encoding) == (
                b'{"A": "B"}',
                "application/x-kombu-upper",
                "utf-8",
            )
            assert codecs.decode(body, content_type, encoding, ["kombu-upper"]) == {"a": "b"}
        finally:
            kombu_serialization.unregister("kombu-upper")
            codecs.unregister("kombu-upper")

    def test_kombu_is_never_imported_for_an_unknown_name(self):
        code = (
            "import sys\n"
            "from nameko import serialization\n"
            "try:\n"
            "    serialization.setup({'serializer': 'nope'})\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__)\n"
            "print('kombu' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
        assert out == ["ConfigurationError", "False"]
