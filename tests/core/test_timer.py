"""``@timer`` through real containers.

Timing assertions are lower bounds only (a tick can't fire before it is due,
a run can't start before the previous one ended): those hold however loaded
the machine is. Waits are on events with timeouts.
"""

from __future__ import annotations

import itertools
import time

import pytest

from nameko._concurrency import Event, start_thread
from nameko.timer import Timer, timer
from tests.core.helpers import Recorder

TIMEOUT = 10
INTERVAL = 0.05


@pytest.fixture
def start(empty_config, container_factory):
    def start(service_cls):
        container = container_factory(service_cls, dict(empty_config))
        container.start()
        return container

    return start


def finishes(fn, timeout=TIMEOUT) -> bool:
    """Run ``fn`` in a thread; True if it returned within ``timeout``."""
    thread = start_thread(fn, "test-helper")
    thread.join(timeout)
    return not thread.is_alive()


def test_ticks_follow_the_schedule_without_overlap(start):
    runs, calls = Recorder(), []

    class Ticker:
        name = "ticker"

        @timer(INTERVAL)
        def tick(self):
            began = time.monotonic()
            calls.append(began)
            if len(calls) == 2:
                raise ValueError("the timer carries on")
            runs.add((began, time.monotonic()))

    before = time.monotonic()
    container = start(Ticker)
    runs.wait_for(4)
    container.stop()

    starts = [began for began, _ in runs.items]
    # tick n is due n intervals after the loop started (which was after `before`);
    # one run raised, so recorded run k is at least tick k + 1 (k > 0)
    assert starts[0] >= before + INTERVAL
    for k, began in enumerate(starts[1:], start=1):
        assert began >= before + (k + 1) * INTERVAL
    for (_, ended), (began, _) in itertools.pairwise(runs.items):
        assert began >= ended  # never overlapping


def test_eager_timer_fires_at_once_and_stop_interrupts_the_wait(start):
    fired = Event()

    class Eager:
        name = "eager"

        @timer(interval=3600, eager=True)
        def tick(self):
            fired.set()

    container = start(Eager)
    assert fired.wait(TIMEOUT)
    assert finishes(container.stop)  # not an hour


def test_stop_waits_for_a_running_tick_and_then_no_more_ticks(start):
    started, release = Event(), Event()
    runs = Recorder()

    class Slow:
        name = "slow"

        @timer(INTERVAL, True)
        def tick(self):
            started.set()
            release.wait(TIMEOUT)
            runs.add("done")

    container = start(Slow)
    (entrypoint,) = container.entrypoints  # the timer's own stop, not the container's
    assert started.wait(TIMEOUT)
    stopper = start_thread(entrypoint.stop, "stopper")
    stopper.join(0.2)
    assert stopper.is_alive(), "stop returned while the tick was still running"
    release.set()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    assert not entrypoint.gt.is_alive()
    assert runs.items == ["done"]
    container.stop()


def test_kill_does_not_wait_for_a_running_tick(start):
    started, release = Event(), Event()

    class Stuck:
        name = "stuck"

        @timer(INTERVAL, eager=True)
        def tick(self):
            started.set()
            release.wait(TIMEOUT)

    container = start(Stuck)
    assert started.wait(TIMEOUT)
    try:
        assert finishes(container.kill)
    finally:
        release.set()


def test_missed_ticks_are_skipped_not_fired_in_a_burst():
    # interval 0.2, tick due at 0.2 ran until 1.2: one late tick, then back on the grid
    schedule = Timer(0.2)
    late = schedule._next_due(0.2, now=1.2005)
    assert late == pytest.approx(1.2)  # due already: fires at once
    assert schedule._next_due(late, now=1.21) == pytest.approx(1.4)
    # on time: simply the next grid point
    assert schedule._next_due(0.4, now=0.41) == pytest.approx(0.6)
    # overran by less than an interval: the next one fires at once
    assert schedule._next_due(0.4, now=0.65) == pytest.approx(0.6)
    assert Timer(0)._next_due(1.0, now=2.0) == 2.0


def test_timer_attributes():
    entrypoint = Timer(5, eager=True, expected_exceptions=ValueError)
    assert (entrypoint.interval, entrypoint.eager) == (5, True)
    assert entrypoint.expected_exceptions is ValueError
    assert not entrypoint.should_stop.is_set()
    assert entrypoint.gt is None
