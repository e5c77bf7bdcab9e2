"""`RateLimitedLog`: one line per kind per period, and the count of what it held back."""

from __future__ import annotations

import logging

import pytest

from nameko import _log_limits
from nameko._log_limits import RateLimitedLog

LOGGER = "tests.log_limits"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(_log_limits.time, "monotonic", clock)
    return clock


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    return lambda: [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_one_line_per_kind_per_period_then_the_suppressed_count(clock, lines):
    log = RateLimitedLog(logging.getLogger(LOGGER), period=10)
    for n in range(100):
        log.log(logging.INFO, "bad request", "bad request %d", n)
    log.log(logging.INFO, "timed out", "timed out")  # another kind has its own budget
    assert lines() == ["bad request 0", "timed out"]
    clock.now += 10
    assert log.log(logging.INFO, "bad request", "bad request %d", 100)
    assert lines()[-1] == "bad request 100 (99 similar suppressed in the last 10s)"


def test_flush_reports_a_burst_that_ended(clock, lines):
    log = RateLimitedLog(logging.getLogger(LOGGER), period=5)
    for _ in range(3):
        log.log(logging.INFO, "bad request", "bad")
    log.flush()  # the period is not over: nothing yet
    assert lines() == ["bad"]
    clock.now += 5
    log.flush()
    log.flush()  # said once
    assert lines() == ["bad", "2 similar bad request lines suppressed in the last 5s"]


def test_a_disabled_level_costs_no_state(clock, lines):
    log = RateLimitedLog(logging.getLogger(LOGGER), period=5)
    assert not log.log(logging.DEBUG, "chatty", "never shown")
    assert lines() == []
