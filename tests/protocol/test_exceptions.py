"""nameko.exceptions: classes (SPEC 1.14) and the error format (SPEC 3.6, Appendix A)."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko import exceptions
from nameko._protocol import codecs
from nameko._protocol.envelopes import decode_reply, encode_reply
from nameko.exceptions import (
    BadRequest,
    CommandError,
    ConfigurationError,
    ConnectionNotFound,
    ContainerBeingKilled,
    ExtensionNotFound,
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    ReplyQueueExpiredWithPendingReplies,
    RpcTimeout,
    UnknownService,
    UnserializableValueError,
    deserialize,
    deserialize_to_instance,
    get_module_path,
    registry,
    safe_for_serialization,
    serialize,
)


def wire(exc: BaseException) -> bytes:
    """The JSON reply body a 2.14 service sends for ``exc``."""
    body, content_type, encoding = codecs.encode(encode_reply(None, exc), "json")
    assert (content_type, encoding) == ("application/json", "utf-8")
    return body


class TestAppendixA:
    """Every captured error reply, byte for byte."""

    def test_value_error_with_non_string_arg(self):
        assert wire(ValueError("bad thing", 42)) == (
            b'{"result": null, "error": {"exc_type": "ValueError", "exc_path": '
            b'"builtins.ValueError", "exc_args": ["bad thing", "42"], '
            b'"value": "(\'bad thing\', 42)"}}'
        )

    def test_expected_key_error(self):
        assert wire(KeyError("k")) == (
            b'{"result": null, "error": {"exc_type": "KeyError", "exc_path": '
            b'"builtins.KeyError", "exc_args": ["k"], "value": "\'k\'"}}'
        )

    def test_unserialisable_result(self):
        value = object()
        expected = (
            '{"result": null, "error": {"exc_type": "UnserializableValueError", '
            '"exc_path": "nameko.exceptions.UnserializableValueError", "exc_args": [], '
            f'"value": "Unserializable value: `{value!r}`"}}}}'
        )
        assert wire(UnserializableValueError(value)) == expected.encode()

    def test_method_not_found(self):
        assert wire(MethodNotFound("nosuch")) == (
            b'{"result": null, "error": {"exc_type": "MethodNotFound", "exc_path": '
            b'"nameko.exceptions.MethodNotFound", "exc_args": ["nosuch"], "value": "nosuch"}}'
        )

    def test_incorrect_signature(self):
        message = "hello() takes from 2 to 3 positional arguments but 5 were given"
        assert wire(IncorrectSignature(message)) == (
            b'{"result": null, "error": {"exc_type": "IncorrectSignature", '
            b'"exc_path": "nameko.exceptions.IncorrectSignature", '
            b'"exc_args": ["' + message.encode() + b'"], '
            b'"value": "' + message.encode() + b'"}}'
        )

    def test_cpython_message_matches_capture(self):
        class Svc:
            def hello(self, name, greeting="hi"):
                pass

        import inspect

        with pytest.raises(TypeError) as info:
            inspect.getcallargs(Svc.hello, None, 1, 2, 3, 4)
        assert str(info.value) == "hello() takes from 2 to 3 positional arguments but 5 were given"

    # Client side: what a 2.14 proxy raises for each captured reply.

    @pytest.mark.parametrize(
        ("exc", "text"),
        [
            (ValueError("bad thing", 42), "ValueError ('bad thing', 42)"),
            (KeyError("k"), "KeyError 'k'"),
        ],
    )
    def test_unregistered_become_remote_error(self, exc, text):
        with pytest.raises(RemoteError) as info:
            decode_reply(codecs.decode(wire(exc), "application/json", "utf-8"))
        assert str(info.value) == text
        assert info.value.exc_type == type(exc).__name__

    def test_unserialisable_becomes_remote_error(self):
        value = object()
        with pytest.raises(RemoteError) as info:
            decode_reply(json.loads(wire(UnserializableValueError(value))))
        assert str(info.value) == f"UnserializableValueError Unserializable value: `{value!r}`"

    def test_method_not_found_rebuilt(self):
        with pytest.raises(MethodNotFound) as info:
            decode_reply(json.loads(wire(MethodNotFound("nosuch"))))
        assert info.value.args == ("nosuch",)

    def test_incorrect_signature_rebuilt(self):
        message = "hello() takes from 2 to 3 positional arguments but 5 were given"
        with pytest.raises(IncorrectSignature) as info:
            decode_reply(json.loads(wire(IncorrectSignature(message))))
        assert str(info.value) == message


class TestClasses:
    @pytest.mark.parametrize(
        ("cls", "base"),
        [
            (ExtensionNotFound, AttributeError),
            (RpcTimeout, Exception),
            (ReplyQueueExpiredWithPendingReplies, Exception),
            (ContainerBeingKilled, Exception),
            (RemoteError, Exception),
            (BadRequest, Exception),
            (MalformedRequest, BadRequest),
            (MethodNotFound, BadRequest),
            (IncorrectSignature, BadRequest),
            (UnknownService, Exception),
            (UnserializableValueError, Exception),
            (ConfigurationError, Exception),
            (CommandError, Exception),
            (ConnectionNotFound, BadRequest),
        ],
    )
    def test_direct_base(self, cls, base):
        assert cls.__bases__ == (base,)

    def test_rpc_timeout_args(self):
        exc = RpcTimeout(5)
        assert exc.args == (5,)
        assert str(exc) == "5"

    def test_remote_error(self):
        exc = RemoteError(exc_type="ValueError", value="boom")
        assert (exc.exc_type, exc.value) == ("ValueError", "boom")
        assert exc.args == ("ValueError boom",)
        assert str(exc) == "ValueError boom"

    def test_remote_error_defaults(self):
        exc = RemoteError()
        assert exc.exc_type is None
        assert exc.value == ""
        assert str(exc) == "None "

    def test_unknown_service(self):
        exc = UnknownService("svc")
        assert exc._service_name == "svc"
        assert exc.args == ("svc",)
        assert str(exc) == "Unknown service `svc`"

    def test_unserializable_value_error(self):
        exc = UnserializableValueError({1, 2})
        assert exc.repr_value == "{1, 2}"
        assert exc.args == ()
        assert str(exc) == "Unserializable value: `{1, 2}`"

    def test_unserializable_value_error_repr_failure(self):
        class Bad:
            def __repr__(self):
                raise RuntimeError("nope")

        exc = UnserializableValueError(Bad())
        assert exc.repr_value == "[__repr__ failed]"
        assert str(exc) == "Unserializable value: `[__repr__ failed]`"

    @pytest.mark.parametrize(
        "cls",
        [
            BadRequest,
            MalformedRequest,
            MethodNotFound,
            IncorrectSignature,
            ConfigurationError,
            CommandError,
            ConnectionNotFound,
            ContainerBeingKilled,
            ExtensionNotFound,
            ReplyQueueExpiredWithPendingReplies,
        ],
    )
    def test_plain_message_classes(self, cls):
        exc = cls("message")
        assert exc.args == ("message",)
        assert str(exc) == "message"

    def test_all_exports(self):
        for name in exceptions.__all__:
            assert hasattr(exceptions, name), name
        assert "registry" in exceptions.__all__


class TestModulePath:
    def test_builtin(self):
        assert get_module_path(ValueError) == "builtins.ValueError"

    def test_ours(self):
        assert get_module_path(MethodNotFound) == "nameko.exceptions.MethodNotFound"

    def test_local_class_uses_module_and_bare_name(self):
        class Local(Exception):
            pass

        assert get_module_path(Local) == f"{__name__}.Local"

    def test_class_of_unimported_module(self):
        Dynamic = type("Dynamic", (Exception,), {"__module__": "not.a.real.module"})
        assert get_module_path(Dynamic) == "not.a.real.module.Dynamic"


class TestSafeForSerialization:
    def test_str_unchanged(self):
        assert safe_for_serialization("x") == "x"

    def test_non_strings_stringified(self):
        assert safe_for_serialization(42) == "42"
        assert safe_for_serialization(None) == "None"
        assert safe_for_serialization(1.5) == "1.5"

    def test_bytes_become_list_of_stringified_ints(self):
        assert safe_for_serialization(b"ab") == ["97", "98"]

    def test_dict_keys_and_values(self):
        assert safe_for_serialization({1: [2, "x"], "k": None}) == {"1": ["2", "x"], "k": "None"}

    def test_iterables(self):
        assert safe_for_serialization((1, "a")) == ["1", "a"]
        assert safe_for_serialization(x for x in [1]) == ["1"]

    def test_str_failure(self):
        class Bad:
            def __str__(self):
                raise RuntimeError("no")

        assert safe_for_serialization(Bad()) == "[__unicode__ failed]"

    def test_iteration_failure_falls_back_to_str(self):
        class BadIter:
            def __iter__(self):
                raise RuntimeError("no")

            def __str__(self):
                return "bad-iter"

        assert safe_for_serialization(BadIter()) == "bad-iter"


class TestSerialize:
    def test_key_order(self):
        assert list(serialize(ValueError("x"))) == ["exc_type", "exc_path", "exc_args", "value"]

    def test_dict_arg(self):
        assert serialize(ValueError({"a": 1})) == {
            "exc_type": "ValueError",
            "exc_path": "builtins.ValueError",
            "exc_args": [{"a": "1"}],
            "value": "{'a': 1}",
        }

    def test_no_args(self):
        assert serialize(RuntimeError()) == {
            "exc_type": "RuntimeError",
            "exc_path": "builtins.RuntimeError",
            "exc_args": [],
            "value": "",
        }

    def test_str_failure(self):
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no")

        assert serialize(Weird("a"))["value"] == "[__unicode__ failed]"


class TestDeserialize:
    def test_registry_has_builtins(self):
        for cls in (MalformedRequest, MethodNotFound, IncorrectSignature):
            assert registry[get_module_path(cls)] is cls
        assert get_module_path(UnknownService) not in registry

    def test_unregistered(self):
        exc = deserialize(
            {"exc_type": "Boom", "exc_path": "x.Boom", "exc_args": ["a"], "value": "va"}
        )
        assert type(exc) is RemoteError
        assert (exc.exc_type, exc.value) == ("Boom", "va")

    def test_registered_without_args(self):
        exc = deserialize({"exc_path": "nameko.exceptions.MalformedRequest"})
        assert type(exc) is MalformedRequest
        assert exc.args == ()

    def test_missing_keys(self):
        exc = deserialize({})
        assert type(exc) is RemoteError
        assert (exc.exc_type, exc.value) == (None, None)

    def test_unhashable_path(self):
        assert type(deserialize({"exc_path": ["x"]})) is RemoteError

    def test_deserialize_to_instance(self, monkeypatch):
        monkeypatch.setattr(exceptions, "registry", dict(registry))

        @deserialize_to_instance
        class Custom(Exception):
            pass

        assert exceptions.registry[f"{__name__}.Custom"] is Custom
        exc = deserialize(serialize(Custom("a", 1)))
        assert type(exc) is Custom
        assert exc.args == ("a", "1")  # stringified on the wire

    def test_registered_class_with_incompatible_constructor(self, monkeypatch):
        monkeypatch.setattr(exceptions, "registry", dict(registry))

        @deserialize_to_instance
        class OneArg(Exception):
            def __init__(self, only):
                super().__init__(only)

        exc = deserialize(serialize(OneArg("x")) | {"exc_args": ["a", "b"]})
        assert type(exc) is RemoteError
        assert exc.exc_type == "OneArg"


registered = st.sampled_from([MalformedRequest, MethodNotFound, IncorrectSignature])
texts = st.text(alphabet=string.printable + "éü☃", max_size=40)


@given(cls=registered, args=st.lists(texts, max_size=3))
def test_registered_round_trip(cls, args):
    exc = cls(*args)
    body, content_type, encoding = codecs.encode(serialize(exc), "json")
    rebuilt = deserialize(codecs.decode(body, content_type, encoding))
    assert type(rebuilt) is cls
    assert rebuilt.args == tuple(args)
    assert str(rebuilt) == str(exc)


@given(
    cls=st.sampled_from([ValueError, KeyError, RuntimeError, UnknownService]),
    arg=st.one_of(texts, st.integers(), st.none()),
)
def test_unregistered_round_trip(cls, arg):
    exc = cls(arg)
    rebuilt = deserialize(json.loads(json.dumps(serialize(exc))))
    assert type(rebuilt) is RemoteError
    assert rebuilt.exc_type == cls.__name__
    assert rebuilt.value == str(exc)
    assert str(rebuilt) == f"{cls.__name__} {exc}"


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(max_size=8)
)
nested_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), children, max_size=4),
    ),
    max_leaves=15,
)


def _only_safe_types(value) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return all(_only_safe_types(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_safe_types(v) for k, v in value.items())
    return False


@given(value=nested_values)
def test_safe_for_serialization_yields_only_strings_lists_dicts(value):
    safe = safe_for_serialization(value)
    assert _only_safe_types(safe)
    json.dumps(safe)  # always serialisable


@given(args=st.lists(nested_values, max_size=3))
def test_serialized_errors_always_encode(args):
    payload = serialize(ValueError(*args))
    for serializer in ("json", "yaml", "pickle"):
        codecs.encode({"result": None, "error": payload}, serializer)
