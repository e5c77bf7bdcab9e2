"""``nameko.rpc.Responder``: publish one RPC reply for a request message (SPEC 1.5, 3.3).

Extensions that answer RPC requests themselves (retrying, routing, their
own entrypoints) build a ``Responder(amqp_uri, exchange, serializer,
message)`` and call ``send_response(result, exc_info)``. The reply goes out
in nameko's wire format: body ``{"result": ..., "error": ...}`` to
``exchange`` with the request's ``reply_to`` as routing key and its
``correlation_id``, persistent, confirmed, not mandatory. A result that
can't be serialised is replaced by an ``UnserializableValueError`` reply,
and that error is what `send_response` returns (nameko's behaviour).

The publish goes through ``publisher_cls`` (our
``nameko.amqp.publish.Publisher``), i.e. a pooled connection, as nameko's
did. Our own ``@rpc`` entrypoint does not use this class: it replies on the
container's connection and acks each request on its reply's confirm.

Older nameko 2.x extensions wrote ``Responder(config, exchange, message)``;
that form is accepted too (broker URL, SSL, login method and serializer are
then read from the config).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko._messaging.connection import amqp_uri as config_amqp_uri
from nameko._messaging.core_publisher import Publisher
from nameko._protocol.envelopes import encode_reply_body
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)

__all__ = ["Responder"]

_MISSING = object()


class Responder:
    """Sends the reply to one request message."""

    publisher_cls = Publisher

    def __init__(
        self,
        amqp_uri: Any,
        exchange: Any,
        serializer: Any = _MISSING,
        message: Any = _MISSING,
        ssl: Any = None,
        login_method: str | None = None,
    ) -> None:
        if isinstance(amqp_uri, Mapping):  # Responder(config, exchange, message)
            config = amqp_uri
            if message is _MISSING:
                message, serializer = serializer, _MISSING
            amqp_uri = config_amqp_uri(config)
            ssl = ssl if ssl is not None else config.get(AMQP_SSL_CONFIG_KEY)
            login_method = login_method or config.get(LOGIN_METHOD_CONFIG_KEY)
            if serializer is _MISSING:
                serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
        if message is _MISSING:
            raise TypeError("Responder needs the request message")
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.serializer = DEFAULT_SERIALIZER if serializer is _MISSING else serializer
        self.message = message
        self.ssl = ssl
        self.login_method = login_method

    def send_response(self, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Publish the reply (waiting for its confirm); returns ``(result,
        exc_info)`` as sent, an unserialisable result replaced by its error."""
        exc = exc_info[1] if exc_info is not None else None
        reply = encode_reply_body(result, exc, self.serializer)
        if reply.error is not None and reply.error is not exc:  # the result was unserialisable
            exc_info = (type(reply.error), reply.error, reply.error.__traceback__)
        properties = self.message.properties
        publisher = self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method)
        publisher.publish(
            reply.body,
            content_type=reply.content_type,
            content_encoding=reply.content_encoding,
            exchange=self.exchange,
            routing_key=properties["reply_to"],
            correlation_id=properties.get("correlation_id"),
            mandatory=False,
        )
        return reply.result, exc_info
