"""The sans-IO AMQP connection: handshake, tuning, connection close, heartbeats.

A fake server speaks through pamqp (an independent codec): it encodes what
the broker would send and decodes what our state machine wrote. The helpers
here are shared with ``test_amqp_channel.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands, frame, header
from pamqp.body import ContentBody
from pamqp.heartbeat import Heartbeat

from nameko._amqp import codec
from nameko._amqp.connection import PROTOCOL_HEADER, Connection
from nameko._amqp.events import (
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionReady,
    ConnectionUnblocked,
    HeartbeatTimeout,
    MethodReply,
    ProtocolError,
)

START = commands.Connection.Start(
    server_properties={"product": "RabbitMQ", "capabilities": {"publisher_confirms": True}},
    mechanisms="PLAIN AMQPLAIN EXTERNAL",
    locales="en_US",
)


def encode(*items: tuple[int, Any]) -> bytes:
    """Frames as the server would send them: (channel, pamqp frame object)."""
    return b"".join(frame.marshal(obj, channel) for channel, obj in items)


def decode(data: bytes) -> list[tuple[int, Any]]:
    """Every frame in ``data`` (which must hold whole frames only)."""
    frames = []
    while data:
        used, channel, obj = frame.unmarshal(data)
        frames.append((channel, obj))
        data = data[used:]
    return frames


def sent(conn: Connection, now: float = 0.0) -> list[tuple[int, Any]]:
    return decode(conn.data_to_send(now))


def content(
    channel: int, method: Any, body: bytes, frame_max: int = 131072, **properties: Any
) -> bytes:
    """A method with content (Deliver, Return) as the server frames it."""
    props = commands.Basic.Properties(**properties)
    items = [(channel, method), (channel, header.ContentHeader(0, len(body), props))]
    limit = frame_max - 8
    items += [(channel, ContentBody(body[i : i + limit])) for i in range(0, len(body), limit)]
    return encode(*items)


def open_connection(
    now: float = 0.0, *, server_tune: tuple[int, int, int] = (2047, 131072, 60), **options: Any
) -> Connection:
    """A connection taken through the whole handshake, its output drained."""
    conn = Connection(**options)
    conn.data_to_send(now)
    conn.receive_data(encode((0, START)), now)
    conn.receive_data(encode((0, commands.Connection.Tune(*server_tune))), now)
    events = conn.receive_data(encode((0, commands.Connection.OpenOk())), now)
    assert [type(e) for e in events] == [ConnectionReady]
    conn.data_to_send(now)
    return conn


def open_channel(conn: Connection, number: int = 1, *, confirm: bool = False) -> None:
    conn.open_channel(number)
    if confirm:
        conn.send_method(number, commands.Confirm.Select())
    conn.data_to_send(0.0)
    replies = [(number, commands.Channel.OpenOk())]
    if confirm:
        replies.append((number, commands.Confirm.SelectOk()))
    events = conn.receive_data(encode(*replies), 0.0)
    assert all(type(e) is MethodReply for e in events)


# -- handshake ---------------------------------------------------------------


def test_the_protocol_header_goes_first() -> None:
    assert Connection().data_to_send(0.0) == PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"


def test_handshake_with_plain_login() -> None:
    conn = Connection(
        username="bob", password="s3cret", vhost="my/vhost", properties={"product": "x"}
    )
    conn.data_to_send(0.0)
    assert conn.receive_data(encode((0, START)), 0.0) == []
    [(channel, start_ok)] = sent(conn)
    assert channel == 0 and isinstance(start_ok, commands.Connection.StartOk)
    assert start_ok.mechanism == "PLAIN"
    assert start_ok.response == "\0bob\0s3cret"
    assert start_ok.client_properties == {"product": "x"}
    assert start_ok.locale == "en_US"

    assert conn.receive_data(encode((0, commands.Connection.Tune(2047, 131072, 60))), 0.0) == []
    tune_ok, open_ = (obj for _, obj in sent(conn))
    assert (tune_ok.channel_max, tune_ok.frame_max, tune_ok.heartbeat) == (2047, 131072, 60)
    assert open_.virtual_host == "my/vhost"

    events = conn.receive_data(encode((0, commands.Connection.OpenOk())), 0.0)
    assert events == [ConnectionReady(2047, 131072, 60, START.server_properties)]
    assert conn.is_ready


def test_the_handshake_survives_one_byte_at_a_time() -> None:
    conn = Connection()
    data = encode(
        (0, START), (0, commands.Connection.Tune(0, 0, 0)), (0, commands.Connection.OpenOk())
    )
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1], 0.0)
    assert [type(e) for e in events] == [ConnectionReady]


def test_default_client_properties_announce_shimeji_and_its_capabilities() -> None:
    from nameko._amqp.connection import client_properties

    conn = Connection(properties=client_properties("svc-1", "1.0"))
    conn.data_to_send(0.0)
    conn.receive_data(encode((0, START)), 0.0)
    [(_, start_ok)] = sent(conn)
    props = start_ok.client_properties
    assert props["product"] == "shimeji"
    assert props["connection_name"] == "svc-1"
    for capability in (
        "publisher_confirms",
        "consumer_cancel_notify",
        "connection.blocked",
        "basic.nack",
    ):
        assert props["capabilities"][capability] is True


def _start_ok(conn: Connection) -> bytes:
    conn.data_to_send(0.0)
    conn.receive_data(encode((0, START)), 0.0)
    data = conn.data_to_send(0.0)
    return data[7:-1]  # the method payload


def test_amqplain_login_sends_a_table_without_its_length() -> None:
    payload = _start_ok(
        Connection(username="u", password="p", login_method="amqplain", properties={})
    )
    expected = codec.encode_table({"LOGIN": "u", "PASSWORD": "p"})[4:]
    assert payload.endswith(
        b"\x08AMQPLAIN" + len(expected).to_bytes(4, "big") + expected + b"\x05en_US"
    )


def test_external_login_sends_an_empty_response() -> None:
    payload = _start_ok(Connection(login_method="EXTERNAL", properties={}))
    assert payload.endswith(b"\x08EXTERNAL\x00\x00\x00\x00\x05en_US")


def test_a_login_method_the_server_does_not_offer_is_an_error() -> None:
    conn = Connection(login_method="EXTERNAL")
    only_plain = commands.Connection.Start(mechanisms="PLAIN")
    with pytest.raises(ProtocolError, match="EXTERNAL"):
        conn.receive_data(encode((0, only_plain)), 0.0)


def test_unknown_login_methods_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="login method"):
        Connection(login_method="GSSAPI")


def test_a_server_refusing_our_protocol_version_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="protocol version"):
        Connection().receive_data(b"AMQP\x00\x00\x09\x00", 0.0)


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ((2047, 131072, 60), (2047, 131072, 60), (2047, 131072, 60)),
        ((100, 131072, 60), (2047, 4096, 30), (100, 4096, 30)),  # lower wins
        ((2047, 131072, 10), (2047, 131072, 60), (2047, 131072, 10)),
        ((2047, 131072, 60), (0, 0, 0), (2047, 131072, 60)),  # their 0: no limit, take ours
        ((0, 0, 60), (2047, 131072, 0), (2047, 131072, 60)),
        ((0, 0, 0), (0, 0, 60), (65535, 0, 0)),  # our heartbeat 0 disables heartbeats
    ],
)
def test_tune_negotiation(
    ours: tuple[int, int, int], theirs: tuple[int, int, int], expected: tuple[int, int, int]
) -> None:
    channel_max, frame_max, heartbeat = ours
    conn = Connection(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat)
    conn.data_to_send(0.0)
    conn.receive_data(encode((0, START)), 0.0)
    conn.data_to_send(0.0)
    conn.receive_data(encode((0, commands.Connection.Tune(*theirs))), 0.0)
    tune_ok = sent(conn)[0][1]
    assert (tune_ok.channel_max, tune_ok.frame_max, tune_ok.heartbeat) == expected
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == expected


def test_methods_out_of_handshake_order_are_errors() -> None:
    with pytest.raises(ProtocolError):
        Connection().receive_data(encode((0, commands.Connection.Tune(0, 0, 0))), 0.0)


def test_a_bad_frame_end_is_an_error() -> None:
    data = bytearray(encode((0, START)))
    data[-1] = 0
    with pytest.raises(ProtocolError, match="frame end"):
        Connection().receive_data(bytes(data), 0.0)


# -- closing -----------------------------------------------------------------


def test_the_server_refusing_the_login_closes_the_connection() -> None:
    conn = Connection()
    conn.data_to_send(0.0)
    conn.receive_data(encode((0, START)), 0.0)
    conn.data_to_send(0.0)
    refused = commands.Connection.Close(403, "ACCESS_REFUSED - Login was refused", 0, 0)
    events = conn.receive_data(encode((0, refused)), 0.0)
    assert events == [ConnectionClosed(403, "ACCESS_REFUSED - Login was refused", True)]
    assert [type(obj) for _, obj in sent(conn)] == [commands.Connection.CloseOk]


def test_the_server_closing_the_connection() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    conn.send_method(1, commands.Queue.Declare(queue="q"), token="declare")
    conn.data_to_send(0.0)
    forced = commands.Connection.Close(
        320, "CONNECTION_FORCED - broker forced connection closure", 0, 0
    )
    events = conn.receive_data(encode((0, forced)), 0.0)
    assert events == [
        ConnectionClosed(320, "CONNECTION_FORCED - broker forced connection closure", True)
    ]
    assert [type(obj) for _, obj in sent(conn)] == [commands.Connection.CloseOk]
    assert conn.abandon() == (["declare"], [])


def test_the_client_closing_the_connection() -> None:
    conn = open_connection()
    conn.close()
    conn.close()  # idempotent: one Close frame
    [(channel, close)] = sent(conn)
    assert channel == 0 and (close.reply_code, close.reply_text) == (200, "Normal shutdown")
    events = conn.receive_data(encode((0, commands.Connection.CloseOk())), 0.0)
    assert [(type(e), e.by_server) for e in events] == [(ConnectionClosed, False)]


def test_blocked_and_unblocked() -> None:
    conn = open_connection()
    events = conn.receive_data(encode((0, commands.Connection.Blocked("low on memory"))), 0.0)
    assert events == [ConnectionBlocked("low on memory")] and conn.blocked
    events = conn.receive_data(encode((0, commands.Connection.Unblocked())), 0.0)
    assert events == [ConnectionUnblocked()] and not conn.blocked


# -- heartbeats (an injected clock) ------------------------------------------


def test_a_heartbeat_goes_out_after_half_the_interval_without_sending() -> None:
    conn = open_connection(100.0, server_tune=(0, 0, 10))
    assert conn.next_tick(100.0) == 5.0
    assert conn.tick(104.9) is None and conn.data_to_send(104.9) == b""
    assert conn.tick(105.0) is None
    assert conn.data_to_send(105.0) == Heartbeat.marshal()
    assert conn.next_tick(105.0) == 5.0


def test_other_traffic_postpones_the_heartbeat() -> None:
    conn = open_connection(0.0, server_tune=(0, 0, 10))
    open_channel(conn, 1)
    conn.ack(1, 7)  # any frame counts as traffic
    conn.data_to_send(4.0)
    assert conn.tick(8.0) is None and conn.data_to_send(8.0) == b""
    assert conn.next_tick(8.0) == 1.0


def test_silence_for_two_intervals_means_the_peer_is_dead() -> None:
    conn = open_connection(0.0, server_tune=(0, 0, 10))
    conn.receive_data(Heartbeat.marshal(), 15.0)  # a server heartbeat is traffic
    assert conn.tick(34.9) is None
    assert conn.next_tick(34.9) == pytest.approx(0.1)
    assert conn.tick(35.0) == HeartbeatTimeout(20.0)


def test_heartbeat_zero_disables_both_directions() -> None:
    conn = open_connection(0.0, heartbeat=0)
    assert conn.heartbeat == 0
    assert conn.next_tick(1000.0) is None
    assert conn.tick(1000.0) is None and conn.data_to_send(1000.0) == b""


def test_no_heartbeats_before_tuning() -> None:
    conn = Connection(heartbeat=1)
    conn.data_to_send(0.0)
    assert conn.next_tick(50.0) is None and conn.tick(50.0) is None
