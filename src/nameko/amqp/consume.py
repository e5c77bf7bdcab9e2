"""nameko 3's blocking consumer, ``nameko.amqp.consume.Consumer`` (SPEC 12.3).

The public path only; the implementation, and what it does differently
from nameko 3, is in `nameko._messaging.amqp_consumer`.
"""

from __future__ import annotations

from nameko._messaging.amqp_consumer import Consumer
from nameko.utils import sanitize_url  # noqa: F401 - nameko 3 code imports it from here

__all__ = ["Consumer"]
