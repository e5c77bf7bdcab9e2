"""A sans-IO AMQP 0-9-1 client connection (in the style of h11).

How it works: `Connection` is a pure state machine. It never touches a
socket, a thread or a clock.

* Bytes in, events out: `receive_data(data, now)` parses every complete frame
  in ``data`` (keeping a partial frame for the next call), answers what the
  protocol answers by itself (Start-Ok, Tune-Ok, Close-Ok, Cancel-Ok...) and
  returns `events` for the rest: deliveries (content frames assembled),
  replies to our synchronous methods, publisher confirms, channel and
  connection closes.
* Commands in, bytes out: `open_channel`, `send_method`, `publish`, `ack`,
  `reject`, `close` append frames to an outgoing buffer; `data_to_send(now)`
  hands it over as one chunk, so a driver writes everything ready with one
  send.
* Time is an argument: ``now`` (any monotonic clock) stamps traffic both
  ways; `tick(now)` queues a heartbeat after ``heartbeat/2`` seconds without
  sending and reports `HeartbeatTimeout` after ``2 * heartbeat`` seconds
  without receiving; `next_tick(now)` tells a driver when to call it again.
* A delivery whose routing key or content header cannot be decoded (any
  publisher can send any bytes there) is still assembled frame by frame and
  comes out as an `Undecodable` event carrying its delivery tag, for the
  owner of the consumer to settle; only a broken frame stream (a bad frame
  end, content out of order) is a `ProtocolError`, which ends the connection.
* Callers attach an opaque ``token`` to synchronous methods and publishes;
  it comes back in the matching event (`MethodReply`, `PublishSettled`,
  `ChannelClosed`), which is how a threaded driver wakes the right waiter.
"""

from __future__ import annotations

import platform
import struct
from collections.abc import Callable
from typing import Any

from pamqp import commands, exceptions, frame

from nameko._amqp import codec
from nameko._amqp.channel import CLOSING, OPEN, ChannelState, triage_unconfirmed
from nameko._amqp.events import (
    ChannelClosed,
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionReady,
    ConnectionUnblocked,
    ConsumerCancelled,
    Delivered,
    Event,
    HeartbeatTimeout,
    MethodReply,
    PendingPublish,
    ProtocolError,
    PublishSettled,
    Returned,
    Undecodable,
)
from nameko._broker.base import Properties

__all__ = ["Connection", "LOGIN_METHODS", "PROTOCOL_HEADER", "client_properties"]

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
LOGIN_METHODS = ("PLAIN", "AMQPLAIN", "EXTERNAL")
AWAIT_START, AWAIT_TUNE, AWAIT_OPEN_OK, READY, CLOSING_CONN, CLOSED = range(6)
_U32 = struct.Struct(">I")
# what a frame too short for its fields makes the decoders raise
_MALFORMED = (struct.error, IndexError, ValueError, exceptions.PAMQPException)


def client_properties(connection_name: str | None = None, version: str = "") -> dict[str, Any]:
    """What we tell the server about ourselves (visible in rabbitmqctl)."""
    props: dict[str, Any] = {
        "product": "shimeji",
        "version": version,
        "platform": f"Python {platform.python_version()}",
        "information": "https://github.com/nameko/nameko compatible",
        "capabilities": {
            "publisher_confirms": True,
            "consumer_cancel_notify": True,
            "connection.blocked": True,
            "basic.nack": True,
            "authentication_failure_close": True,
            "per_consumer_qos": True,
        },
    }
    if connection_name:
        props["connection_name"] = connection_name
    return props


def _lower_nonzero(ours: int, theirs: int) -> int:
    return min(ours, theirs) if ours and theirs else ours or theirs


