"""Our AMQP 0-9-1 client, under the RabbitMQ broker (`nameko._broker.rabbit`).

* `connection`: the sans-IO state machine (bytes in, events out);
  `channel`: its per-channel state; `events`: what it emits;
  `codec`: frame encoding, hand-written for the per-message frames.
* `driver`: the socket, the I/O thread, heartbeats, TLS and reconnects.
* `consumer`: the `Consumer` handles; `uri`: AMQP URI parsing.
"""
