"""RPC request/reply envelopes (SPEC 3.2, 3.3, 3.5)."""

from __future__ import annotations

import datetime
import decimal
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko._protocol import codecs
from nameko._protocol.envelopes import (
    EncodedReply,
    RpcRequest,
    decode_reply,
    decode_request,
    encode_reply,
    encode_reply_body,
    encode_request,
)
from nameko._protocol.errors import MalformedReply, UnknownSerializer
from nameko.exceptions import (
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    UnserializableValueError,
    serialize,
)

# JSON values that survive a round trip unchanged (no tuples, no NaN).
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.text(max_size=8).filter(lambda k: not k.startswith("__")), children, max_size=4
        ),
    ),
    max_leaves=12,
)
kwargs_dicts = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


class TestRequest:
    def test_captured_body(self):
        body, content_type, encoding = codecs.encode(encode_request(("bob",), {}), "json")
        assert body == b'{"args": ["bob"], "kwargs": {}}'
        assert (content_type, encoding) == ("application/json", "utf-8")

    def test_args_become_a_list(self):
        assert encode_request((1, 2), {"a": 3}) == {"args": [1, 2], "kwargs": {"a": 3}}
        assert encode_request(iter([1]), {}) == {"args": [1], "kwargs": {}}

    def test_decode(self):
        assert decode_request({"args": [1], "kwargs": {"a": 2}}) == ([1], {"a": 2})

    def test_decode_accepts_a_tuple_of_args(self):  # nameko's pickled requests
        assert decode_request({"args": (1,), "kwargs": {}}) == ((1,), {})

    @pytest.mark.parametrize("body", [{"args": []}, {"kwargs": {}}, {}])
    def test_missing_key(self, body):
        with pytest.raises(MalformedRequest) as info:
            decode_request(body)
        assert info.value.args == ("Message missing `args` or `kwargs`",)

    @pytest.mark.parametrize(
        "body,words",
        [
            ([1, 2], "body must be an object with `args` and `kwargs`, not a list"),
            ("text", "not a string"),
            (None, "not null"),
            (5, "not a number"),
            (b"raw", "not bytes"),
            ({"args": 5, "kwargs": {}}, "`args` must be a list, not a number"),
            ({"args": {"a": 1}, "kwargs": {}}, "`args` must be a list, not an object"),
            ({"args": [], "kwargs": None}, "`kwargs` must be an object with string keys, not null"),
            (
                {"args": [], "kwargs": [1]},
                "`kwargs` must be an object with string keys, not a list",
            ),
            ({"args": [], "kwargs": {1: 2}}, "`kwargs` must be an object with string keys"),
        ],
    )
    def test_a_body_of_the_wrong_shape_is_a_malformed_request(self, body, words):
        with pytest.raises(MalformedRequest, match=re.escape(words)) as info:
            decode_request(body)
        assert serialize(info.value)["exc_path"] == "nameko.exceptions.MalformedRequest"


@given(args=st.lists(json_values, max_size=5), kwargs=kwargs_dicts)
def test_request_round_trip(args, kwargs):
    for serializer in ("json", "pickle"):
        body, content_type, encoding = codecs.encode(
            encode_request(tuple(args), kwargs), serializer
        )
        decoded = codecs.decode(body, content_type, encoding, [serializer])
        assert decode_request(decoded) == (args, kwargs)


class TestReply:
    def test_result_body(self):
        body, _, _ = codecs.encode(encode_reply("hi", None), "json")
        assert body == b'{"result": "hi", "error": null}'

    def test_none_result(self):
        assert encode_reply(None, None) == {"result": None, "error": None}

    def test_error_body(self):
        assert encode_reply(None, MethodNotFound("x")) == {
            "result": None,
            "error": serialize(MethodNotFound("x")),
        }

    def test_decode_result(self):
        assert decode_reply({"result": [1], "error": None}) == [1]

    def test_decode_missing_keys(self):
        assert decode_reply({}) is None

    def test_falsy_error_is_no_error(self):
        assert decode_reply({"result": 3, "error": {}}) == 3

    def test_decode_registered_error(self):
        with pytest.raises(MethodNotFound) as info:
            decode_reply(encode_reply(None, MethodNotFound("nosuch")))
        assert info.value.args == ("nosuch",)

    def test_decode_unregistered_error(self):
        with pytest.raises(RemoteError) as info:
            decode_reply(encode_reply(None, ZeroDivisionError("division by zero")))
        assert str(info.value) == "ZeroDivisionError division by zero"

    def test_error_that_is_not_a_dict(self):
        with pytest.raises(RemoteError) as info:
            decode_reply({"result": None, "error": "boom"})
        assert info.value.value == "boom"

    @pytest.mark.parametrize("body", [[1], "x", None, 3])
    def test_non_mapping_reply(self, body):
        with pytest.raises(MalformedReply, match="not a mapping"):
            decode_reply(body)


