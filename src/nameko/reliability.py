"""Reliability beyond nameko 2.14 (shimeji): deadlines, retries, dead letters.

* ``Deadline`` injects the time an ``@rpc`` method's caller still waits;
* ``RetryPolicy`` for ``@rpc(retry=...)``, ``@event_handler(..., retry=...)``
  and ``@consume(..., retry=...)``: failures tried again later through the
  broker, then dead-lettered to ``dlq-<service>.<method>``;
* ``DELIVERY_LIMIT`` (config) stops a message that keeps killing its worker.

docs/reliability.md states each guarantee and the test that proves it.
"""

from nameko._reliability.deadline import CallBudget, Deadline
from nameko._reliability.policy import RetryPolicy
from nameko.exceptions import DeadlineExceeded, DeliveryLimitExceeded

__all__ = ["CallBudget", "Deadline", "DeadlineExceeded", "DeliveryLimitExceeded", "RetryPolicy"]
