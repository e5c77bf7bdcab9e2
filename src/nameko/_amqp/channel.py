"""Per-channel protocol state: reply bookkeeping, publisher confirms, content assembly.

Pure data structures driven by `nameko._amqp.connection.Connection`.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from nameko._amqp.events import Delivered, PendingPublish, ProtocolError, Returned, Undecodable
from nameko._broker.base import Properties

__all__ = ["CLOSING", "OPEN", "OPENING", "ChannelState", "too_large_limit", "triage_unconfirmed"]

OPENING, OPEN, CLOSING = "opening", "open", "closing"
Content = Delivered | Returned | Undecodable
_MISSING_EXCHANGE = re.compile(r"exchange '(.*)' in vhost")
# RabbitMQ's words for a body over its max_message_size (406 PRECONDITION_FAILED)
_TOO_LARGE = re.compile(r"message size (\d+) is larger than configured max size (\d+)")


class ChannelState:
    """One channel. Synchronous replies arrive in the order of the requests
    (AMQP guarantees it per channel), so a FIFO of tokens pairs them up."""

    __slots__ = (
        "number",
        "state",
        "waiting",
        "confirming",
        "next_seq",
        "unconfirmed",
        "_content",
        "_properties",
        "_size",
        "_parts",
        "_received",
        "_undecodable",
    )

    def __init__(self, number: int) -> None:
        self.number = number
        self.state = OPENING
        self.waiting: deque[Any] = deque()
        self.confirming = False
        self.next_seq = 1
        self.unconfirmed: OrderedDict[int, PendingPublish] = OrderedDict()
        self._content: tuple[type[Delivered | Returned], tuple[Any, ...]] | None = None
        self._properties: Properties | None = None
        self._size = 0
        self._parts: list[bytes] = []
        self._received = 0
        self._undecodable: str | None = None  # why the content in progress cannot be decoded

    # -- synchronous methods -------------------------------------------------

    def expect_reply(self, token: Any) -> None:
        self.waiting.append(token)

    def reply_token(self) -> Any:
        return self.waiting.popleft() if self.waiting else None

    # -- publisher confirms --------------------------------------------------

    def track(self, entry: PendingPublish) -> int:
        """Number a publish (confirm mode only) and remember it until settled."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self.unconfirmed[seq] = entry
        return seq

    def settle(self, delivery_tag: int, multiple: bool) -> list[PendingPublish]:
        """The publishes an ack/nack covers: ``delivery_tag`` alone, or every
        unconfirmed one up to it with ``multiple``."""
        pending = self.unconfirmed
        if not multiple:
            entry = pending.pop(delivery_tag, None)
            return [entry] if entry is not None else []
        done = []
        while pending and next(iter(pending)) <= delivery_tag:
            done.append(pending.popitem(last=False)[1])
        return done

    def claim_return(self, returned: Returned) -> bool:
        """Attach a basic.return to the publish it belongs to.

        RabbitMQ sends the return before the ack of the same message, but a
        return carries no sequence number. Identical messages are
        interchangeable, so the earliest unreturned mandatory publish with
        the same exchange, routing key, body and properties takes it; if
        properties did not survive the round trip byte-exactly (e.g. a tuple
        header comes back as a list), the earliest one with the same
        exchange, routing key and body does.
        """
        fallback = None
        for entry in self.unconfirmed.values():
            if (
                entry.mandatory
                and entry.returned is None
                and entry.exchange == returned.exchange
                and entry.routing_key == returned.routing_key
                and entry.body == returned.body
            ):
                if entry.properties == returned.properties:
                    entry.returned = returned
                    return True
                fallback = fallback or entry
        if fallback is not None:
            fallback.returned = returned
            return True
        return False

    def drain(self) -> tuple[list[Any], list[PendingPublish]]:
        """Everything still waiting (the channel is gone)."""
        waiting, unconfirmed = list(self.waiting), list(self.unconfirmed.values())
        self.waiting.clear()
        self.unconfirmed.clear()
        return waiting, unconfirmed

    # -- content (Basic.Deliver / Basic.Return + header + body frames) -------

    def begin_content(
        self,
        kind: type[Delivered | Returned],
        args: tuple[Any, ...],
        undecodable: str | None = None,
    ) -> None:
        """A content method arrived; its header and body frames follow. With
        ``undecodable`` (the reason) a delivery is assembled all the same, to
        keep the frame sequence, and comes out as an `Undecodable` event."""
        if self._content is not None:
            raise ProtocolError(f"channel {self.number}: new content before the last one ended")
        self._content = (kind, args)
        self._properties = None
        self._undecodable = undecodable

    def content_header(self, body_size: int, properties: Properties) -> Content | None:
        if self._content is None or self._properties is not None:
            raise ProtocolError(f"channel {self.number}: unexpected content header")
        self._properties = properties
        self._size = body_size
        return self._finish(b"") if body_size == 0 else None

    def undecodable_header(self, body_size: int, reason: str) -> Content | None:
        """The content header's properties could not be decoded: a delivery
        becomes `Undecodable`; a returned message (one of our own publishes)
        keeps its place with empty properties."""
        if self._content is not None and self._content[0] is Delivered:
            self._undecodable = self._undecodable or reason
        return self.content_header(body_size, Properties())

    def content_body(self, chunk: bytes) -> Content | None:
        if self._properties is None:
            raise ProtocolError(f"channel {self.number}: unexpected content body")
        received = self._received + len(chunk)
        if received == self._size and not self._parts:
            return self._finish(chunk)  # the common case: a single body frame
        self._parts.append(chunk)
        self._received = received
        if received < self._size:
            return None
        if received > self._size:
            raise ProtocolError(f"channel {self.number}: body longer than announced")
        body = b"".join(self._parts)
        self._parts = []
        return self._finish(body)

    def _finish(self, body: bytes) -> Content:
        if self._content is None or self._properties is None:  # the callers checked
            raise ProtocolError(f"channel {self.number}: content body before its header")
        (kind, args), properties = self._content, self._properties
        self._content = self._properties = None
        self._received = 0
        if self._undecodable is not None:
            reason, self._undecodable = self._undecodable, None
            return Undecodable(self.number, *args, reason, len(body))  # type: ignore[call-arg]
        # mypy cannot match a tuple of unknown length followed by more positionals
        return kind(self.number, *args, properties, body)  # type: ignore[call-arg]


