"""AMQP helpers of nameko's public API (SPEC 1.8).

`get_connection` and `get_producer` yield a shimeji broker connection
(`nameko._broker.base.Broker`) from a process-wide pool, not kombu objects;
see `nameko._messaging.pool`. Re-exported from `nameko.amqp.publish`, as in
nameko, so importing this package loads that module too.
"""

from nameko.amqp.publish import UndeliverableMessage, get_connection, get_producer

__all__ = ["UndeliverableMessage", "get_connection", "get_producer"]
