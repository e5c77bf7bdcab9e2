"""nameko.utils: get_redacted_args (every observed rule of SPEC 1.16), import_from_path,
sanitize_url."""

from __future__ import annotations

import json
import types

import pytest

from nameko import utils
from nameko.utils import REDACTED, get_redacted_args, import_from_path, sanitize_url


class Service:
    name = "svc"

    def login(self, username, password):
        pass

    def nested(self, foo, bar=None):
        pass

    def varargs(self, a, *args, **kwargs):
        pass


def entrypoint(method_name: str, sensitive=()) -> types.SimpleNamespace:
    container = types.SimpleNamespace(service_cls=Service)
    return types.SimpleNamespace(
        container=container, method_name=method_name, sensitive_arguments=sensitive
    )


def test_redacted_constant_is_eight_asterisks():
    assert REDACTED == "********"


def test_no_sensitive_arguments_gives_callargs_without_self():
    assert get_redacted_args(entrypoint("login"), "bob", password="pw") == {
        "username": "bob",
        "password": "pw",
    }


@pytest.mark.parametrize("sensitive", ["password", ("password",)])
def test_top_level(sensitive):
    assert get_redacted_args(entrypoint("login", sensitive), "bob", "pw") == {
        "username": "bob",
        "password": REDACTED,
    }


def test_several_paths():
    result = get_redacted_args(entrypoint("login", ("username", "password")), "bob", "pw")
    assert result == {"username": REDACTED, "password": REDACTED}


def test_dict_key():
    foo = {"a": 1, "b": 2}
    assert get_redacted_args(entrypoint("nested", "foo.a"), foo)["foo"] == {"a": REDACTED, "b": 2}


def test_list_index():
    assert get_redacted_args(entrypoint("nested", "foo[1]"), [1, 2, 3])["foo"] == [1, REDACTED, 3]


def test_dict_then_index():
    foo = {"a": [1, 2], "b": 2}
    assert get_redacted_args(entrypoint("nested", "foo.a[1]"), foo)["foo"] == {
        "a": [1, REDACTED],
        "b": 2,
    }


def test_deep_copy_leaves_caller_data_alone():
    foo = {"a": [1, 2]}
    get_redacted_args(entrypoint("nested", "foo.a[0]"), foo)
    assert foo == {"a": [1, 2]}


def test_first_token_must_be_a_call_argument():
    # not added: the first token is checked before anything is assigned
    assert get_redacted_args(entrypoint("login", "secret"), "bob", "pw") == {
        "username": "bob",
        "password": "pw",
    }


def test_missing_final_dict_key_is_added():
    assert get_redacted_args(entrypoint("nested", "foo.missing"), {"a": 1})["foo"] == {
        "a": 1,
        "missing": REDACTED,
    }


def test_index_token_on_dict_adds_int_key():
    assert get_redacted_args(entrypoint("nested", "foo[1]"), {"a": 1})["foo"] == {
        "a": 1,
        1: REDACTED,
    }


def test_missing_intermediate_key_stops():
    assert get_redacted_args(entrypoint("nested", "foo.x.y"), {"a": 1})["foo"] == {"a": 1}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("foo[5]", [1, 2]),  # index out of range
        ("foo[0]", 7),  # not a container
        ("foo[0]", "text"),  # immutable sequence
        ("foo[0]", (1, 2)),
        ("foo.a", [1, 2]),  # word key on a list
        ("foo.a", None),  # final token on None
    ],
)
def test_final_assignment_failures_are_ignored(path, value):
    assert get_redacted_args(entrypoint("nested", path), value)["foo"] == value


def test_list_intermediate_tests_membership_not_index():
    # `0 in [{"y": 1}]` is False: the documented path does nothing...
    assert get_redacted_args(entrypoint("nested", "foo[0].y"), [{"y": 1}])["foo"] == [{"y": 1}]


def test_list_intermediate_works_by_accident():
    # ...but works when the list happens to contain a value equal to the index
    result = get_redacted_args(entrypoint("nested", "foo[0].y"), [{"y": 1}, 0])
    assert result["foo"] == [{"y": REDACTED}, 0]


def test_intermediate_none_raises_type_error():
    # a None that still has to be searched (``"b" in None``) raises...
    with pytest.raises(TypeError):
        get_redacted_args(entrypoint("nested", "foo.a.b.c"), {"a": None})


def test_none_argument_as_intermediate_raises():
    with pytest.raises(TypeError):
        get_redacted_args(entrypoint("nested", "bar.a.b"), {"a": 1})


def test_none_before_the_final_token_is_ignored():
    # ...while assigning the final token into None is just skipped
    assert get_redacted_args(entrypoint("nested", "foo.a.b"), {"a": None})["foo"] == {"a": None}


def test_star_args_and_kwargs_appear_under_their_names():
    result = get_redacted_args(entrypoint("varargs"), 1, 2, 3, x=4)
    assert result == {"a": 1, "args": (2, 3), "kwargs": {"x": 4}}


def test_kwargs_member_redacted():
    result = get_redacted_args(entrypoint("varargs", "kwargs.secret"), 1, secret="s", other="o")
    assert result["kwargs"] == {"secret": REDACTED, "other": "o"}


def test_numeric_word_token_is_a_string_key():
    assert get_redacted_args(entrypoint("nested", "foo.1"), {"1": "x", 1: "y"})["foo"] == {
        "1": REDACTED,
        1: "y",
    }


def test_bad_signature_propagates():
    with pytest.raises(TypeError):
        get_redacted_args(entrypoint("login"), "too", "many", "args")


def test_result_is_json_friendly_for_logging():
    result = get_redacted_args(entrypoint("login", "password"), "bob", "pw")
    assert json.loads(json.dumps(result)) == result


class TestImportFromPath:
    def test_none(self):
        assert import_from_path(None) is None

    def test_object(self):
        assert import_from_path("json.dumps") is json.dumps
        assert import_from_path("nameko.utils.get_redacted_args") is get_redacted_args

    def test_module(self):
        assert import_from_path("json") is json

    def test_missing(self):
        with pytest.raises(ImportError) as info:
            import_from_path("no.such.thing")
        assert str(info.value) == "`no.such.thing` could not be imported"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("pyamqp://user:secret@host:5672/vh", "pyamqp://user:********@host:5672/vh"),
        ("pyamqp://guest:guest@localhost", "pyamqp://guest:********@localhost"),
        ("pyamqp://host:5672/vh", "pyamqp://host:5672/vh"),
        ("memory://", "memory://"),
    ],
)
def test_sanitize_url(url, expected):
    assert sanitize_url(url) == expected


def test_public_names():
    assert sorted(utils.__all__) == [
        "REDACTED",
        "get_redacted_args",
        "import_from_path",
        "sanitize_url",
    ]
