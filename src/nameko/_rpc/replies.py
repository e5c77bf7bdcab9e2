"""RPC reply handling: one reply queue per caller, replies routed by correlation id.

How it works
------------
A caller (a service container with an `RpcProxy`, or one standalone client)
owns ONE reply queue, ``rpc.reply-<service>-<uuid>``, bound to the RPC
exchange with the bare ``<uuid>`` as routing key; requests carry that uuid in
``reply_to`` (nameko's wire format, SPEC 3.1-3.3). The queue expires 5
minutes after its consumer goes away (``x-expires``), as nameko's do.

`ReplyRouter` maps correlation ids to `PendingReply` slots. A call registers
its slot *before* publishing the request, so a reply can never arrive before
someone waits for it. The broker's dispatch thread decodes each reply and
fills the matching slot; replies nobody waits for (late after a timeout,
duplicates after a redelivery) are logged at DEBUG and dropped. A slot can
also receive an error instead of a reply: the caller (`caller.py`) delivers
one when a pipelined request's confirm fails (e.g. `UnknownService`), so the
waiting call never depends on the confirm in the normal case. Any number of
threads can call at once: the only shared state is the router's dict, under a
lock, and the broker connection, which is thread-safe.

`ReplyQueue` is the consumer side: declares and consumes the queue and on
`stop` fails the calls still waiting, so nobody hangs on a closed client.
Replies are acked once routed (``ack_on_return``: one cumulative ack per
read from the socket), not auto-acked: with auto-ack the broker
counts a reply as done when it writes it to the socket, so replies in
flight when a connection drops were lost and their calls waited for their
timeout (or for ever); now the broker delivers them again after the
reconnect (a duplicate finds no waiting call and is dropped).

A reply sent while the queue does not exist is dropped by the broker (the
queue was deleted, or expired during a long disconnection). The broker
tells `ReplyQueue` when it consumes the queue again after finding it gone
(``on_queue_lost``); every call still waiting then fails at once with
`ReplyQueueExpiredWithPendingReplies` instead of waiting for its timeout,
or for ever. Calls made afterwards are answered on the new queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from nameko._broker.base import Binding, Broker, Consumer, Delivery, Exchange, Queue
from nameko._concurrency import Lock, OneShot
from nameko._protocol import codecs
from nameko._protocol.envelopes import decode_reply
from nameko._protocol.names import RPC_REPLY_QUEUE_TTL, reply_queue_name
from nameko._rpc.consumer_view import QueueConsumerView
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies, RpcTimeout

__all__ = ["PendingReply", "ReplyQueue", "ReplyRouter"]

_log = logging.getLogger("nameko.rpc")


class PendingReply:
    """The outcome of one RPC call: its reply, or an error delivered instead
    (e.g. `UnknownService` when a pipelined request turns out unroutable)."""

    __slots__ = ("correlation_id", "_slot", "_router", "timeout")

    def __init__(self, correlation_id: str, router: ReplyRouter, timeout: float | None) -> None:
        self.correlation_id = correlation_id
        self._slot: OneShot[Any] = OneShot()
        self._router = router
        self.timeout = timeout

    @property
    def outcome(self) -> OneShot[Any]:
        """Where the reply body (or the error instead) is delivered: for
        callers that await it on an event loop rather than block in `body`."""
        return self._slot

    def body(self) -> Any:
        """The decoded reply body; `RpcTimeout` after ``timeout`` seconds."""
        try:
            return self._slot.get(self.timeout)
        except TimeoutError:
            self.discard()
            raise RpcTimeout(self.timeout) from None

    # nameko 2.14's reply event is waited on with ``wait()``
    wait = body

    def response(self) -> Any:
        """`body` for nameko 3's client: its timeout is a bare `RpcTimeout()`."""
        try:
            return self.body()
        except RpcTimeout:
            raise RpcTimeout() from None

    def discard(self) -> None:
        """Stop waiting: a reply arriving later is dropped."""
        self._router.discard(self.correlation_id)

    def result(self) -> Any:
        """The call's result, or raise the remote error."""
        return decode_reply(self.body())


