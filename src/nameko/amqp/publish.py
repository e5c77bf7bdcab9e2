"""Publishing messages the way nameko's ``nameko.amqp.publish`` does (SPEC 1.8).

The public path only; the implementation lives in:

* `nameko._messaging.core_publisher`: `Publisher` and `UndeliverableMessage`,
  with nameko's defaults and per-call semantics, and our deliberate
  differences from nameko 2.14;
* `nameko._messaging.pool`: `get_connection` and `get_producer`, which yield
  a shimeji broker connection (`nameko._broker.base.Broker`) from a
  process-wide pool, not kombu ``Connection``/``Producer`` objects;
* `nameko._messaging.entities`: how kombu ``Exchange``/``Queue`` objects (read
  by duck typing, kombu is not a dependency), our own entities or names are
  turned into broker entities and declared once per connection.
"""

from __future__ import annotations

from nameko._messaging.core_publisher import Publisher, UndeliverableMessage
from nameko._messaging.pool import get_connection, get_producer
from nameko._reexports import reexported

__all__ = ["Publisher", "UndeliverableMessage", "get_connection", "get_producer"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
