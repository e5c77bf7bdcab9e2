"""What an entrypoint (``@rpc``, ``@event_handler``, ``@consume``) does with
a message that keeps failing: `Redeliveries`.

Two checks, both off the hot path:

* on arrival (the dispatch thread), only for a redelivered message: a
  message delivered more than ``DELIVERY_LIMIT`` times (it crashed or killed
  its worker again and again) is dead-lettered instead of run; below the
  limit a classic queue's message is published again with its count raised
  and the original acked, since only the copy can carry the count. Both
  publish from a managed thread (a confirmed publish can't wait on the
  dispatch thread).
* after a failed worker (its thread): a `RetryPolicy` sends a retryable
  failure back through a delay queue, or dead-letters it once attempts run
  out.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from nameko._broker.base import Broker, BrokerClosed, BrokerError, Delivery, Queue
from nameko._protocol import retries as wire
from nameko._reliability.policy import RetryPolicy
from nameko._reliability.redelivery import Home, count_delivery, dead_letter, retry_later
from nameko.exceptions import ConfigurationError, DeliveryLimitExceeded

__all__ = [
    "DEFAULT_DELIVERY_LIMIT",
    "DELIVERY_LIMIT_CONFIG_KEY",
    "Outcome",
    "Redeliveries",
    "delivery_limit",
]

_log = logging.getLogger("nameko.reliability")

DELIVERY_LIMIT_CONFIG_KEY = "DELIVERY_LIMIT"
DEFAULT_DELIVERY_LIMIT = 10


def delivery_limit(config: Any) -> int | None:
    """``DELIVERY_LIMIT`` from config: deliveries of one message before it
    is dead-lettered (default 10; 0 or None: no limit)."""
    value = config.get(DELIVERY_LIMIT_CONFIG_KEY, DEFAULT_DELIVERY_LIMIT)
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{DELIVERY_LIMIT_CONFIG_KEY} must be a whole number, not {value!r}"
        )
    return value or None


class Outcome(enum.Enum):
    """What `Redeliveries.after_failure` did with a failed delivery."""

    NOTHING = "nothing"  # handle it as without a policy
    RETRIED = "retried"  # a copy will come back later: ack, and (RPC) don't reply yet
    DEAD_LETTERED = "dead-lettered"  # given up: ack, and (RPC) reply the error


class Redeliveries:
    """One entrypoint's retry policy and delivery limit.

    ``broker()`` is the connection to publish on (looked up when needed: it
    may be closed by then); ``home(delivery)`` says where a copy must go to
    come back to this entrypoint; ``spawn(fn, name)`` runs ``fn`` on a
    managed thread; ``answer(delivery, error)`` (RPC) tells a waiting caller
    its request was dead-lettered on arrival, and settles it."""

    def __init__(
        self,
        entrypoint: tuple[str, str],
        policy: RetryPolicy | None,
        delivery_limit: int | None,
        broker: Callable[[], Broker],
        home: Callable[[Delivery], Home],
        spawn: Callable[[Callable[[], None], str], Any],
        answer: Callable[[Delivery, BaseException], None] | None = None,
    ) -> None:
        self.entrypoint = entrypoint
        self.policy = policy
        self.delivery_limit = delivery_limit or None
        self._broker = broker
        self._home = home
        self._spawn = spawn
        self._answer = answer

    def dead_letter_queue(self) -> list[Queue]:
        """The dead-letter queue to declare up front: an entrypoint with a
        retry policy that dead-letters (others declare theirs on first use)."""
        if self.policy is None or not self.policy.dead_letter:
            return []
        return [Queue(wire.dead_letter_queue_name(*self.entrypoint))]

    # -- on arrival (dispatch thread) -----------------------------------------

    def intercept(self, delivery: Delivery) -> bool:
        """True when ``delivery`` was taken away (counted or dead-lettered)
        and must not run now."""
        headers = delivery.properties.headers
        quorum = bool(headers) and wire.QUORUM_DELIVERY_COUNT in headers
        if self.delivery_limit is None or not (delivery.redelivered or quorum):
            return False
        deliveries = wire.deliveries_of(headers, delivery.redelivered and not quorum)
        if deliveries > self.delivery_limit:
            self._off_dispatch(lambda: self._give_up(delivery, deliveries), "dead-letter")
            return True
        if quorum:
            return False  # the broker keeps the count: just run it
        self._off_dispatch(lambda: self._recount(delivery, deliveries), "count-delivery")
        return True

    def _off_dispatch(self, job: Callable[[], None], name: str) -> None:
        try:
            self._spawn(job, name)
        except Exception as exc:  # a container being killed: its channel requeues the message
            _log.debug("left a redelivered message to the broker (%s)", exc)

    def _recount(self, delivery: Delivery, deliveries: int) -> None:
        try:
            count_delivery(self._broker(), delivery, self._home(delivery), deliveries)
        except BrokerError as exc:
            _log.warning("could not count a redelivery (%s): it goes back to the queue", exc)
            delivery.reject(requeue=True)
        else:
            delivery.ack()

    def _give_up(self, delivery: Delivery, deliveries: int) -> None:
        error = DeliveryLimitExceeded(
            f"{'.'.join(self.entrypoint)}: delivered {deliveries} times "
            f"(DELIVERY_LIMIT is {self.delivery_limit}); dead-lettered, not run again"
        )
        try:
            home = self._home(delivery)
            dead_letter(self._broker(), delivery, home, self.entrypoint, "delivery-limit", error)
        except BrokerClosed:
            return  # stopping: closing the channel gives the message back
        except BrokerError as exc:
            _log.error("could not dead-letter a poison message (%s): it is dropped", exc)
        if self._answer is not None and delivery.properties.reply_to:
            self._answer(delivery, error)
        else:
            delivery.ack()

    # -- after a failed worker (worker thread) --------------------------------

    def after_failure(
        self, delivery: Delivery, error: BaseException, deadline: float | None = None
    ) -> Outcome:
        """Retry ``delivery`` later or dead-letter it, as the policy says.
        The caller settles the original (ack) for anything but NOTHING."""
        policy = self.policy
        if policy is None or not isinstance(error, policy.on):
            return Outcome.NOTHING
        attempt = wire.attempt_of(delivery.properties.headers)
        try:
            if policy.retries(error, attempt):
                delay = policy.delay_for(attempt)
                if deadline is not None and time.time() + delay >= deadline:
                    return Outcome.NOTHING  # the caller would be gone: answer now
                retry_later(self._broker(), delivery, self._home(delivery), delay, attempt, error)
                return Outcome.RETRIED
        except BrokerError as exc:
            _log.error(
                "could not retry a failed message for %s (%s): handled as without a retry policy",
                ".".join(self.entrypoint),
                exc,
            )
            return Outcome.NOTHING
        if policy.dead_letter and self.give_up(delivery, "retries-exhausted", error):
            return Outcome.DEAD_LETTERED
        return Outcome.NOTHING

    def give_up(self, delivery: Delivery, reason: str, error: BaseException) -> bool:
        """Dead-letter ``delivery`` now; False if the broker refused (the
        caller then settles it as it would have without us)."""
        try:
            dead_letter(
                self._broker(), delivery, self._home(delivery), self.entrypoint, reason, error
            )
        except BrokerError as exc:
            _log.error("could not dead-letter a message for %s: %s", ".".join(self.entrypoint), exc)
            return False
        return True