class ReplyRouter:
    def __init__(self) -> None:
        self._pending: dict[str, PendingReply] = {}
        self._lock = Lock()
        self._closed_with: BaseException | None = None

    def register(self, correlation_id: str, timeout: float | None = None) -> PendingReply:
        pending = PendingReply(correlation_id, self, timeout)
        with self._lock:
            if self._closed_with is not None:
                raise self._closed_with
            self._pending[correlation_id] = pending
        return pending

    def shorten(self, correlation_id: str, timeout: float | None) -> None:
        """Wait for ``correlation_id`` at most ``timeout`` seconds (a deadline
        learnt after it was registered)."""
        pending = self._pending.get(correlation_id)
        if pending is None or timeout is None:
            return
        if pending.timeout is None or timeout < pending.timeout:
            pending.timeout = timeout

    def discard(self, correlation_id: str) -> None:
        with self._lock:
            self._pending.pop(correlation_id, None)

    def deliver(
        self, correlation_id: str | None, body: Any = None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            pending = self._pending.pop(correlation_id, None) if correlation_id else None
        if pending is None:
            _log.debug("Unknown correlation id: %s", correlation_id)
        elif error is not None:
            pending._slot.send_exception(error)
        else:
            pending._slot.send(body)

    def fail_waiting(self, error_for: Callable[[str], BaseException]) -> int:
        """Fail every call waiting now with ``error_for(correlation_id)``
        (later calls are unaffected); how many there were."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for correlation_id, reply in pending.items():
            reply._slot.send_exception(error_for(correlation_id))
        return len(pending)

    def is_waiting(self, correlation_id: str) -> bool:
        return correlation_id in self._pending

    def close(self, error: BaseException) -> None:
        """Fail every waiting call with ``error``, and every later one."""
        with self._lock:
            self._closed_with = error
            pending, self._pending = self._pending, {}
        for reply in pending.values():
            reply._slot.send_exception(error)

    @property
    def waiting(self) -> int:
        return len(self._pending)


class ReplyQueue:
    """A caller's reply queue and its consumer."""

    def __init__(self, broker: Broker, exchange: str, owner: str, accept: Any) -> None:
        self.broker = broker
        self.exchange = exchange
        self.routing_key = str(uuid.uuid4())
        self.queue_name = reply_queue_name(owner, self.routing_key)
        self.accept = accept
        self.router = ReplyRouter()
        self._consumer: Consumer | None = None

    def topology(self) -> list[Any]:
        return [
            Exchange(self.exchange, type="topic", durable=True),
            Queue(self.queue_name, arguments={"x-expires": RPC_REPLY_QUEUE_TTL}),
            Binding(self.queue_name, self.exchange, self.routing_key),
        ]

    def start(self) -> None:
        self._consumer = self.broker.consume(
            self.queue_name,
            self._on_reply,
            ack_on_return=True,
            topology=self.topology(),
            on_queue_lost=self._on_queue_lost,
        )

    def _on_queue_lost(self) -> None:
        """The broker dropped what was sent to the queue while it was gone:
        the calls waiting now may never get their reply (dispatch thread)."""
        failed = self.router.fail_waiting(self._lost_reply)
        if failed:
            _log.warning(
                "reply queue %s was gone: %d waiting call(s) failed with "
                "ReplyQueueExpiredWithPendingReplies",
                self.queue_name,
                failed,
            )

    def _lost_reply(self, correlation_id: str) -> BaseException:
        return ReplyQueueExpiredWithPendingReplies(
            f"the reply queue {self.queue_name} was deleted or expired while the call "
            f"{correlation_id} waited: its reply is lost (the request may have run)"
        )

    @property
    def queue_consumer(self) -> QueueConsumerView:
        """nameko 2.14's view of the connection under the reply listener
        (`nameko._rpc.consumer_view`), for pool libraries that check it."""
        return QueueConsumerView(self.broker)

    def get_reply_event(self, correlation_id: str) -> PendingReply:
        """Wait for ``correlation_id`` (the shape of nameko 2.14's ReplyListener)."""
        return self.router.register(correlation_id)

    def _on_reply(self, delivery: Delivery) -> None:
        props = delivery.properties
        try:
            body = codecs.decode(
                delivery.body, props.content_type, props.content_encoding, self.accept
            )
        except Exception as exc:  # the caller gets a clear error instead of hanging
            _log.error("undecodable RPC reply for %s: %s", props.correlation_id, exc)
            self.router.deliver(props.correlation_id, error=exc)
            return
        self.router.deliver(props.correlation_id, body)

    def stop(self, error: BaseException) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
        self.router.close(error)

    def kill(self, error: BaseException) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.router.close(error)
