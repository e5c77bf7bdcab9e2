"""Cluster-singleton schedules (issue 14, D28) with real `nameko run`
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
"""


def firings(records: Path) -> list[tuple[str, float, float, int]]:
    """(kind, due, fired at, pid) of every firing so far."""
    found = []
    for path in records.iterdir():
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
    try:
        for n in range(instances):
            folder = tmp_path / f"instance{n}"
            folder.mkdir()
            (folder / "ticker.py").write_text(source)
            procs.append(start_nameko(folder, ["ticker"], config={"AMQP_URI": rabbit_uri}))
        wait_until(lambda: len(of("timer", firings(records))) >= 4, timeout=TIMEOUT)
        wait_until(lambda: len(of("cron", firings(records))) >= 2, timeout=TIMEOUT)

        leader = of("timer", firings(records))[-1][3]
        killed = next(p for p in procs if p.proc.pid == leader)
        killed_at = time.time()
        killed.signal(signal.SIGKILL)
        killed.wait(10)
        wait_until(
            lambda: len([f for f in of("timer", firings(records)) if f[1] > killed_at]) >= 4,
            timeout=TIMEOUT,
            what="four timer ticks after the kill",
        )
        wait_until(
            lambda: len([f for f in of("cron", firings(records)) if f[1] > killed_at]) >= 2,
            timeout=TIMEOUT,
            what="two cron ticks after the kill",
        )
        found = firings(records)
    finally:
        for proc in procs:
            proc.close()

    for kind in ("timer", "cron"):
        ticks = of(kind, found)
        twice = [due for due, n in Counter(f[1] for f in ticks).items() if n > 1]
        assert twice == [], f"{kind} ticks fired twice: {twice}"
        before = {f[3] for f in ticks if f[2] < killed_at}
        assert len(before) == 1, f"{kind}: one leader at a time, saw {before}"
        after = [f for f in ticks if f[2] > killed_at]
        assert leader not in {f[3] for f in after}
        # no catch-up burst: a new leader fires only ticks due after it took over
        assert all(f[1] > killed_at for f in after if f[3] not in before)
    timer_ticks = of("timer", found)
    last_old = max(f[1] for f in timer_ticks if f[3] == leader)
    first_new = min(f[1] for f in timer_ticks if f[3] != leader)
    lost = round((first_new - last_old) / INTERVAL) - 1
    print(
        f"\n{instances} instances: the new leader's first tick was due "
        f"{first_new - killed_at:.3f}s after the kill; ticks lost: {lost}"
    )
    assert first_new - killed_at < INTERVAL + 5.0  # about one interval; slack for load
