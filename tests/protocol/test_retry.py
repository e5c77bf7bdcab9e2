"""nameko.utils.retry (SPEC 1.16) and nameko.log_helpers.make_timing_logger.

Sleeping is replaced by a recorder: nothing here waits.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from nameko import log_helpers
from nameko.utils import retry as retry_module
from nameko.utils.retry import RetryDelay, retry


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """What the retry slept, recorded by patching ``nameko.utils.retry.sleep``
    (the name nameko's module has, and extensions patch)."""
    calls: list[float] = []
    monkeypatch.setattr(retry_module, "sleep", calls.append)
    return calls


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``"ok"``."""

    def __init__(self, failures: int, exc: type[BaseException] = ValueError):
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(self.calls)
        return ("ok", args, kwargs)


class TestRetryDelay:
    def test_constant(self):
        delays = RetryDelay(1, 1, None)
        assert [delays.next() for _ in range(3)] == [1, 1, 1]

    def test_backoff(self):
        delays = RetryDelay(1, 2, None)
        assert [delays.next() for _ in range(4)] == [1, 2, 4, 8]

    def test_capped(self):
        delays = RetryDelay(1, 3, 5)
        assert [delays.next() for _ in range(4)] == [1, 3, 5, 5]

    def test_cap_below_first_delay(self):
        assert RetryDelay(10, 2, 1).next() == 1


class TestRetry:
    def test_bare_decorator_defaults(self, sleeps):
        flaky = Flaky(3)
        wrapped = retry(flaky)
        assert wrapped(1, a=2) == ("ok", (1,), {"a": 2})
        assert flaky.calls == 4
        assert sleeps == [1, 1, 1]

    def test_gives_up_after_max_attempts_plus_one_calls(self, sleeps):
        flaky = Flaky(10)
        with pytest.raises(ValueError) as info:
            retry(max_attempts=2)(flaky)()
        assert flaky.calls == 3
        assert info.value.args == (3,)  # the last failure propagates
        assert len(sleeps) == 2

    def test_zero_attempts_means_one_call(self, sleeps):
        flaky = Flaky(1)
        with pytest.raises(ValueError):
            retry(max_attempts=0)(flaky)()
        assert flaky.calls == 1
        assert sleeps == []

    def test_unlimited(self, sleeps):
        flaky = Flaky(50)
        assert retry(max_attempts=None, delay=0)(flaky)()[0] == "ok"
        assert flaky.calls == 51

    def test_other_exceptions_propagate_at_once(self, sleeps):
        flaky = Flaky(1, exc=KeyError)
        with pytest.raises(KeyError):
            retry(for_exceptions=ValueError)(flaky)()
        assert flaky.calls == 1
        assert sleeps == []

    def test_tuple_of_exceptions(self, sleeps):
        flaky = Flaky(1, exc=KeyError)
        assert retry(for_exceptions=(ValueError, KeyError))(flaky)()[0] == "ok"

    def test_backoff_and_cap(self, sleeps):
        retry(max_attempts=5, delay=1, backoff=2, max_delay=5)(Flaky(5))()
        assert sleeps == [1, 2, 4, 5, 5]

    def test_delay_state_is_shared_between_calls(self, sleeps):
        flaky = Flaky(0)
        wrapped = retry(delay=1, backoff=2)(flaky)

        flaky.failures, flaky.calls = 2, 0
        wrapped()
        flaky.failures, flaky.calls = 2, 0
        wrapped()
        # the second call continues the sequence instead of restarting at 1
        assert sleeps == [1, 2, 4, 8]

    def test_attempt_count_is_per_call(self, sleeps):
        flaky = Flaky(0)
        wrapped = retry(max_attempts=2, delay=0)(flaky)
        for _ in range(3):
            flaky.failures, flaky.calls = 2, 0
            assert wrapped()[0] == "ok"

    def test_wraps_metadata(self):
        @retry
        def documented():
            """Doc."""

        assert documented.__name__ == "documented"
        assert documented.__doc__ == "Doc."

    def test_success_never_sleeps(self, sleeps):
        assert retry(lambda: 3)() == 3
        assert sleeps == []


class TestTimingLogger:
    def test_logs_message_with_elapsed_time(self, caplog, monkeypatch):
        ticks = iter([10.0, 10.25])
        monkeypatch.setattr(log_helpers, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
        logger = logging.getLogger("test.timing")
        log_time = log_helpers.make_timing_logger(logger)
        with caplog.at_level(logging.DEBUG, logger="test.timing"):
            with log_time("did %s", "stuff"):
                pass
        assert [r.getMessage() for r in caplog.records] == ["did stuff in 0.250s"]
        assert caplog.records[0].levelno == logging.DEBUG

    def test_precision_and_level(self, caplog, monkeypatch):
        ticks = iter([0.0, 1.23456])
        monkeypatch.setattr(log_helpers, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
        logger = logging.getLogger("test.timing2")
        log_time = log_helpers.make_timing_logger(logger, precision=1, level=logging.INFO)
        with caplog.at_level(logging.INFO, logger="test.timing2"):
            with log_time("step"):
                pass
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.INFO, "step in 1.2s")
        ]

    def test_logs_even_when_the_block_raises(self, caplog):
        logger = logging.getLogger("test.timing3")
        log_time = log_helpers.make_timing_logger(logger)
        with caplog.at_level(logging.DEBUG, logger="test.timing3"):
            with pytest.raises(RuntimeError):
                with log_time("failing"):
                    raise RuntimeError("x")
        assert caplog.records[0].getMessage().startswith("failing in ")
