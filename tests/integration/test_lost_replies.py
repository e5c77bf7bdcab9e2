"""A reply sent while its caller is disconnected and its reply queue is gone.

The callers' connections are closed and kept from coming back (their user
loses its permissions on the vhost) while their reply queues go: deleted,
or expired (a policy shortens nameko's 5-minute ``x-expires`` to 1 s: the
lower of the two applies). The service's
replies are then returned unroutable: it logs each once (no body) and acks
its request, which is not run again. Once the callers are back they find
their queues gone: the calls still waiting fail at once with
`ReplyQueueExpiredWithPendingReplies` (one with a 60 s timeout, one with
none), and the next calls are answered. (Queues deleted while the caller is
connected, on both brokers: tests/reliability/test_lost_replies.py.)
"""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from nameko._broker import connect
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing._vhosts import rabbitmqctl
from tests.rabbit_admin import connection_pids, queue_counts
from tests.waiting import outcome_within, wait_until

WAIT = 30
BOUND = 5  # seconds from the callers' return to the failure of their calls
REPLY_QUEUES = "rpc.reply-standalone_rpc_proxy-"
RESULT = "result-body-6f1c"  # must never appear in a log line


class Slow:
    name = "slow"
    release = threading.Event()
    runs: list[str] = []

    @rpc
    def wait(self, key):
        Slow.runs.append(key)
        Slow.release.wait(WAIT)
        return RESULT


@pytest.fixture
def own_user(rabbit_config):
    """A user of the test's vhost whose access the test can take away."""
    vhost = rabbit_config["vhost"]
    user, password = f"reply-gone-{secrets.token_hex(4)}", secrets.token_hex(8)
    rabbitmqctl("add_user", user, password)
    grant = ("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    rabbitmqctl(*grant)
    parts = urlsplit(rabbit_config["AMQP_URI"])
    uri = urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))
    yield {
        "AMQP_URI": uri,
        # come back quickly once allowed in again
        "TRANSPORT_OPTIONS": {"interval_start": 0.2, "interval_step": 0.1, "interval_max": 0.5},
        "revoke": lambda: rabbitmqctl("clear_permissions", "-p", vhost, user),
        "grant": lambda: rabbitmqctl(*grant),
    }
    rabbitmqctl("delete_user", user)


def reply_queues(vhost: str) -> dict[str, int]:
    """The standalone callers' reply queues and their consumer counts."""
    out = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name", "consumers")
    fields = (line.split() for line in out.splitlines())
    return {f[0]: int(f[1]) for f in fields if f and f[0].startswith(REPLY_QUEUES)}


def unroutable_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "returned unroutable" in r.getMessage()]


def drop_reply_queues(how: str, vhost: str, uri: str) -> None:
    if how == "expired":
        rabbitmqctl(
            "set_policy", "-p", vhost, "--apply-to", "queues",
            "short-replies", "^rpc\\.reply-", '{"expires": 1000}',
        )  # fmt: skip
        wait_until(lambda: not reply_queues(vhost), WAIT, what="reply queues expired")
        return
    with connect(uri) as admin:
        for queue in reply_queues(vhost):
            admin.delete_queue(queue)


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_calls_end_at_once_when_their_reply_queue_went_while_disconnected(
    container_factory, rabbit_config, own_user, caplog, how
):
    vhost = rabbit_config["vhost"]
    Slow.release.clear()
    Slow.runs.clear()
    container_factory(Slow, rabbit_config).start()
    client_config = {k: own_user[k] for k in ("AMQP_URI", "TRANSPORT_OPTIONS")}
    with (
        ClusterRpcProxy(client_config, timeout=60) as timed,
        ClusterRpcProxy(client_config) as untimed,  # no timeout: it would wait for ever
    ):
        waiting = [timed.slow.wait.call_async("timed"), untimed.slow.wait.call_async("untimed")]
        wait_until(lambda: len(Slow.runs) == 2, WAIT, what="both calls running")

        own_user["revoke"]()  # the callers can't reconnect until granted again
        for pid in connection_pids("nameko:standalone_rpc_proxy", vhost):
            rabbitmqctl("close_connection", pid, "closed by test")
        wait_until(lambda: set(reply_queues(vhost).values()) == {0}, WAIT, what="no consumers")
        drop_reply_queues(how, vhost, rabbit_config["AMQP_URI"])

        Slow.release.set()  # the replies go out now, to no queue
        wait_until(lambda: len(unroutable_lines(caplog)) == 2, WAIT, what="replies returned")
        wait_until(lambda: queue_counts(vhost, "rpc-slow") == (0, 0), WAIT, what="acked")

        own_user["grant"]()
        came_back = time.monotonic()
        for pending in waiting:
            outcome, _ = outcome_within(pending.result, BOUND)
            assert isinstance(outcome, ReplyQueueExpiredWithPendingReplies), outcome
        assert time.monotonic() - came_back < BOUND

        assert timed.slow.wait("after") == RESULT  # the callers work again
        assert untimed.slow.wait("after") == RESULT

    assert sorted(Slow.runs) == ["after", "after", "timed", "untimed"]  # each ran once
    lines = unroutable_lines(caplog)
    assert all("'slow.wait'" in line and "correlation_id=" in line for line in lines)
    assert not any(RESULT in r.getMessage() for r in caplog.records)
