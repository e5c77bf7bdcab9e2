"""RPC over AMQP in nameko's wire format: server, callers, reply routing."""
