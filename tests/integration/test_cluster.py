"""A three-node RabbitMQ cluster losing one node at a time.

Two `nameko run` instances of a service with ``QUEUE_TYPE: quorum`` and all
three nodes in ``AMQP_URI`` (each instance lists them from another node
on, so they are connected to different nodes); two clients make RPC calls
at a steady pace (with a timeout) and a third thread dispatches events, while
the test stops each node in turn, waits for traffic to flow without it,
and starts it again.

Then it counts. Every call has exactly one outcome (its result, or a typed
error); every result returned was computed by the service for that call;
every event whose dispatch was confirmed was handled. Duplicates (a
request executed twice, an event handled twice) are allowed and counted:
delivery is at-least-once across a node failure (docs/architecture.md D25).

A client's reply queue is a classic queue: it lives on the node the client
was connected to when it declared it, and is unavailable while that node
is down (that client's calls then time out, or end with
ReplyQueueExpiredWithPendingReplies once it is back). The two clients'
reply queues live on different nodes, so some client always gets replies.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nameko._messaging.pool import close_idle
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import NamekoProcess, start_nameko, wait_until_serving
from tests.integration.throwaway_cluster import ThrowawayCluster
from tests.waiting import wait_until

CALL_TIMEOUT = 5
CALL_PACE = 0.02  # seconds between a client's calls
PROGRESS = 10  # calls answered, events handled: "traffic flows"
PROGRESS_TIMEOUT = 45
# a client back from a node whose loss took its reply queue with it: its
# waiting call ends with ReplyQueueExpiredWithPendingReplies
CALL_ERRORS = {
    "RpcTimeout",
    "ConnectionLost",
    "ConfirmLost",
    "UnknownService",
    "ReplyQueueExpiredWithPendingReplies",
}
CLIENT_ON = {0: "c0", 2: "c1"}  # node -> the client that connects to it first
SERVICE_ON = {0: 0, 1: 1}  # node -> the service instance that connects to it first
DISPATCH_ERRORS = {"ConnectionLost", "ConfirmLost", "PublishNacked", "BrokerUnreachable"}


def rotated(items: list[str], first: int) -> list[str]:
    return items[first:] + items[:first]


@dataclass
class Attempt:
    outcome: str  # "ok" / "confirmed", or the error's type name
    started: float  # wall clock, as the service instances' records
    ended: float


@dataclass
class Traffic:
    """Calls and dispatches from threads, one `Attempt` per id, until `stop`."""

    calls: dict[str, Attempt] = field(default_factory=dict)
    events: dict[str, Attempt] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # ids with a second outcome
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, client_configs: list[dict], event_config: dict) -> None:
        for number, config in enumerate(client_configs):
            self._spawn(self._call_loop, f"c{number}", config)
        self._spawn(self._event_loop, event_config)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _note(self, book: dict[str, Attempt], key: str, outcome: str, started: float) -> None:
        with self.lock:
            if key in book:  # (a thread can't fail a test: the test checks this list)
                self.repeated.append(key)
            book[key] = Attempt(outcome, started, time.time())

    def _call_loop(self, name: str, config: dict) -> None:
        with ClusterRpcProxy(config, timeout=CALL_TIMEOUT) as proxy:
            number = 0
            while not self.stopping.is_set():
                call_id, started = f"{name}-{number}", time.time()
                try:
                    result = proxy.cluster_service.echo(call_id)
                    outcome = "ok" if result == call_id else f"wrong result {result!r}"
                except Exception as exc:
                    outcome = type(exc).__name__
                self._note(self.calls, call_id, outcome, started)
                number += 1
                # a steady pace, not the machine's limit: on two shared cores
                # calls flat out slow the nodes' restarts down by seconds
                self.stopping.wait(CALL_PACE if outcome == "ok" else 0.2)

    def _event_loop(self, config: dict) -> None:
        dispatch = event_dispatcher(config)
        number = 0
        while not self.stopping.is_set():
            event_id, started = f"e-{number}", time.time()
            try:
                dispatch("cluster_client", "tick", event_id)
                outcome = "confirmed"
            except Exception as exc:
                outcome = type(exc).__name__
            self._note(self.events, event_id, outcome, started)
            number += 1
            self.stopping.wait(0.05)

    def answered_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for a in self.calls.values() if a.outcome == "ok" and a.started > moment)

    def answer_times(self, client: str) -> list[float]:
        with self.lock:
            return [
                a.ended
                for call_id, a in self.calls.items()
                if call_id.startswith(f"{client}-") and a.outcome == "ok"
            ]

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(CALL_TIMEOUT * 3)
        assert not any(t.is_alive() for t in self.threads), "a call or dispatch hangs"


def handled(record: Path) -> dict[str, collections.Counter]:
    """What the service instances recorded: kind -> Counter of ids."""
    seen: dict[str, collections.Counter] = {
        "rpc": collections.Counter(),
        "event": collections.Counter(),
    }
    for kind, item, _pid, _when in records(record):
        seen[kind][item] += 1
    return seen


def records(record: Path) -> list[list[str]]:
    return [line.split() for line in record.read_text().splitlines()] if record.exists() else []


def work_times(record: Path, pid: int) -> list[float]:
    """When instance ``pid`` executed requests (wall clock)."""
    return [float(w) for k, _, p, w in records(record) if k == "rpc" and int(p) == pid]


def longest_pause(times: list[float], start: float, end: float) -> float:
    """The longest stretch of ``start``..``end`` without any of ``times``."""
    inside = sorted(t for t in times if start < t < end)
    marks = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(marks))


@dataclass
class Failover:
    node: str
    stopping: float  # wall clock: the node was asked to stop
    restart: float  # seconds the node took to start again
    until: float = 0.0  # wall clock: the next node was asked to stop, or traffic ended


@dataclass
class Run:
    traffic: Traffic
    record: Path
    failovers: list[Failover]
    timings: dict[str, float]
    services: list[NamekoProcess]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory) -> Iterator[Run]:
    began = time.monotonic()
    cluster = ThrowawayCluster()
    services: list[NamekoProcess] = []
    configs: list[dict] = []
    try:
        cluster.start()
        vhost = f"cluster-{uuid.uuid4().hex[:8]}"
        cluster.add_vhost(vhost)
        folder = tmp_path_factory.mktemp("cluster")
        record = folder / "record.txt"
        base = {"QUEUE_TYPE": "quorum", "RECORD_FILE": str(record)}
        configs = [{**base, "AMQP_URI": rotated(cluster.uris(vhost), n)} for n in range(3)]
        services += _start_services(folder, configs[:2])  # connected to nodes 0 and 1
        traffic = Traffic()
        traffic.start([configs[0], configs[2]], configs[1])  # clients on nodes 0 and 2
        failovers = _stop_and_start_each_node(cluster, traffic)
        traffic.stop()
        for failover, following in itertools.pairwise(failovers):
            failover.until = following.stopping
        failovers[-1].until = time.time()
        cluster.timings["whole run"] = time.monotonic() - began
        yield Run(traffic, record, failovers, cluster.timings, services)
    finally:
        for service in services:
            service.close()
        for config in configs:
            close_idle(config["AMQP_URI"])  # the dispatcher's pooled connection
        cluster.close()


def _start_services(folder: Path, configs: list[dict]) -> list[NamekoProcess]:
    services = [
        start_nameko(
            folder / f"svc{n}", ["cluster_service:ClusterService"], ["cluster_service.py"], config
        )
        for n, config in enumerate(configs)
    ]
    wait_until_serving(configs[0], "cluster_service", "echo", timeout=60)
    return services


def _stop_and_start_each_node(cluster: ThrowawayCluster, traffic: Traffic) -> list[Failover]:
    """Stop a node, wait until calls are answered without it, start it
    again, wait until the cluster has it back; node after node. At the end
    wait until every client gets answers again (its reply queue's node is
    back)."""
    began = time.time()
    wait_until(lambda: traffic.answered_since(began) >= PROGRESS, PROGRESS_TIMEOUT)
    failovers = []
    for node in cluster.nodes:
        stopping = time.time()
        node.stop()
        stopped = time.time()
        wait_until(
            lambda moment=stopped: traffic.answered_since(moment) >= PROGRESS,
            PROGRESS_TIMEOUT,
            what=f"calls answered without {node.node}",
        )
        failovers.append(Failover(node.node, stopping, node.start()))
        wait_until(lambda: len(cluster.running_nodes()) == 3, PROGRESS_TIMEOUT, 0.5)
    back = time.time()
    for client in CLIENT_ON.values():
        wait_until(
            lambda c=client: any(t > back for t in traffic.answer_times(c)),
            PROGRESS_TIMEOUT,
            what=f"client {client} answered again",
        )
    return failovers


def test_every_call_has_one_outcome_and_every_result_was_computed(cluster_run: Run) -> None:
    calls = cluster_run.traffic.calls
    outcomes = collections.Counter(a.outcome for a in calls.values())
    assert cluster_run.traffic.repeated == []
    assert set(outcomes) <= {"ok", *CALL_ERRORS}, outcomes
    assert outcomes["ok"] > 3 * PROGRESS
    executed = handled(cluster_run.record)["rpc"]
    returned = [call_id for call_id, a in calls.items() if a.outcome == "ok"]
    assert [call_id for call_id in returned if not executed[call_id]] == []


def test_every_confirmed_event_is_handled(cluster_run: Run) -> None:
    events = cluster_run.traffic.events
    outcomes = collections.Counter(a.outcome for a in events.values())
    assert set(outcomes) <= {"confirmed", *DISPATCH_ERRORS}, outcomes
    confirmed = {event_id for event_id, a in events.items() if a.outcome == "confirmed"}

    def missing() -> set[str]:
        return confirmed - set(handled(cluster_run.record)["event"])

    wait_until(lambda: not missing(), PROGRESS_TIMEOUT, 0.5, what="every confirmed event handled")


def test_services_moved_to_other_nodes(cluster_run: Run) -> None:
    """Each instance lost its node once (0, then 1) and went on on the next."""
    for number, service in enumerate(cluster_run.services):
        log = service.output()
        assert "Reconnected to broker at amqp://guest:********@" in log, log
        assert "guest:guest" not in log
        failover = cluster_run.failovers[number]
        times = work_times(cluster_run.record, service.proc.pid)
        assert any(failover.stopping < t < failover.until for t in times)


def test_report(cluster_run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """Counts and timings, printed for docs/architecture.md D25."""
    seen = handled(cluster_run.record)
    calls = collections.Counter(a.outcome for a in cluster_run.traffic.calls.values())
    events = collections.Counter(a.outcome for a in cluster_run.traffic.events.values())
    lines = [
        f"calls: {dict(calls)}; executed twice or more: "
        f"{sum(1 for n in seen['rpc'].values() if n > 1)}",
        f"events: {dict(events)}; handled twice or more: "
        f"{sum(1 for n in seen['event'].values() if n > 1)}",
        *(_failover_line(cluster_run, n, f) for n, f in enumerate(cluster_run.failovers)),
        *_error_windows(cluster_run),
        "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in cluster_run.timings.items()),
    ]
    with capsys.disabled():
        print("\ncluster test:\n  " + "\n  ".join(lines))


def _error_windows(run: Run) -> list[str]:
    """When the errors happened, relative to the node stops."""
    attempts = [*run.traffic.calls.values(), *run.traffic.events.values()]
    lines = []
    for kind in sorted({a.outcome for a in attempts} - {"ok", "confirmed"}):
        times = sorted(a.started for a in attempts if a.outcome == kind)
        stops = [f.stopping for f in run.failovers]
        near = [(max((n for n, s in enumerate(stops) if s <= t), default=-1), t) for t in times]
        spans = collections.defaultdict(list)
        for node, t in near:
            spans[node].append(t - stops[node] if node >= 0 else t)
        lines.append(
            f"{kind}: "
            + ", ".join(
                f"{len(v)} from {min(v):.1f} s to {max(v):.1f} s after node {n} was asked to stop"
                for n, v in sorted(spans.items())
            )
        )
    return lines


def _failover_line(run: Run, node: int, failover: Failover) -> str:
    """The longest pauses seen by the client and the service instance that
    were connected to the node, from its stop to the next node's."""
    line = f"node {node} down:"
    window = (failover.stopping, failover.until)
    if node in CLIENT_ON:
        pause = longest_pause(run.traffic.answer_times(CLIENT_ON[node]), *window)
        line += f" longest pause of its client {pause:.1f} s;"
    if node in SERVICE_ON:
        pid = run.services[SERVICE_ON[node]].proc.pid
        pause = longest_pause(work_times(run.record, pid), *window)
        line += f" of its service instance {pause:.1f} s;"
    return f"{line} the node started again in {failover.restart:.1f} s"
