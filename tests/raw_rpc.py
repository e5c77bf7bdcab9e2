"""Hand-made RPC requests, for feeding services input no client would send."""

from __future__ import annotations

import json
import threading
import uuid

from nameko._broker import connect
from nameko._broker.base import Binding, Properties, Queue


def raw_rpc_request(
    uri: str,
    routing_key: str,
    body: bytes,
    *,
    reply_to: bool = True,
    content_type: str = "application/json",
    timeout: float = 10,
    headers: dict | None = None,
) -> dict | None:
    """Publish ``body`` as a request to ``routing_key``; return the decoded
    reply. Without ``reply_to`` nothing can answer: return None at once (the
    caller proves the service survived with a normal call afterwards)."""
    broker = connect(uri)
    got, replies = threading.Event(), []
    queue = f"raw-replies-{uuid.uuid4()}"

    def on_reply(delivery):
        replies.append(json.loads(delivery.body))
        got.set()

    try:
        broker.consume(
            queue,
            on_reply,
            no_ack=True,
            topology=[Queue(queue, exclusive=True), Binding(queue, "nameko-rpc", queue)],
        )
        props = Properties(
            content_type=content_type,
            content_encoding="utf-8",
            correlation_id="raw",
            headers=headers or {},
            reply_to=queue if reply_to else None,
            delivery_mode=2,
        )
        broker.publish("nameko-rpc", routing_key, body, props)
        if not reply_to:
            return None
        assert got.wait(timeout), f"no reply to the raw request within {timeout}s"
        return replies[0]
    finally:
        broker.close()