class Connection:
    """One client connection's protocol state (see the module docstring)."""

    def __init__(
        self,
        *,
        username: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        login_method: str = "PLAIN",
        heartbeat: int = 60,
        channel_max: int = 2047,
        frame_max: int = 131072,
        properties: dict[str, Any] | None = None,
    ) -> None:
        if login_method.upper() not in LOGIN_METHODS:
            raise ValueError(
                f"unsupported login method {login_method!r} (use one of {LOGIN_METHODS})"
            )
        self._credentials = (username, password)
        self._vhost = vhost
        self._login_method = login_method.upper()
        self._properties = properties if properties is not None else client_properties()
        self.heartbeat, self.channel_max, self.frame_max = heartbeat, channel_max, frame_max
        self.state = AWAIT_START
        self.channels: dict[int, ChannelState] = {}
        self.server_properties: dict[str, Any] = {}
        self.blocked = False
        self._out: list[bytes | memoryview] = [PROTOCOL_HEADER]  # body parts are views
        self._rbuf = b""
        self._events: list[Event] = []
        self._last_recv = self._last_sent = 0.0
        self._methods = self._method_table()

    def __repr__(self) -> str:  # the credentials stay out of reprs
        return f"<Connection vhost={self._vhost!r} state={self.state} channels={sorted(self.channels)}>"

    @property
    def is_ready(self) -> bool:
        return self.state == READY

    # -- bytes in ----------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes read from the socket; returns the events they complete."""
        self._last_recv = now
        buf = self._rbuf + data if self._rbuf else data
        if self.state == AWAIT_START and buf[:4] == b"AMQP":
            raise ProtocolError(
                f"the server refused our protocol version (it speaks {bytes(buf[:8])!r})"
            )
        events = self._events = []
        offset, size = 0, len(buf)
        unpack, method = codec.HEADER.unpack_from, codec.FRAME_METHOD
        while size - offset >= 8:
            kind, channel, length = unpack(buf, offset)
            end = offset + 7 + length
            if end >= size:
                break
            if buf[end] != codec.FRAME_END:
                raise ProtocolError(f"bad frame end 0x{buf[end]:02x} on channel {channel}")
            try:
                if kind == method:
                    self._on_method(channel, buf, offset + 7, end)
                else:
                    self._on_other_frame(kind, channel, buf, offset + 7, end)
            except _MALFORMED as exc:  # the stream can no longer be trusted
                raise ProtocolError(
                    f"malformed frame (type {kind}) on channel {channel}: {exc}"
                ) from exc
            offset = end + 1
        self._rbuf = buf[offset:] if offset < size else b""
        return events

    def _on_other_frame(self, kind: int, number: int, buf: bytes, start: int, end: int) -> None:
        if kind == codec.FRAME_HEARTBEAT:
            return
        channel = self.channels.get(number)
        if channel is None:
            return  # leftovers of a channel we already dropped
        if kind == codec.FRAME_BODY:
            event = channel.content_body(buf[start:end])
        elif kind == codec.FRAME_HEADER:
            (body_size,) = struct.unpack_from(">Q", buf, start + 4)
            try:  # the payload alone: a length in it cannot reach the next frame
                properties = codec.decode_properties(buf[start + 12 : end], 0)
            except codec.DecodeError as exc:
                event = channel.undecodable_header(body_size, str(exc))
            else:
                event = channel.content_header(body_size, properties)
        else:
            raise ProtocolError(f"unknown frame type {kind}")
        if event is not None:
            self._on_content(channel, event)

    def _on_content(self, channel: ChannelState, event: Delivered | Returned | Undecodable) -> None:
        if not isinstance(event, Returned):
            if channel.state != CLOSING:  # a closing channel's deliveries go back to the queue
                self._events.append(event)
        elif not (channel.confirming and channel.claim_return(event)):
            self._events.append(event)

    def _on_method(self, number: int, buf: bytes, start: int, end: int) -> None:
        class_id, method_id = codec.CLASS_METHOD.unpack_from(buf, start)
        channel = self.channels.get(number)
        if class_id == 60 and channel is not None:
            if method_id == 60:  # Basic.Deliver
                try:
                    channel.begin_content(Delivered, codec.decode_deliver(buf, start + 4))
                except codec.DecodeError as exc:
                    args = (*codec.decode_deliver_tags(buf, start + 4), "", "")
                    channel.begin_content(Delivered, args, undecodable=str(exc))
                return
            if method_id == 80 or method_id == 120:  # Basic.Ack / Basic.Nack (confirms)
                tag, bits = codec.decode_tag_bits(buf, start + 4)
                entries = channel.settle(tag, bool(bits & 1))
                if entries:
                    self._events.append(PublishSettled(number, method_id == 80, entries))
                return
        method = frame.unmarshal(bytes(buf[start - 7 : end + 1]))[2]
        handler = self._methods.get(type(method))
        if number == 0:
            if handler is None:
                raise ProtocolError(f"unexpected {method.name} on channel 0")
            handler(method)
        elif channel is not None:
            (handler or self._on_reply)(channel, method)

    # -- connection class --------------------------------------------------

    def _method_table(self) -> dict[type, Callable[..., None]]:
        c, ch, b = commands.Connection, commands.Channel, commands.Basic
        return {
            c.Start: self._on_start,
            c.Secure: self._on_secure,
            c.Tune: self._on_tune,
            c.OpenOk: self._on_open_ok,
            c.Close: self._on_close,
            c.CloseOk: self._on_close_ok,
            c.Blocked: self._on_blocked,
            c.Unblocked: self._on_unblocked,
            c.UpdateSecretOk: lambda method: None,
            ch.OpenOk: self._on_channel_open_ok,
            ch.Close: self._on_channel_close,
            ch.CloseOk: self._on_channel_close_ok,
            ch.Flow: self._on_flow,
            b.Return: self._on_return,
            b.Cancel: self._on_server_cancel,
        }

    def _expect(self, state: int, method: Any) -> None:
        if self.state != state:
            raise ProtocolError(f"unexpected {method.name} during the handshake")

    def _on_start(self, method: commands.Connection.Start) -> None:
        self._expect(AWAIT_START, method)
        offered = str(method.mechanisms).split()
        if self._login_method not in offered:
            raise ProtocolError(
                f"the server does not offer login method {self._login_method} (only {offered})"
            )
        self.server_properties = dict(method.server_properties or {})
        self._out.append(self._start_ok())
        self.state = AWAIT_TUNE

    def _start_ok(self) -> bytes:
        """Connection.Start-Ok, encoded here: pamqp wants the SASL response
        as text, and an AMQPLAIN response is binary."""
        response = self._login_response()
        payload = b"".join(
            (
                codec.CLASS_METHOD.pack(10, 11),
                codec.encode_table(self._properties),
                codec.encode_shortstr(self._login_method),
                _U32.pack(len(response)) + response,
                b"\x05en_US",
            )
        )
        return (
            codec.HEADER.pack(codec.FRAME_METHOD, 0, len(payload)) + payload + codec.FRAME_END_BYTE
        )

    def _login_response(self) -> bytes:
        username, password = self._credentials
        if self._login_method == "PLAIN":
            return b"\0" + username.encode() + b"\0" + password.encode()
        if self._login_method == "AMQPLAIN":  # a field table without its length prefix
            return codec.encode_table({"LOGIN": username, "PASSWORD": password})[4:]
        return b""  # EXTERNAL: the identity comes from the TLS client certificate

    def _on_secure(self, method: Any) -> None:
        raise ProtocolError(
            "the server asked for a SASL challenge-response, which is not supported"
        )

    def _on_tune(self, method: commands.Connection.Tune) -> None:
        self._expect(AWAIT_TUNE, method)
        self.channel_max = _lower_nonzero(self.channel_max, method.channel_max) or 65535
        self.frame_max = _lower_nonzero(self.frame_max, method.frame_max)
        # our 0 means "no heartbeats"; otherwise the lower non-zero value wins
        self.heartbeat = self.heartbeat and _lower_nonzero(self.heartbeat, method.heartbeat)
        tune_ok = commands.Connection.TuneOk(self.channel_max, self.frame_max, self.heartbeat)
        self._send_method(0, tune_ok)
        self._send_method(0, commands.Connection.Open(virtual_host=self._vhost))
        self.state = AWAIT_OPEN_OK

    def _on_open_ok(self, method: Any) -> None:
        self._expect(AWAIT_OPEN_OK, method)
        self.state = READY
        ready = ConnectionReady(
            self.channel_max, self.frame_max, self.heartbeat, self.server_properties
        )
        self._events.append(ready)

    def _on_close(self, method: commands.Connection.Close) -> None:
        self._send_method(0, commands.Connection.CloseOk())
        self.state = CLOSED
        code, text, class_id, method_id = _close_reason(method)
        self._events.append(ConnectionClosed(code, text, True, class_id, method_id))

    def _on_close_ok(self, method: Any) -> None:
        self.state = CLOSED
        self._events.append(ConnectionClosed(200, "closed by client", False))

    def _on_blocked(self, method: commands.Connection.Blocked) -> None:
        self.blocked = True
        self._events.append(ConnectionBlocked(method.reason or ""))

    def _on_unblocked(self, method: Any) -> None:
        self.blocked = False
        self._events.append(ConnectionUnblocked())

    # -- channel and basic classes -----------------------------------------

    def _on_reply(self, channel: ChannelState, method: Any) -> None:
        self._events.append(MethodReply(channel.number, method, channel.reply_token()))

    def _on_channel_open_ok(self, channel: ChannelState, method: Any) -> None:
        channel.state = OPEN
        self._on_reply(channel, method)

    def _on_channel_close(self, channel: ChannelState, method: commands.Channel.Close) -> None:
        number, text = channel.number, method.reply_text or ""
        self._send_method(number, commands.Channel.CloseOk())
        del self.channels[number]
        waiting, unconfirmed = channel.drain()
        resent: list[PendingPublish] = []
        if unconfirmed:
            unconfirmed, resent = self._resend(number, unconfirmed, text)
        code, _, class_id, method_id = _close_reason(method)
        closed = ChannelClosed(number, code, text, class_id, method_id, waiting)
        closed.unconfirmed, closed.resent = unconfirmed, resent
        self._events.append(closed)

    def _resend(
        self, number: int, entries: list[PendingPublish], reply_text: str
    ) -> tuple[list[PendingPublish], list[PendingPublish]]:
        """Reopen a confirm channel the server closed and publish again what
        it discarded unseen, right here: no publish queued meanwhile by
        another caller can overtake them. Returns (not resent, resent)."""
        unknown, failed, resend = triage_unconfirmed(entries, reply_text)
        if not resend:
            return entries, []
        self.open_channel(number)
        self.send_method(number, commands.Confirm.Select())
        channel = self.channels[number]
        for e in resend:
            props = codec.encode_properties(e.properties)
            self._out += codec.encode_publish(
                number, e.exchange, e.routing_key, e.mandatory, props, e.body, self.frame_max
            )
            channel.track(e)
        return unknown + failed, resend

    def _on_channel_close_ok(self, channel: ChannelState, method: Any) -> None:
        del self.channels[channel.number]
        self._on_reply(channel, method)

    def _on_flow(self, channel: ChannelState, method: commands.Channel.Flow) -> None:
        self._send_method(channel.number, commands.Channel.FlowOk(active=method.active))

    def _on_return(self, channel: ChannelState, method: commands.Basic.Return) -> None:
        args = (
            method.reply_code,
            method.reply_text or "",
            method.exchange or "",
            method.routing_key or "",
        )
        channel.begin_content(Returned, args)

    def _on_server_cancel(self, channel: ChannelState, method: commands.Basic.Cancel) -> None:
        if not method.nowait:
            self._send_method(
                channel.number, commands.Basic.CancelOk(consumer_tag=method.consumer_tag)
            )
        self._events.append(ConsumerCancelled(channel.number, method.consumer_tag or ""))

    # -- commands in -------------------------------------------------------

    def _send_method(self, number: int, method: Any) -> None:
        self._out.append(codec.encode_method(number, method))

    def _channel(self, number: int) -> ChannelState:
        if self.state != READY:
            raise ProtocolError("the connection is not open")
        try:
            return self.channels[number]
        except KeyError:
            raise ProtocolError(f"channel {number} is not open") from None

    def has_channel(self, number: int) -> bool:
        """True while the channel is opening or open (not closing, not closed)."""
        channel = self.channels.get(number)
        return channel is not None and channel.state != CLOSING

    def open_channel(self, number: int, token: Any = None) -> None:
        if self.state != READY:
            raise ProtocolError("the connection is not open")
        if not 0 < number <= self.channel_max or number in self.channels:
            raise ValueError(f"channel {number} is in use or out of range (max {self.channel_max})")
        channel = self.channels[number] = ChannelState(number)
        channel.expect_reply(token)
        self._send_method(number, commands.Channel.Open())

    def close_channel(self, number: int, token: Any = None) -> None:
        channel = self._channel(number)
        channel.state = CLOSING
        channel.expect_reply(token)
        self._send_method(
            number,
            commands.Channel.Close(
                reply_code=200, reply_text="Normal shutdown", class_id=0, method_id=0
            ),
        )

    def send_method(self, number: int, method: Any, token: Any = None) -> None:
        """Send a method; if it has a reply, ``token`` comes back with it."""
        channel = self._channel(number)
        if method.synchronous and not getattr(method, "nowait", False):
            channel.expect_reply(token)
        if type(method) is commands.Confirm.Select:
            channel.confirming = True  # publishes are numbered from here on
        self._send_method(number, method)

    def publish(
        self,
        number: int,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
        token: Any = None,
        encoded_properties: bytes | None = None,
    ) -> int:
        """Publish; on a confirm channel returns the sequence number (else 0)."""
        channel = self._channel(number)
        props = (
            encoded_properties
            if encoded_properties is not None
            else codec.encode_properties(properties)
        )
        self._out += codec.encode_publish(
            number, exchange, routing_key, mandatory, props, body, self.frame_max
        )
        if not channel.confirming:
            return 0
        return channel.track(
            PendingPublish(token, exchange, routing_key, body, properties, mandatory)
        )

    def ack(self, number: int, delivery_tag: int, multiple: bool = False) -> None:
        self._channel(number)
        self._out.append(codec.encode_ack(number, delivery_tag, multiple))

    def reject(self, number: int, delivery_tag: int, requeue: bool = False) -> None:
        self._channel(number)
        self._out.append(codec.encode_reject(number, delivery_tag, requeue))

    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None:
        """Start closing; a `ConnectionClosed` event follows the server's Close-Ok."""
        if self.state in (CLOSING_CONN, CLOSED):
            return
        self._send_method(
            0,
            commands.Connection.Close(
                reply_code=reply_code, reply_text=reply_text, class_id=0, method_id=0
            ),
        )
        self.state = CLOSING_CONN

    def abandon(self) -> tuple[list[Any], list[PendingPublish]]:
        """The transport is gone: drop every channel and return what was
        still waiting (tokens of synchronous methods, unconfirmed publishes)."""
        self.state = CLOSED
        waiting: list[Any] = []
        unconfirmed: list[PendingPublish] = []
        for channel in self.channels.values():
            tokens, entries = channel.drain()
            waiting += tokens
            unconfirmed += entries
        self.channels.clear()
        return waiting, unconfirmed

    # -- bytes out and time ------------------------------------------------

    def data_to_send(self, now: float) -> bytes:
        """Everything queued since the last call, as one chunk."""
        if not self._out:
            return b""
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out = []
        self._last_sent = now
        return bytes(data)

    def start_clock(self, now: float) -> None:
        """Start heartbeat accounting (the driver calls it once connected)."""
        self._last_recv = self._last_sent = now

    def tick(self, now: float) -> HeartbeatTimeout | None:
        """Queue a heartbeat if we have been quiet for heartbeat/2 seconds;
        report a dead peer after 2 * heartbeat seconds of silence."""
        if not self.heartbeat or self.state < AWAIT_OPEN_OK or self.state == CLOSED:
            return None
        silent = now - self._last_recv
        if silent >= 2 * self.heartbeat:
            return HeartbeatTimeout(silent)
        if now - self._last_sent >= self.heartbeat / 2:
            self._out.append(codec.HEARTBEAT)
            self._last_sent = now
        return None

    def next_tick(self, now: float) -> float | None:
        """Seconds until `tick` has something to do (None: never)."""
        if not self.heartbeat or self.state < AWAIT_OPEN_OK or self.state == CLOSED:
            return None
        due = min(self._last_sent + self.heartbeat / 2, self._last_recv + 2 * self.heartbeat)
        return max(0.0, due - now)


def _close_reason(
    method: commands.Connection.Close | commands.Channel.Close,
) -> tuple[int, str, int, int]:
    """Code, text, class id and method id of a close from the broker. pamqp
    types them as optional (its constructors default them to None); a decoded
    frame has them all."""
    return (
        method.reply_code or 0,
        method.reply_text or "",
        method.class_id or 0,
        method.method_id or 0,
    )
