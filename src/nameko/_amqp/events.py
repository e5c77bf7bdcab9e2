"""Events the AMQP state machine emits, and its errors.

``token`` fields carry back whatever opaque object the caller attached to
the command that caused the reply (the broker passes its waiters), so the
state machine can stay ignorant of threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nameko._broker.base import Properties

__all__ = [
    "ChannelClosed",
    "ConnectionBlocked",
    "ConnectionClosed",
    "ConnectionReady",
    "ConnectionUnblocked",
    "ConsumerCancelled",
    "Delivered",
    "Event",
    "HeartbeatTimeout",
    "MethodReply",
    "PendingPublish",
    "ProtocolError",
    "PublishSettled",
    "Returned",
    "Undecodable",
]


class ProtocolError(Exception):
    """The peer broke the protocol (or the handshake failed)."""


class Event:
    __slots__ = ()


@dataclass(slots=True)
class ConnectionReady(Event):
    """The handshake finished (Connection.OpenOk received)."""

    channel_max: int
    frame_max: int
    heartbeat: int
    server_properties: dict[str, Any]


@dataclass(slots=True)
class ConnectionClosed(Event):
    """The connection is closed: by the server (we already answered
    Close-Ok) or by us (the server answered our Close)."""

    reply_code: int
    reply_text: str
    by_server: bool
    class_id: int = 0
    method_id: int = 0


@dataclass(slots=True)
class ConnectionBlocked(Event):
    reason: str


@dataclass(slots=True)
class ConnectionUnblocked(Event):
    pass


@dataclass(slots=True)
class HeartbeatTimeout(Event):
    """Nothing was received for two heartbeat intervals."""

    silent_for: float


@dataclass(slots=True)
class MethodReply(Event):
    """The reply to a synchronous method we sent (DeclareOk, ConsumeOk...)."""

    channel: int
    method: Any  # a pamqp command
    token: Any


@dataclass(slots=True)
class PendingPublish:
    """One publish on a confirm-mode channel, waiting for its ack or nack."""

    token: Any
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    mandatory: bool
    returned: Returned | None = None


@dataclass(slots=True)
class PublishSettled(Event):
    """The server acked (``ack``) or nacked publishes. An entry whose
    ``returned`` is set was routed nowhere (mandatory) before being acked."""

    channel: int
    ack: bool
    entries: list[PendingPublish]


@dataclass(slots=True)
class ChannelClosed(Event):
    """The server closed a channel (we already answered Close-Ok).

    ``waiting``: tokens of the synchronous methods left without a reply, the
    one that failed first. ``unconfirmed``: publishes in flight, in order,
    that failed or whose outcome is unknown. ``resent``: publishes the server
    never looked at, already published again on the reopened channel (see
    `nameko._amqp.channel.triage_unconfirmed`).
    """

    channel: int
    reply_code: int
    reply_text: str
    class_id: int
    method_id: int
    waiting: list[Any] = field(default_factory=list)
    unconfirmed: list[PendingPublish] = field(default_factory=list)
    resent: list[PendingPublish] = field(default_factory=list)


@dataclass(slots=True)
class ConsumerCancelled(Event):
    """The server cancelled a consumer (e.g. its queue was deleted)."""

    channel: int
    consumer_tag: str


@dataclass(slots=True)
class Delivered(Event):
    channel: int
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes


@dataclass(slots=True)
class Returned(Event):
    """A message the server could not route, when no publish on a confirm
    channel claimed it (those arrive inside `PublishSettled`)."""

    channel: int
    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes


@dataclass(slots=True)
class Undecodable(Event):
    """A delivery whose method or content header could not be decoded (see
    `nameko._amqp.codec.DecodeError`). Its frames were consumed in full; the
    broker still holds it under ``delivery_tag`` until it is settled.
    ``exchange`` and ``routing_key`` are empty when they were the problem."""

    channel: int
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    reason: str
    body_size: int
