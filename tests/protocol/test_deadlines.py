"""Call deadlines as pure functions: header values, nesting, expiration."""

from __future__ import annotations

import pytest

from nameko._protocol.deadlines import (
    call_deadline,
    decode_deadline,
    encode_deadline,
    expiration_for,
)

NOW = 1_800_000_000.0


def test_header_round_trip_in_milliseconds():
    assert encode_deadline(NOW + 1.2345) == 1_800_000_001_234
    assert decode_deadline(1_800_000_001_234) == pytest.approx(NOW + 1.234)


@pytest.mark.parametrize("garbage", [None, "soon", True, -5, 0, float("nan"), float("inf"), [1]])
def test_a_malformed_header_means_no_deadline(garbage):
    assert decode_deadline(garbage) is None


def test_no_timeout_and_nothing_inherited_means_no_deadline():
    assert call_deadline(None, None, NOW) is None


def test_own_timeout():
    assert call_deadline(None, 5, NOW) == NOW + 5


def test_inherited_deadline_applies_without_own_timeout():
    inherited = encode_deadline(NOW + 3)
    assert call_deadline(inherited, None, NOW) == pytest.approx(NOW + 3)


def test_the_earlier_of_own_and_inherited_wins():
    inherited = encode_deadline(NOW + 3)
    assert call_deadline(inherited, 1, NOW) == NOW + 1
    assert call_deadline(inherited, 10, NOW) == pytest.approx(NOW + 3)


def test_expiration_is_the_time_left_in_whole_milliseconds():
    assert expiration_for(NOW + 1.5, NOW) == "1500"
    assert expiration_for(NOW + 0.0001, NOW) == "1"
    assert expiration_for(NOW - 1, NOW) == "1"  # never 0: "now or never" drops it


def test_expiration_never_longer_than_the_callers_own():
    assert expiration_for(NOW + 10, NOW, "2000") == "2000"
    assert expiration_for(NOW + 1, NOW, "2000") == "1000"
