"""Context-data headers (SPEC 1.7, 3.4) and call ids (SPEC 2.5, 3.4)."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko._protocol.calls import extend_call_id_stack, make_call_id
from nameko._protocol.headers import decode_context_headers, encode_context_headers
from nameko._protocol.retries import is_control_header

header_values = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.lists(st.text(max_size=10), max_size=5),
)
# keys named like shimeji's own bookkeeping (``x-nameko-*``) are reserved: never context data
context_keys = st.text(min_size=1, max_size=20).filter(lambda key: not is_control_header(key))
context_dicts = st.dictionaries(context_keys, header_values, max_size=8)


class TestEncode:
    def test_captured_request_headers(self):
        context = {
            "language": "en",
            "user_id": 7,
            "call_id_stack": ["standalone_rpc_proxy.call.1a54e048"],
        }
        assert encode_context_headers(context) == {
            "nameko.language": "en",
            "nameko.user_id": 7,
            "nameko.call_id_stack": ["standalone_rpc_proxy.call.1a54e048"],
        }

    def test_custom_prefix(self):
        assert encode_context_headers({"a": 1}, prefix="other") == {"other.a": 1}

    def test_none_values_dropped_with_warning(self):
        with pytest.warns(UserWarning, match="Attempted to publish unserialisable header value"):
            headers = encode_context_headers({"a": None, "b": 1})
        assert headers == {"nameko.b": 1}

    def test_no_warning_without_none(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert encode_context_headers({"a": 0, "b": "", "c": False}) == {
                "nameko.a": 0,
                "nameko.b": "",
                "nameko.c": False,
            }

    def test_empty(self):
        assert encode_context_headers({}) == {}


class TestDecode:
    def test_prefix_stripped_others_kept(self):
        headers = {"nameko.language": "en", "x-foreign": "1", "nameko.call_id_stack": ["a"]}
        assert decode_context_headers(headers) == {
            "language": "en",
            "x-foreign": "1",
            "call_id_stack": ["a"],
        }

    def test_only_a_leading_prefix_is_stripped(self):
        assert decode_context_headers({"x.nameko.a": 1, "nameko.nameko.b": 2}) == {
            "x.nameko.a": 1,
            "nameko.b": 2,
        }

    def test_prefix_needs_its_dot(self):
        assert decode_context_headers({"namekoX": 1, "nameko": 2}) == {"namekoX": 1, "nameko": 2}

    def test_custom_prefix(self):
        assert decode_context_headers({"o.a": 1, "nameko.b": 2}, prefix="o") == {
            "a": 1,
            "nameko.b": 2,
        }

    @pytest.mark.parametrize("headers", [None, {}])
    def test_no_headers(self, headers):
        assert decode_context_headers(headers) == {}

    def test_foreign_header_is_forwarded_prefixed(self):
        # SPEC 13.15: non-prefixed incoming headers leak into onward calls.
        onward = encode_context_headers(decode_context_headers({"x-trace": "t"}))
        assert onward == {"nameko.x-trace": "t"}


def test_reserved_keys_are_not_context_data():
    headers = encode_context_headers({"x-nameko-": "", "x-nameko-attempt": 2, "lang": "en"})
    assert decode_context_headers(headers) == {"lang": "en"}


@given(context=context_dicts)
def test_round_trip(context):
    assert decode_context_headers(encode_context_headers(context)) == context


@given(context=context_dicts, prefix=st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_round_trip_any_prefix(context, prefix):
    headers = encode_context_headers(context, prefix=prefix)
    assert all(key.startswith(prefix + ".") for key in headers)
    assert decode_context_headers(headers, prefix=prefix) == context


class TestCallIds:
    def test_call_id_format(self):
        assert make_call_id("svc_a", "call_b", "Y") == "svc_a.call_b.Y"

    def test_stack_appends_own_id(self):
        parent = ["standalone_rpc_proxy.call.X"]
        assert extend_call_id_stack(parent, "svc_a.call_b.Y", 10) == [
            "standalone_rpc_proxy.call.X",
            "svc_a.call_b.Y",
        ]

    def test_truncation_spec_example(self):
        parents = [str(i) for i in range(100)]
        assert extend_call_id_stack(parents, "baz.long.0", 1) == ["99", "baz.long.0"]

    def test_default_keeps_eleven(self):
        stack = extend_call_id_stack([str(i) for i in range(100)], "own", 10)
        assert stack == [str(i) for i in range(90, 100)] + ["own"]

    @pytest.mark.parametrize("tracked", [0, -1, -5])
    def test_zero_or_negative_keeps_only_own(self, tracked):
        assert extend_call_id_stack(["a", "b"], "own", tracked) == ["own"]

    @pytest.mark.parametrize("parent", [None, [], ()])
    def test_no_parent(self, parent):
        assert extend_call_id_stack(parent, "own", 10) == ["own"]

    def test_parent_not_mutated(self):
        parent = ["a"]
        extend_call_id_stack(parent, "own", 10)
        assert parent == ["a"]

    @given(
        parent=st.lists(st.text(max_size=5), max_size=30),
        tracked=st.integers(min_value=0, max_value=40),
    )
    def test_stack_property(self, parent, tracked):
        stack = extend_call_id_stack(parent, "own", tracked)
        assert stack[-1] == "own"
        assert len(stack) == min(len(parent), tracked) + 1
        assert stack[:-1] == parent[len(parent) - (len(stack) - 1) :]
