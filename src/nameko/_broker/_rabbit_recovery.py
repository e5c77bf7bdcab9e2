"""How the RabbitMQ broker recovers: reconnecting, restoring consumers,
consuming a deleted queue again, sorting publishes on a closed channel.

`Recovery` is a mixin of `nameko._broker.rabbit.RabbitBroker`; its methods
are the driver's connection callbacks and the handlers of the rare events
that end a channel or a consumer. They run on the I/O thread and never wait
there: a retry that needs a delay gets a short-lived timer thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from nameko import _concurrency
from nameko._amqp.channel import too_large_limit, triage_unconfirmed
from nameko._amqp.connection import Connection
from nameko._amqp.consumer import (
    ACTIVE,
    CANCELLED,
    STARTING,
    Countdown,
    RabbitConsumer,
    RestoreToken,
)
from nameko._amqp.driver import ClosedByBroker, Driver
from nameko._amqp.events import ChannelClosed, ConsumerCancelled, PendingPublish
from nameko._amqp.uri import AmqpParams
from nameko._broker.base import (
    BrokerClosed,
    BrokerError,
    BrokerStats,
    BrokerUnreachable,
    ChannelError,
    ConfirmLost,
    ConnectionLost,
    MessageTooLarge,
    NotFound,
    PreconditionFailed,
)
from nameko._broker.refusal import refused_error

__all__ = ["PUBLISH_CHANNEL", "Recovery", "ack_timeout_hint", "channel_error", "fail"]

log = logging.getLogger("nameko._broker.rabbit")  # one logger for the whole broker

PUBLISH_CHANNEL = 1


def channel_error(reply_code: int, reply_text: str) -> BrokerError:
    """The typed error for a channel the broker closed."""
    if reply_code == 406 and too_large_limit(reply_text) is not None:
        return MessageTooLarge(f"the broker refused the message: {reply_text}")
    kind = {404: NotFound, 406: PreconditionFailed}.get(reply_code, ChannelError)
    return kind(reply_text, reply_code)


PRECONDITION_FAILED = 406
# RabbitMQ's words when a delivery stayed unacked past its consumer timeout
_ACK_TIMEOUT = re.compile(r"delivery acknowledgement on channel \d+ timed out")
ACCESS_REFUSED, NOT_ALLOWED = 403, 530  # a wrong login, a missing vhost: not transient


def refused(exc: BaseException) -> bool:
    """The broker turned the connection down for a reason retrying cannot fix."""
    return isinstance(exc, ClosedByBroker) and exc.reply_code in (ACCESS_REFUSED, NOT_ALLOWED)


def refusal_hint(exc: BaseException, params: AmqpParams) -> str:
    if not refused(exc):
        return str(exc)
    assert isinstance(exc, ClosedByBroker)
    if exc.reply_code == ACCESS_REFUSED:
        return f"the broker refused the login of user {params.username!r} ({exc.reply_text})"
    return f"the broker refused vhost {params.vhost!r} (does it exist?) ({exc.reply_text})"


def ack_timeout_hint(reply_code: int, reply_text: str) -> str:
    """What to tell an operator when a channel was closed for an ack that
    took too long (RabbitMQ's ``consumer_timeout``), else nothing."""
    if reply_code != PRECONDITION_FAILED or not _ACK_TIMEOUT.search(reply_text):
        return ""
    return (
        ". A job ran longer than the broker's consumer_timeout: it goes on, and the "
        "redelivered copy is not run again by this process (another instance may run it). "
        "Raise consumer_timeout for long jobs: see docs/operations.md, 'Long jobs'"
    )


def fail(tokens: Iterable[Any], error: BaseException) -> None:
    for token in tokens:
        if token is not None:
            token.send_exception(error)


class Recovery:
    """Reconnect and restore callbacks of `RabbitBroker` (see the module docstring)."""

    # provided by RabbitBroker
    _options: dict[str, Any]
    _consumers: dict[int, RabbitConsumer]
    _listeners: list[Callable[[], None]]
    _closed: bool
    _reconnect_forever: bool
    _closing: _concurrency.Event
    _first: _concurrency.OneShot[Any]
    _driver: Driver
    _run: Callable[..., Any]
    stats: BrokerStats

    def on_connected(self, conn: Connection) -> None:
        if not self._first.ready():
            self._first.send(True)
            return
        self.stats.reconnects += 1
        log.info("Reconnected to broker at %s", self._driver.params.display)
        consumers = [c for c in list(self._consumers.values()) if c.state == ACTIVE]
        countdown = Countdown(len(consumers), self._notify_reconnected)
        for consumer in consumers:
            self._run(consumer.start, RestoreToken(consumer, countdown, self._restore_failed))
        if not consumers:
            self._notify_reconnected()

    def _notify_reconnected(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("error in a reconnect listener")

    def on_disconnected(
        self, waiting: list[Any], unconfirmed: list[PendingPublish], exc: BaseException | None
    ) -> None:
        going_on = exc is not None and not self._closed
        for consumer in list(self._consumers.values()):
            if consumer.lease is not None:
                consumer.lease.alive = False
                if going_on and consumer.state == ACTIVE:
                    consumer.orphan_deliveries()
        if exc is None or self._closed:
            error: BrokerError = BrokerClosed(
                f"the connection to {self._driver.params.display} was closed"
            )
        else:
            log.warning(
                "Connection to broker at %s lost (%s); reconnecting",
                self._driver.params.display,
                exc,
            )
            error = ConnectionLost(f"connection to {self._driver.params.display} lost: {exc}")
        fail(waiting, error)
        fail([entry.token for entry in unconfirmed], error)

    def retry_delay(self, failures: int, exc: BaseException, ever_connected: bool) -> float | None:
        if self._closed:
            return None
        opts = self._options
        bounded = not ever_connected or not self._reconnect_forever
        limit = opts["max_retries"] if bounded else None
        if (limit is not None and failures >= limit) or (not ever_connected and refused(exc)):
            self._give_up(exc, ever_connected)
            return None
        delay = self._backoff(failures)
        of = f" of {limit}" if limit is not None else ""
        log.warning(
            "Error connecting to broker at %s (%s).\nRetrying in %s seconds (retry %s%s).",
            self._driver.params.display,
            exc,
            delay,
            failures + 1,
            of,
        )
        return delay

    def _give_up(self, exc: BaseException, ever_connected: bool) -> None:
        """No more attempts: the first connection raises, a lost one closes
        the broker (what is still waiting gets `BrokerClosed`)."""
        nodes = ", ".join(node.display for node in self._driver.nodes)
        message = f"cannot connect to broker at {nodes}: {refusal_hint(exc, self._driver.params)}"
        unreachable = (
            refused_error(message, exc.reply_code, exc.reply_text)
            if isinstance(exc, ClosedByBroker) and refused(exc)
            else BrokerUnreachable(message)
        )
        if not ever_connected:
            self._first.send_exception(unreachable)
            return
        self._closed = True
        self._closing.set()
        log.warning("%s; giving up: this connection is closed", unreachable)

    def _backoff(self, failures: int) -> float:
        opts = self._options
        return min(opts["interval_start"] + failures * opts["interval_step"], opts["interval_max"])

    def _on_channel_closed(self, event: ChannelClosed) -> None:
        error = channel_error(event.reply_code, event.reply_text)
        fail(event.waiting, error)
        if event.channel == PUBLISH_CHANNEL:
            self._recover_publishes(event, error)
            return
        consumer = self._consumers.get(event.channel)
        if consumer is None or consumer.lease is None:
            return
        consumer.lease.alive = False
        if consumer.state == ACTIVE and not any(t is not None for t in event.waiting):
            consumer.orphan_deliveries()
            log.error(
                "channel %d closed by the broker: %d %s; restoring the consumer of %r%s",
                *(event.channel, event.reply_code, event.reply_text, consumer.queue),
                ack_timeout_hint(event.reply_code, event.reply_text),
            )
            self._run(consumer.start, RestoreToken(consumer, None, self._restore_failed))

    def _recover_publishes(self, event: ChannelClosed, error: BrokerError) -> None:
        """Fail what the broker refused or may have lost (the state machine
        already re-sent what it discarded unseen)."""
        unknown, failed, _ = triage_unconfirmed(event.unconfirmed, event.reply_text)
        lost = ConfirmLost(
            f"the publish channel closed before this publish was confirmed ({error})"
        )
        fail([e.token for e in unknown], lost)
        for entry in failed:  # one exception object per waiter: each raises its own
            fail([entry.token], channel_error(event.reply_code, event.reply_text))

    def _on_consumer_cancelled(self, event: ConsumerCancelled) -> None:
        """The queue was deleted (or failed over). A consumer whose topology
        declares its queue declares it again (with its bindings) and goes on
        consuming, as kombu's consumers did; any other consumer ends (its
        queue is somebody else's to re-create). The channel stays open so
        that unsettled deliveries can still be settled."""
        consumer = self._consumers.get(event.channel)
        if consumer is None or consumer.state not in (STARTING, ACTIVE):
            return
        consumer.confirmed = False
        if not consumer.redeclares_queue:
            consumer.state = CANCELLED
            consumer.lost = True
            log.warning(
                "the broker cancelled the consumer of queue %r (was it deleted?)", consumer.queue
            )
            return
        log.warning(
            "the broker cancelled the consumer of queue %r (was it deleted?); declaring it again",
            consumer.queue,
        )
        self._reconsume(_Reconsume(self, consumer, self._driver.connection))

    def _restore_failed(self, consumer: RabbitConsumer, exc: BaseException) -> None:
        """A consumer could not be restored after a reconnect or a closed
        channel (say an exclusive queue the broker still holds for our dead
        connection: 405): retry like a consumer whose queue was deleted."""
        self._reconsume_failed(_Reconsume(self, consumer, self._driver.connection), exc)

    def _reconsume(self, attempt: _Reconsume) -> None:
        """Make one attempt (any thread): only on the connection the consumer
        was cancelled on (after a reconnect `on_connected` restores it) and
        only while nobody cancelled or closed it meanwhile."""

        def send(conn: Connection) -> None:
            # is_ready: the same batch of events may have closed the connection
            if (
                conn is attempt.conn
                and conn.is_ready
                and attempt.consumer.state in (STARTING, ACTIVE)
            ):
                attempt.consumer.resume(conn, attempt)

        try:
            self._run(send)
        except BrokerError:
            pass  # the connection is gone: reconnecting restores the consumer

    def _reconsume_failed(self, attempt: _Reconsume, exc: BaseException) -> None:
        """On the I/O thread. Lost connections are handled by reconnecting;
        anything else (the queue can't be declared or consumed) is retried
        with back-off, from a timer thread so the I/O thread never waits."""
        if isinstance(exc, (ConnectionLost, BrokerClosed)) or self._closed:
            return
        delay = self._backoff(attempt.failures)
        attempt.failures += 1
        log.error(
            "could not consume queue %r again: %s. Retrying in %s seconds.",
            attempt.consumer.queue,
            exc,
            delay,
        )
        _concurrency.start_thread(self._reconsume_later, "amqp-reconsume", attempt, delay)

    def _reconsume_later(self, attempt: _Reconsume, delay: float) -> None:
        if not self._closing.wait(delay):
            self._reconsume(attempt)


class _Reconsume:
    """The token of an attempt to consume again after a broker cancel: the
    broker's Consume-Ok ends it, a failure schedules the next attempt."""

    __slots__ = ("broker", "consumer", "conn", "failures")

    def __init__(self, broker: Recovery, consumer: RabbitConsumer, conn: Connection | None) -> None:
        self.broker, self.consumer, self.conn, self.failures = broker, consumer, conn, 0

    def send(self, value: Any) -> None:
        self.consumer.confirmed = True
        log.info("consuming queue %r again", self.consumer.queue)

    def send_exception(self, exc: BaseException) -> None:
        self.broker._reconsume_failed(self, exc)