def too_large_limit(reply_text: str) -> int | None:
    """The broker's size limit, if ``reply_text`` says a body was over it."""
    match = _TOO_LARGE.search(reply_text)
    return int(match.group(2)) if match else None


def triage_unconfirmed(
    entries: list[PendingPublish], reply_text: str
) -> tuple[list[PendingPublish], list[PendingPublish], list[PendingPublish]]:
    """Sort the publishes in flight on a channel the broker closed because of
    one of them: ``(unknown, failed, resend)``.

    The broker handles a channel's frames in order and ignores everything
    after the failing one. So the publishes before the culprit were routed
    but their confirms are lost (outcome unknown); the culprit and later ones
    that would fail alike fail; the other later ones were never looked at and
    can be sent again. The culprit is the first publish to the missing (or
    forbidden) exchange the reply text names, or the first body over the
    size limit it names; when there is none, all of them fail.
    """
    match = _MISSING_EXCHANGE.search(reply_text)
    limit = too_large_limit(reply_text)
    fails: Callable[[PendingPublish], bool]
    if match is not None:
        name = match.group(1)
        fails = lambda e: e.exchange == name  # noqa: E731
    elif limit is not None:
        fails = lambda e: len(e.body) > limit  # noqa: E731
    else:
        return [], list(entries), []
    culprit = next((i for i, e in enumerate(entries) if fails(e)), None)
    if culprit is None:
        return [], list(entries), []
    later = entries[culprit:]
    return entries[:culprit], [e for e in later if fails(e)], [e for e in later if not fails(e)]
