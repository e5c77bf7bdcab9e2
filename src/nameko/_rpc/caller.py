"""Sending RPC requests: the mechanics shared by `RpcProxy` and standalone clients."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from nameko._broker.base import Broker, Properties, Unroutable
from nameko._messaging.publish import publish
from nameko._protocol import codecs
from nameko._protocol.envelopes import encode_request
from nameko._protocol.headers import encode_context_headers
from nameko._protocol.names import rpc_routing_key
from nameko._rpc.replies import PendingReply, ReplyQueue
from nameko.constants import PERSISTENT
from nameko.exceptions import UnknownService

__all__ = ["RpcCaller"]


class RpcCaller:
    """Publishes requests whose replies come back to ``replies``.

    ``options`` are nameko's publisher options; those that mean something
    here: ``use_confirms`` (default True: without confirms an unknown service
    can't be detected), ``serializer``, ``delivery_mode``, ``priority``,
    ``expiration``, ``timeout`` (seconds to wait for a reply; None: forever).
    """

    def __init__(
        self, broker: Broker, replies: ReplyQueue, serializer: str, **options: Any
    ) -> None:
        self.broker = broker
        self.replies = replies
        self.exchange = replies.exchange
        self.serializer = options.get("serializer") or serializer
        self.use_confirms = options.get("use_confirms", True) is not False
        self.timeout = options.get("timeout")
        self._delivery_mode = options.get("delivery_mode", PERSISTENT)
        self._priority = options.get("priority", 0)
        self._expiration = options.get("expiration")

    def call_async(
        self,
        service: str,
        method: str,
        args: Any,
        kwargs: Any,
        context_data: Mapping[str, Any],
        timeout: float | None = None,
    ) -> PendingReply:
        """Publish a request; raise `UnknownService` if nobody consumes it."""
        correlation_id = str(uuid.uuid4())
        body, content_type, encoding = codecs.encode(encode_request(args, kwargs), self.serializer)
        properties = Properties(
            content_type=content_type,
            content_encoding=encoding,
            headers=encode_context_headers(context_data),
            delivery_mode=self._delivery_mode,
            priority=self._priority,
            correlation_id=correlation_id,
            reply_to=self.replies.routing_key,
            expiration=self._expiration,
        )
        wait = self.timeout if timeout is None else timeout
        pending = self.replies.router.register(correlation_id, wait)
        try:
            publish(
                self.broker,
                self.exchange,
                rpc_routing_key(service, method),
                body,
                properties,
                mandatory=True,
                confirm=self.use_confirms,
            )
        except Unroutable:
            self.replies.router.discard(correlation_id)
            raise UnknownService(service) from None
        except BaseException:
            self.replies.router.discard(correlation_id)
            raise
        return pending
