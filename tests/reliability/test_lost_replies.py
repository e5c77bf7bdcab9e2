"""A reply that can't reach its caller ends the call at once, on both brokers.

The caller's reply queue is deleted while a call waits (an operator, a
policy, a broker that lost it): the reply, sent later, has nowhere to go.
The waiting call fails with `ReplyQueueExpiredWithPendingReplies` within a
few seconds instead of waiting for its timeout (or for ever), and the next
call is answered on the re-created queue. Standalone 2.x client, `RpcProxy`
inside a service, asyncio client. (A queue that goes while the caller is
disconnected: tests/integration/test_lost_replies.py.)
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, Queue
from nameko._protocol.names import reply_queue_name
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies
from nameko.rpc import RpcProxy, rpc
from nameko.standalone import aio
from nameko.standalone.rpc import ClusterRpcProxy
from tests.waiting import outcome_within

WAIT = 20
BOUND = 5  # seconds a call may take to fail once its reply queue is gone


class Slow:
    name = "slow"
    release = threading.Event()

    @rpc
    def wait(self):
        Slow.release.wait(WAIT)
        return "late"


class Caller:
    name = "caller"
    slow = RpcProxy("slow")

    @rpc
    def relay(self):
        try:
            return self.slow.wait()
        except ReplyQueueExpiredWithPendingReplies as exc:
            return f"lost: {type(exc).__name__}"


class RequestSpy:
    """Sees every ``slow.wait`` request (a queue of its own bound to it),
    to learn the caller's ``reply_to``."""

    def __init__(self, uri: str) -> None:
        self.broker = connect(uri)
        self.seen: list[str] = []
        self._cond = threading.Condition()
        name = f"spy-{uuid.uuid4().hex}"
        self.broker.consume(
            name,
            self._on_request,
            ack_on_return=True,
            topology=[
                Exchange("nameko-rpc", type="topic", durable=True),
                Queue(name, durable=False, auto_delete=True),
                Binding(name, "nameko-rpc", "slow.wait"),
            ],
        )

    def _on_request(self, delivery: Any) -> None:
        with self._cond:
            self.seen.append(delivery.properties.reply_to)
            self._cond.notify_all()

    def reply_to(self, nth: int = 1) -> str:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.seen) >= nth, WAIT), "no request seen"
            return self.seen[nth - 1]

    def delete_reply_queue(self, owner: str, nth: int = 1) -> None:
        self.broker.delete_queue(reply_queue_name(owner, self.reply_to(nth)))


@pytest.fixture
def spy(config):
    Slow.release.clear()
    spy = RequestSpy(config["AMQP_URI"])
    yield spy
    Slow.release.set()  # no worker left waiting
    spy.broker.close()


def test_standalone_call_without_timeout_ends_when_its_reply_queue_is_deleted(start, config, spy):
    start(Slow)
    with ClusterRpcProxy(config) as rpc_:  # no timeout: it would wait for ever
        reply = rpc_.slow.wait.call_async()
        spy.delete_reply_queue("standalone_rpc_proxy")
        outcome, _ = outcome_within(reply.result, BOUND)
        assert isinstance(outcome, ReplyQueueExpiredWithPendingReplies), outcome
        assert "reply is lost" in str(outcome)
        Slow.release.set()
        assert rpc_.slow.wait() == "late"  # the next call is answered: the queue is back


def test_rpc_proxy_call_ends_when_the_service_reply_queue_is_deleted(start, config, spy):
    start(Slow)
    start(Caller, RPC_TIMEOUT=60)
    with ClusterRpcProxy(config, timeout=WAIT) as rpc_:
        relayed = rpc_.caller.relay.call_async()
        spy.delete_reply_queue("caller")  # the calling service's own queue
        outcome, _ = outcome_within(relayed.result, BOUND)
        assert outcome == "lost: ReplyQueueExpiredWithPendingReplies"
        Slow.release.set()
        assert rpc_.caller.relay() == "late"


def test_asyncio_call_ends_when_its_reply_queue_is_deleted(start, config, spy):
    start(Slow)

    async def main() -> tuple[BaseException | None, str]:
        async with aio.ClusterRpcProxy(config) as rpc_:
            waiting = asyncio.ensure_future(rpc_.slow.wait())
            await asyncio.to_thread(spy.delete_reply_queue, "standalone_rpc_proxy")
            try:
                await asyncio.wait_for(waiting, BOUND)
            except ReplyQueueExpiredWithPendingReplies as exc:
                error: BaseException | None = exc
            else:
                error = None
            Slow.release.set()
            return error, await rpc_.slow.wait()

    error, after = asyncio.run(main())
    assert isinstance(error, ReplyQueueExpiredWithPendingReplies)
    assert after == "late"