@given(result=json_values)
def test_reply_round_trip(result):
    body, content_type, encoding = codecs.encode(encode_reply(result, None), "json")
    assert decode_reply(codecs.decode(body, content_type, encoding, ["json"])) == result


@given(message=st.text(max_size=30), cls=st.sampled_from([MethodNotFound, MalformedRequest]))
def test_error_reply_round_trip(message, cls):
    body, content_type, encoding = codecs.encode(encode_reply(None, cls(message)), "json")
    with pytest.raises(cls) as info:
        decode_reply(codecs.decode(body, content_type, encoding, ["json"]))
    assert info.value.args == (message,)


class TestEncodeReplyBody:
    def test_plain_result(self):
        reply = encode_reply_body({"a": 1}, None, "json")
        assert reply == EncodedReply(
            b'{"result": {"a": 1}, "error": null}', "application/json", "utf-8", {"a": 1}, None
        )

    def test_error(self):
        exc = ValueError("bad thing", 42)
        reply = encode_reply_body(None, exc, "json")
        assert reply.error is exc
        assert b'"exc_args": ["bad thing", "42"]' in reply.body

    def test_rich_types_are_serialisable(self):
        value = [datetime.date(2024, 1, 2), decimal.Decimal("1.5"), uuid.UUID(int=3), b"x"]
        reply = encode_reply_body(value, None, "json")
        assert reply.error is None
        assert (
            decode_reply(codecs.decode(reply.body, reply.content_type, reply.content_encoding))
            == value
        )

    @pytest.mark.parametrize("value", [object(), {1, 2}, datetime.timedelta(1)])
    def test_unserialisable_result(self, value):
        reply = encode_reply_body(value, None, "json")
        assert isinstance(reply.error, UnserializableValueError)
        assert reply.result is None
        assert reply.error.__traceback__ is not None
        assert reply.error.__cause__ is not None
        expected = codecs.encode(encode_reply(None, UnserializableValueError(value)), "json")[0]
        assert reply.body == expected

    def test_pickle_serialises_what_json_cannot(self):
        reply = encode_reply_body({1, 2}, None, "pickle")
        assert reply.error is None
        assert reply.content_type == "application/x-python-serialize"
        decoded = codecs.decode(reply.body, reply.content_type, reply.content_encoding, ["pickle"])
        assert decode_reply(decoded) == {1, 2}

    def test_unknown_serializer(self):
        with pytest.raises(UnknownSerializer):
            encode_reply_body(1, None, "nope")


class TestRpcRequest:
    def test_outgoing(self):
        request = RpcRequest.outgoing(
            "svc_a",
            "hello",
            correlation_id="c1",
            reply_to="r1",
            context_data={"language": "en", "call_id_stack": ["x"]},
        )
        assert request.routing_key == "svc_a.hello"
        assert request.headers == {"nameko.language": "en", "nameko.call_id_stack": ["x"]}
        assert (request.correlation_id, request.reply_to) == ("c1", "r1")
        assert request.service_name == "svc_a"
        assert request.method_name == "hello"
        assert request.wants_reply

    def test_incoming_context(self):
        request = RpcRequest("svc.m", "c", "r", {"nameko.user_id": 7, "foreign": 1})
        assert request.context_data() == {"user_id": 7, "foreign": 1}

    @pytest.mark.parametrize("reply_to", [None, ""])
    def test_without_reply_to(self, reply_to):
        assert not RpcRequest("svc.m", "c", reply_to).wants_reply

    def test_frozen(self):
        with pytest.raises(AttributeError):
            RpcRequest("svc.m").reply_to = "x"  # type: ignore[misc]
