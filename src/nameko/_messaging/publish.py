"""Publishing with a bounded retry when the connection drops mid-publish."""

from __future__ import annotations

import logging
import time

from nameko._broker.base import Broker, ConnectionLost, Properties

__all__ = ["publish"]

_log = logging.getLogger("nameko.messaging")

RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds; like nameko's retry_policy of 3 retries


def publish(
    broker: Broker,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: Properties,
    *,
    mandatory: bool = False,
    confirm: bool = True,
    retry: bool = True,
) -> None:
    """`Broker.publish`, retried (while the broker reconnects) on `ConnectionLost`.

    A retried message may be published twice; every consumer in nameko's
    protocol copes (RPC replies are matched once, requests are at-least-once).
    """
    delays = RETRY_DELAYS if retry else ()
    for attempt in range(len(delays) + 1):
        try:
            broker.publish(
                exchange, routing_key, body, properties, mandatory=mandatory, confirm=confirm
            )
            return
        except ConnectionLost:
            if attempt == len(delays):
                raise
            _log.warning("connection lost while publishing to %r; retrying", exchange)
            time.sleep(delays[attempt])  # waiting for the broker to reconnect
