"""Cluster-singleton schedules (D28) with real `nameko run`
processes on RabbitMQ: two and three instances of a service with a
``@timer(0.5, singleton=True)`` and a ``@cron("* * * * * *")`` (seconds
field: the same code path as a 5-field expression, a tick a second).

Every firing is appended to a file of the process that fired it, with the
tick's identity (its due time). The test SIGKILLs the instance that leads
the timer and checks, from the files: every tick fired at most once across
the cluster, before and after; another instance took over within about one
interval; it fired no tick due before the kill (no catch-up burst)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import NamekoProcess, start_nameko
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

INTERVAL = 0.5
TIMEOUT = 30
SERVICE = """\
import os
import time

from nameko.extensions import DependencyProvider
from nameko.timer import cron, timer

RECORDS = {records!r}


class TickDue(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.entrypoint.due


def record(kind, due):
    with open(os.path.join(RECORDS, str(os.getpid())), "a") as out:
        out.write(f"{{kind}} {{due!r}} {{time.time()!r}}\\n")


class Ticker:
    name = "ticker"
    due = TickDue()

    @timer({interval}, singleton=True)
    def half_second(self):
        record("timer", self.due)

    @cron("* * * * * *")
    def every_second(self):
        record("cron", self.due)

    @timer(0.2)  # per instance: tells the test this instance runs
    def alive(self):
        open(os.path.join(RECORDS, f"alive-{{os.getpid()}}"), "w").close()
"""


def firings(records: Path) -> list[tuple[str, float, float, int]]:
    """(kind, due, fired at, pid) of every firing so far."""
    found = []
    for path in records.iterdir():
        if path.name.startswith("alive-"):
            continue
        for line in path.read_text().splitlines():
            kind, due, at = line.split()
            found.append((kind, float(due), float(at), int(path.name)))
    return sorted(found, key=lambda f: f[1])


def of(kind: str, found):
    return [f for f in found if f[0] == kind]


@pytest.mark.parametrize("instances", [2, 3])
def test_each_tick_fires_once_across_the_cluster_and_survives_a_sigkill(
    instances, tmp_path, rabbit_uri
):
    records = tmp_path / "records"
    records.mkdir()
    source = SERVICE.format(records=str(records), interval=INTERVAL)
    procs: list[NamekoProcess] = []

    def start() -> None:
        folder = tmp_path / f"instance{len(procs)}"
        folder.mkdir()
        (folder / "ticker.py").write_text(source)
        procs.append(start_nameko(folder, ["ticker"], config={"AMQP_URI": rabbit_uri}))

    try:
        start()  # the first instance leads both schedules ...
        wait_until(lambda: {f[0] for f in firings(records)} == {"timer", "cron"}, timeout=TIMEOUT)
        for _ in range(instances - 1):  # ... the others queue up behind it
            start()
        wait_until(
            lambda: len(list(records.glob("alive-*"))) == instances,
            timeout=TIMEOUT,
            what="every instance running",
        )
        wait_until(lambda: len(of("timer", firings(records))) >= 6, timeout=TIMEOUT)

        leader = procs[0].proc.pid
        killed_at = time.time()
        procs[0].signal(signal.SIGKILL)
        procs[0].wait(10)
        for kind, count in (("timer", 4), ("cron", 2)):
            wait_until(
                lambda kind=kind, count=count: (
                    len([f for f in of(kind, firings(records)) if f[1] > killed_at]) >= count
                ),
                timeout=TIMEOUT,
                what=f"{count} {kind} ticks after the kill",
            )
        found = firings(records)
    finally:
        for proc in procs:
            proc.close()

    report = []
    for kind, interval in (("timer", INTERVAL), ("cron", 1.0)):
        ticks = of(kind, found)
        twice = [due for due, n in Counter(f[1] for f in ticks).items() if n > 1]
        assert twice == [], f"{kind} ticks fired twice: {twice}"
        assert {f[3] for f in ticks if f[2] < killed_at} == {leader}  # one leader before
        after = [f for f in ticks if f[3] != leader]
        assert len({f[3] for f in after}) == 1  # and one after
        # no catch-up burst: the new leader fires only ticks due after the kill
        assert min(f[1] for f in after) > killed_at
        last_old = max(f[1] for f in ticks if f[3] == leader)
        first_new = min(f[1] for f in after)
        lost = round((first_new - last_old) / interval) - 1
        report.append(f"{kind}: first tick due {first_new - killed_at:.3f}s after, {lost} lost")
        assert first_new - killed_at < interval + 5.0  # about one interval; slack for load
    print(f"\n{instances} instances, leader SIGKILLed: " + "; ".join(report))
