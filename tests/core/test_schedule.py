"""Cluster-singleton schedules (D28) through real containers on the memory
broker: several containers of one service stand for several instances.

Each firing records the tick's identity (`Timer.due`, its wall-clock due
time) and which instance fired it; the assertions are about identities
(each tick once, at most one instance firing at a time), never about how
late a tick fired, so they hold on a loaded machine."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from nameko.exceptions import ConfigurationError
from nameko.extensions import DependencyProvider
from nameko.timer import cron, timer
from tests.core.helpers import TIMEOUT, Recorder
from tests.waiting import wait_until

INTERVAL = 0.2


class TickDue(DependencyProvider):
    """Injects the due time of the tick being fired (its identity)."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.entrypoint.due


def singleton_service(recorder: Recorder, decorator):
    class Ticker:
        name = "ticker"
        due = TickDue()

        @decorator
        def tick(self):
            recorder.add((self.due, self.instance))

    return Ticker


def start_instances(start, service_cls, count: int):
    containers = []
    for index in range(count):
        service = type(service_cls.__name__, (service_cls,), {"instance": index})
        containers.append(start(service))
    return containers


def assert_each_tick_once(items) -> None:
    dues = Counter(due for due, _ in items)
    assert [due for due, seen in dues.items() if seen > 1] == [], "a tick fired twice"


def test_a_singleton_timer_fires_each_tick_on_one_instance(start):
    recorder = Recorder()
    service = singleton_service(recorder, timer(INTERVAL, singleton=True))
    start_instances(start, service, 3)
    items = recorder.wait_for(8)
    assert_each_tick_once(items)
    assert len({instance for _, instance in items}) == 1  # the leader, throughout
    dues = sorted(due for due, _ in items)
    assert all(round(due / INTERVAL, 6).is_integer() for due in dues)  # on the epoch grid


def test_the_next_instance_takes_over_when_the_leaders_connection_goes(start):
    recorder = Recorder()
    service = singleton_service(recorder, timer(INTERVAL, singleton=True))
    containers = start_instances(start, service, 2)
    [(_, leader)] = recorder.wait_for(1)[:1]
    lease = next(
        ext for ext in containers[leader].subextensions if type(ext).__name__ == "Leadership"
    )
    closed_at = time.time()
    lease.connection.broker.close()  # what the broker sees when a process is SIGKILLed
    count = len(recorder.items)
    wait_until(lambda: any(i != leader for _, i in recorder.items[count:]), timeout=TIMEOUT)
    taken_over = len(recorder.items)
    wait_until(lambda: len(recorder.items) >= taken_over + 3, timeout=TIMEOUT)
    items = recorder.items
    assert_each_tick_once(items)
    assert {i for _, i in items[taken_over:]} == {1 - leader}  # the old leader stopped
    # no catch-up: the new leader fires only ticks due after it got the lease
    assert min(due for due, i in items if i != leader) > closed_at
    dues = sorted(due for due, _ in items)
    assert max(b - a for a, b in zip(dues, dues[1:], strict=False)) < 10 * INTERVAL


def test_a_graceful_stop_hands_the_lease_over(start):
    recorder = Recorder()
    service = singleton_service(recorder, timer(INTERVAL, singleton=True))
    containers = start_instances(start, service, 2)
    [(_, leader)] = recorder.wait_for(1)[:1]
    containers[leader].stop()
    count = len(recorder.items)
    wait_until(lambda: len(recorder.items) >= count + 2, timeout=TIMEOUT)
    assert {i for _, i in recorder.items[count:]} == {1 - leader}
    assert_each_tick_once(recorder.items)


def test_cron_with_seconds_fires_once_per_cluster_by_default(start):
    recorder = Recorder()
    service = singleton_service(recorder, cron("* * * * * *"))
    start_instances(start, service, 2)
    items = recorder.wait_for(3)
    assert_each_tick_once(items)
    assert all(float(due).is_integer() for due, _ in items)  # whole seconds


def test_cron_per_instance_fires_everywhere(start):
    recorder = Recorder()
    service = singleton_service(recorder, cron("* * * * * *", singleton=False))
    start_instances(start, service, 2)
    wait_until(  # some tick fired on both instances
        lambda: 2 in Counter(due for due, _ in recorder.items).values(), timeout=TIMEOUT
    )


def test_a_plain_timer_has_no_lease_and_no_broker_connection(start):
    recorder = Recorder()

    class Plain:
        name = "plain"

        @timer(INTERVAL)
        def tick(self):
            recorder.add(1)

    container = start(Plain)
    recorder.wait_for(1)
    assert [type(e).__name__ for e in container.subextensions] == []


def test_two_singleton_schedules_of_one_method_need_a_key(container_factory, config):
    class Twice:
        name = "twice"

        @timer(1, singleton=True)
        @cron("* * * * *")
        def tick(self):
            pass

    with pytest.raises(ConfigurationError, match="key="):
        container_factory(Twice, config).start()

    class Keyed:
        name = "keyed"

        @timer(1, singleton=True)
        @cron("* * * * *", key="tick-cron")
        def tick(self):
            pass

    container = container_factory(Keyed, config)
    container.start()
    names = sorted(e.queue for e in container.subextensions if type(e).__name__ == "Leadership")
    assert names == ["schedule-keyed.tick", "schedule-keyed.tick-cron"]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: timer(1, True, singleton=True), "cannot be eager"),
        (lambda: timer(0, singleton=True), "interval > 0"),
        (lambda: cron("61 * * * *"), "outside 0-59"),
        (lambda: cron("* * * * *", tz="Mars/Olympus"), "unknown time zone"),
    ],
)
def test_bad_declarations_fail_at_import(make, message):
    def method(self):
        pass

    with pytest.raises(ValueError, match=message):
        make()(method)


def test_a_restricted_away_schedule_takes_no_lease(container_factory, config):
    from nameko.rpc import rpc
    from nameko.testing.services import restrict_entrypoints

    class Both:
        name = "both"

        @cron("* * * * * *")
        def tick(self):
            pass

        @rpc
        def ping(self):
            return "pong"

    container = container_factory(Both, config)
    restrict_entrypoints(container, "ping")
    container.start()
    [lease] = [e for e in container.subextensions if type(e).__name__ == "Leadership"]
    assert lease._consumer is None
    container.stop()


def test_an_async_method_on_a_singleton_timer(start):
    recorder = Recorder()

    class Async:
        name = "async_timer"
        due = TickDue()

        @timer(INTERVAL, singleton=True)
        async def tick(self):
            recorder.add(self.due)

    start(Async)
    assert len(set(recorder.wait_for(2))) == len(recorder.items)
