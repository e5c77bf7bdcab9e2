"""The per-request argument check agrees with Python's own binding rules."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko._runtime._arguments import check_arguments
from nameko.exceptions import IncorrectSignature


class Methods:
    def none(self):
        pass

    def two(self, a, b):
        pass

    def defaults(self, a, b=1, c=2):
        pass

    def star(self, a, *args, **kwargs):
        pass

    def kw_only(self, a, *, key):
        pass

    def pos_only(self, a, /, b=1):
        pass


METHODS = [
    Methods.none,
    Methods.two,
    Methods.defaults,
    Methods.star,
    Methods.kw_only,
    Methods.pos_only,
]
NAMES = st.sampled_from(["a", "b", "c", "key", "other"])


def binds(method, args, kwargs) -> bool:
    try:
        inspect.signature(method).bind(None, *args, **kwargs)
    except TypeError:
        return False
    return True


@given(
    method=st.sampled_from(METHODS),
    args=st.lists(st.integers(), max_size=4).map(tuple),
    kwargs=st.dictionaries(NAMES, st.integers(), max_size=3),
)
def test_same_verdict_as_signature_bind(method, args, kwargs):
    if binds(method, args, kwargs):
        check_arguments(method, args, kwargs)
    else:
        with pytest.raises(IncorrectSignature):
            check_arguments(method, args, kwargs)


def test_errors_are_worded_as_nameko_users_know_them():
    with pytest.raises(IncorrectSignature, match=r"takes 3 positional arguments but 4 were given"):
        check_arguments(Methods.two, (1, 2, 3), {})
    with pytest.raises(IncorrectSignature, match=r"got multiple values for argument 'a'"):
        check_arguments(Methods.two, (1,), {"a": 2})
    with pytest.raises(IncorrectSignature, match=r"missing 1 required positional argument: 'b'"):
        check_arguments(Methods.two, (1,), {})
