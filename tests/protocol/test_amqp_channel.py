"""The sans-IO AMQP connection: channels, publishing, deliveries, confirms, returns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands, header
from pamqp.body import ContentBody

from nameko._amqp.channel import too_large_limit, triage_unconfirmed
from nameko._amqp.events import (
    ChannelClosed,
    ConsumerCancelled,
    Delivered,
    MethodReply,
    PendingPublish,
    ProtocolError,
    PublishSettled,
    Returned,
)
from nameko._broker.base import Properties
from tests.protocol.test_amqp_connection import (
    content,
    decode,
    encode,
    open_channel,
    open_connection,
    sent,
)

# -- channels ----------------------------------------------------------------


def test_opening_a_channel() -> None:
    conn = open_connection()
    conn.open_channel(5, token="opened")
    assert conn.has_channel(5)
    assert [(ch, type(obj)) for ch, obj in sent(conn)] == [(5, commands.Channel.Open)]
    events = conn.receive_data(encode((5, commands.Channel.OpenOk())), 0.0)
    assert [(type(e), e.channel, e.token) for e in events] == [(MethodReply, 5, "opened")]


def test_channel_numbers_are_checked() -> None:
    conn = open_connection(server_tune=(10, 131072, 60))
    open_channel(conn, 1)
    with pytest.raises(ValueError):
        conn.open_channel(1)
    with pytest.raises(ValueError):
        conn.open_channel(11)  # above the negotiated channel_max


def test_the_client_closing_a_channel() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    conn.close_channel(1, token="closed")
    assert not conn.has_channel(1)  # closing
    [(channel, close)] = sent(conn)
    assert (channel, close.reply_code) == (1, 200)
    events = conn.receive_data(encode((1, commands.Channel.CloseOk())), 0.0)
    assert [(type(e), e.token) for e in events] == [(MethodReply, "closed")]
    assert 1 not in conn.channels


def test_synchronous_replies_pair_with_their_requests_in_order() -> None:
    conn = open_connection()
    open_channel(conn, 2)
    conn.send_method(2, commands.Exchange.Declare(exchange="ex"), token="a")
    conn.send_method(2, commands.Queue.Declare(queue="q", nowait=True), token="never")  # no reply
    conn.send_method(2, commands.Queue.Bind(queue="q", exchange="ex"), token="b")
    conn.data_to_send(0.0)
    events = conn.receive_data(
        encode((2, commands.Exchange.DeclareOk()), (2, commands.Queue.BindOk())), 0.0
    )
    assert [(type(e.method), e.token) for e in events] == [
        (commands.Exchange.DeclareOk, "a"),
        (commands.Queue.BindOk, "b"),
    ]


def test_the_server_closing_a_channel_fails_what_waits_on_it() -> None:
    conn = open_connection()
    open_channel(conn, 2)
    conn.send_method(
        2, commands.Queue.Declare(queue="q", arguments={"x-expires": 10}), token="first"
    )
    conn.send_method(2, commands.Queue.Bind(queue="q", exchange="missing"), token="second")
    conn.data_to_send(0.0)
    close = commands.Channel.Close(406, "PRECONDITION_FAILED - inequivalent arg", 50, 10)
    events = conn.receive_data(encode((2, close)), 0.0)
    assert events == [
        ChannelClosed(
            2, 406, "PRECONDITION_FAILED - inequivalent arg", 50, 10, ["first", "second"], []
        )
    ]
    assert [(ch, type(obj)) for ch, obj in sent(conn)] == [(2, commands.Channel.CloseOk)]
    assert not conn.has_channel(2)
    open_channel(conn, 2)  # the number can be used again


def test_commands_on_a_channel_that_is_not_open_are_errors() -> None:
    conn = open_connection()
    with pytest.raises(ProtocolError):
        conn.publish(3, "", "q", b"x", Properties())
    with pytest.raises(ProtocolError):
        conn.send_method(3, commands.Basic.Qos(prefetch_count=1))


def test_channel_flow_is_answered() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    assert conn.receive_data(encode((1, commands.Channel.Flow(active=False))), 0.0) == []
    [(channel, flow_ok)] = sent(conn)
    assert (channel, type(flow_ok), flow_ok.active) == (1, commands.Channel.FlowOk, False)


def test_client_ack_and_reject() -> None:
    conn = open_connection()
    open_channel(conn, 4)
    conn.ack(4, 17)
    conn.reject(4, 18, requeue=True)
    conn.reject(4, 19, requeue=False)
    frames = sent(conn)
    assert [(ch, type(obj), obj.delivery_tag) for ch, obj in frames] == [
        (4, commands.Basic.Ack, 17),
        (4, commands.Basic.Reject, 18),
        (4, commands.Basic.Reject, 19),
    ]
    assert [frames[0][1].multiple, frames[1][1].requeue, frames[2][1].requeue] == [
        False,
        True,
        False,
    ]


# -- publishing --------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4087, 4088, 4089, 10000, 3 * 4088])
def test_publish_framing_splits_bodies_by_frame_max(size: int) -> None:
    conn = open_connection(server_tune=(0, 4096, 0))  # room for 4088 body bytes per frame
    open_channel(conn, 1)
    body = bytes(i % 251 for i in range(size))
    props = Properties(content_type="application/json", delivery_mode=2, headers={"a": 1})
    conn.publish(1, "ex", "rk", body, props, mandatory=True)
    frames = sent(conn)
    assert all(ch == 1 for ch, _ in frames)
    method, head, *bodies = (obj for _, obj in frames)
    assert (type(method), method.exchange, method.routing_key, method.mandatory) == (
        commands.Basic.Publish,
        "ex",
        "rk",
        True,
    )
    assert isinstance(head, header.ContentHeader) and head.body_size == size
    assert head.properties.content_type == "application/json" and head.properties.headers == {
        "a": 1
    }
    assert all(isinstance(b, ContentBody) and 0 < len(b.value) <= 4088 for b in bodies)
    assert len(bodies) == -(-size // 4088)
    assert b"".join(b.value for b in bodies) == body


def test_publishes_queue_up_and_go_out_as_one_chunk() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    for i in range(3):
        conn.publish(1, "", "q", b"%d" % i, Properties())
    frames = [obj for _, obj in sent(conn)]
    assert [f.value for f in frames if isinstance(f, ContentBody)] == [b"0", b"1", b"2"]
    assert conn.data_to_send(0.0) == b""


# -- deliveries --------------------------------------------------------------


def _deliver(tag: int, body: bytes, frame_max: int = 131072, **properties: object) -> bytes:
    method = commands.Basic.Deliver("ctag", tag, tag % 2 == 0, "ex", f"rk.{tag}")
    return content(1, method, body, frame_max, **properties)


def _expected(tag: int, body: bytes, **properties: object) -> Delivered:
    return Delivered(
        1, "ctag", tag, tag % 2 == 0, "ex", f"rk.{tag}", Properties(**properties), body
    )


def test_a_delivery_is_assembled_from_its_frames() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    data = _deliver(2, b"hello", correlation_id="c1", headers={"x": [1, "two"]})
    events = conn.receive_data(data, 0.0)
    assert events == [_expected(2, b"hello", correlation_id="c1", headers={"x": [1, "two"]})]


def test_an_empty_body_has_no_body_frame() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    assert conn.receive_data(_deliver(1, b""), 0.0) == [_expected(1, b"")]


# a tiny frame_max (below the spec's minimum, which the state machine does not
# care about) keeps the stream short while its bodies still span several frames
FRAME_MAX = 64
STREAM_BODIES = [b"a" * 10, b"", b"b" * 150, b"c"]  # 150 bytes span three frames
STREAM = b"".join(_deliver(tag, body, FRAME_MAX) for tag, body in enumerate(STREAM_BODIES, 1))
STREAM_EVENTS = [_expected(tag, body) for tag, body in enumerate(STREAM_BODIES, 1)]


def _feed(chunks: list[bytes]) -> list[Delivered]:
    conn = open_connection(server_tune=(0, FRAME_MAX, 0))
    open_channel(conn, 1)
    events = []
    for chunk in chunks:
        events += conn.receive_data(chunk, 0.0)
    return events


def test_deliveries_survive_a_split_at_every_offset() -> None:
    for offset in range(len(STREAM) + 1):
        assert _feed([STREAM[:offset], STREAM[offset:]]) == STREAM_EVENTS, offset


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_deliveries_survive_any_splits(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    assert _feed([STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]) == STREAM_EVENTS


def test_deliveries_on_interleaved_channels() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    open_channel(conn, 2)
    deliver = commands.Basic.Deliver("other", 1, False, "ex", "rk")
    a, b = _deliver(1, b"one"), content(2, deliver, b"two")
    # channel 2's frames arrive between channel 1's method and its content
    first_frame_end = a.index(b"\xce") + 1
    events = conn.receive_data(a[:first_frame_end] + b + a[first_frame_end:], 0.0)
    assert [(e.channel, e.body) for e in events] == [(2, b"two"), (1, b"one")]


def test_content_without_a_method_is_a_protocol_error() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    with pytest.raises(ProtocolError):
        conn.receive_data(encode((1, ContentBody(b"stray"))), 0.0)


def test_deliveries_to_a_closing_channel_are_dropped() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    conn.close_channel(1)
    assert conn.receive_data(_deliver(1, b"late"), 0.0) == []


def test_the_server_cancelling_a_consumer() -> None:
    conn = open_connection()
    open_channel(conn, 3)
    events = conn.receive_data(encode((3, commands.Basic.Cancel(consumer_tag="ctag"))), 0.0)
    assert events == [ConsumerCancelled(3, "ctag")]
    [(channel, cancel_ok)] = sent(conn)
    assert (channel, type(cancel_ok), cancel_ok.consumer_tag) == (
        3,
        commands.Basic.CancelOk,
        "ctag",
    )


def test_a_client_cancel_gets_its_reply() -> None:
    conn = open_connection()
    open_channel(conn, 3)
    conn.send_method(3, commands.Basic.Cancel(consumer_tag="ctag"), token="cancelled")
    conn.data_to_send(0.0)
    events = conn.receive_data(encode((3, commands.Basic.CancelOk(consumer_tag="ctag"))), 0.0)
    assert [(type(e), e.token) for e in events] == [(MethodReply, "cancelled")]


# -- publisher confirms --------------------------------------------------------


def _confirming(count: int, *, mandatory: bool = False):
    conn = open_connection()
    open_channel(conn, 1, confirm=True)
    seqs = [
        conn.publish(1, "ex", "rk", b"%d" % i, Properties(), mandatory=mandatory, token=i)
        for i in range(1, count + 1)
    ]
    conn.data_to_send(0.0)
    return conn, seqs


def _settled(events: list) -> list[tuple[bool, list[int]]]:
    assert all(type(e) is PublishSettled for e in events)
    return [(e.ack, [entry.token for entry in e.entries]) for e in events]


def test_publishes_are_numbered_from_one_once_confirming() -> None:
    conn = open_connection()
    open_channel(conn, 1)
    assert conn.publish(1, "", "q", b"", Properties()) == 0  # not confirming
    _, seqs = _confirming(3)
    assert seqs == [1, 2, 3]


def test_single_and_multiple_acks() -> None:
    conn, _ = _confirming(6)
    receive = conn.receive_data
    assert _settled(receive(encode((1, commands.Basic.Ack(2))), 0.0)) == [(True, [2])]
    assert _settled(receive(encode((1, commands.Basic.Ack(4, multiple=True))), 0.0)) == [
        (True, [1, 3, 4])
    ]
    assert (
        _settled(receive(encode((1, commands.Basic.Ack(4, multiple=True))), 0.0)) == []
    )  # nothing left there
    assert _settled(receive(encode((1, commands.Basic.Nack(6))), 0.0)) == [(False, [6])]
    assert _settled(receive(encode((1, commands.Basic.Nack(6, multiple=True))), 0.0)) == [
        (False, [5])
    ]
    assert not conn.channels[1].unconfirmed


def test_a_server_close_hands_back_unconfirmed_publishes_in_order() -> None:
    conn, _ = _confirming(3)
    conn.receive_data(encode((1, commands.Basic.Ack(1))), 0.0)
    close = commands.Channel.Close(404, "NOT_FOUND - no exchange 'ex' in vhost '/'", 60, 40)
    [event] = conn.receive_data(encode((1, close)), 0.0)
    assert type(event) is ChannelClosed and event.reply_code == 404
    assert [entry.token for entry in event.unconfirmed] == [2, 3]
    assert (event.unconfirmed[0].exchange, event.unconfirmed[0].body) == ("ex", b"2")


def _return(body: bytes, channel: int = 1, **properties: object) -> bytes:
    method = commands.Basic.Return(312, "NO_ROUTE", "ex", "rk")
    return content(channel, method, body, **properties)


def test_a_return_is_attached_to_its_publish_and_settled_with_its_ack() -> None:
    conn, _ = _confirming(3, mandatory=True)
    assert conn.receive_data(_return(b"2"), 0.0) == []  # claimed: no event yet
    events = conn.receive_data(encode((1, commands.Basic.Ack(3, multiple=True))), 0.0)
    [event] = events
    returned = {entry.token: entry.returned for entry in event.entries}
    assert returned[1] is None and returned[3] is None
    assert (returned[2].reply_code, returned[2].reply_text, returned[2].body) == (
        312,
        "NO_ROUTE",
        b"2",
    )


def test_identical_messages_are_matched_earliest_first() -> None:
    conn = open_connection()
    open_channel(conn, 1, confirm=True)
    props = Properties(correlation_id="same")
    for token in ("a", "b", "c"):
        conn.publish(1, "ex", "rk", b"same", props, mandatory=True, token=token)
    conn.publish(
        1, "ex", "rk", b"same", Properties(correlation_id="other"), mandatory=True, token="d"
    )
    # acks of other messages may overtake: "a" is acked (routed) before any return arrives
    conn.receive_data(encode((1, commands.Basic.Ack(1))), 0.0)
    conn.receive_data(_return(b"same", correlation_id="same"), 0.0)
    conn.receive_data(_return(b"same", correlation_id="other"), 0.0)
    [event] = conn.receive_data(encode((1, commands.Basic.Ack(4, multiple=True))), 0.0)
    returned = {entry.token: entry.returned is not None for entry in event.entries}
    assert returned == {"b": True, "c": False, "d": True}


def test_a_return_nobody_claims_is_an_event() -> None:
    conn, _ = _confirming(1, mandatory=False)  # not mandatory: cannot be returned
    [event] = conn.receive_data(_return(b"1"), 0.0)
    assert type(event) is Returned and event.body == b"1"
    plain = open_connection()
    open_channel(plain, 1)  # not confirming at all
    assert [type(e) for e in plain.receive_data(_return(b"x"), 0.0)] == [Returned]


def test_abandoning_hands_back_everything_pending() -> None:
    conn, _ = _confirming(2)
    conn.send_method(1, commands.Basic.Qos(prefetch_count=1), token="qos")
    waiting, unconfirmed = conn.abandon()
    assert waiting == ["qos"] and [e.token for e in unconfirmed] == [1, 2]
    assert conn.channels == {}


def test_frames_for_unknown_channels_are_ignored() -> None:
    conn = open_connection()
    assert conn.receive_data(_deliver(1, b"nobody listens"), 0.0) == []
    assert decode(conn.data_to_send(0.0)) == []


def _entry(token: str, exchange: str, body: bytes = b"") -> PendingPublish:
    return PendingPublish(token, exchange, "rk", body, Properties(), False)


def test_triage_after_a_missing_exchange() -> None:
    entries = [
        _entry("a", "good"),
        _entry("b", "missing"),
        _entry("c", "good"),
        _entry("d", "missing"),
    ]
    text = "NOT_FOUND - no exchange 'missing' in vhost '/'"
    unknown, failed, resend = triage_unconfirmed(entries, text)
    assert [e.token for e in unknown] == ["a"]  # routed, but its confirm is lost
    assert [e.token for e in failed] == ["b", "d"]
    assert [e.token for e in resend] == ["c"]  # never looked at by the broker


def test_triage_after_a_body_over_the_brokers_size_limit() -> None:
    entries = [
        _entry("a", "x", b"1" * 10),
        _entry("b", "x", b"2" * 101),  # the one the broker refused
        _entry("c", "x", b"3" * 100),
        _entry("d", "y", b"4" * 200),
    ]
    text = "PRECONDITION_FAILED - message size 101 is larger than configured max size 100"
    assert too_large_limit(text) == 100 and too_large_limit("NOT_FOUND - no queue") is None
    unknown, failed, resend = triage_unconfirmed(entries, text)
    assert [e.token for e in unknown] == ["a"]
    assert [e.token for e in failed] == ["b", "d"]  # d would be refused alike
    assert [e.token for e in resend] == ["c"]  # within the limit: sent again


def test_triage_without_a_culprit_fails_everything() -> None:
    entries = [_entry("a", "x"), _entry("b", "y")]
    assert triage_unconfirmed(entries, "PRECONDITION_FAILED - message too large") == (
        [],
        entries,
        [],
    )


def test_publishes_the_server_discarded_are_resent_on_a_reopened_channel() -> None:
    conn = open_connection()
    open_channel(conn, 1, confirm=True)
    for token, exchange in (("a", "good"), ("b", "missing"), ("c", "good"), ("d", "other")):
        conn.publish(1, exchange, "rk", token.encode(), Properties(), token=token)
    conn.data_to_send(0.0)
    close = commands.Channel.Close(404, "NOT_FOUND - no exchange 'missing' in vhost '/'", 60, 40)
    [event] = conn.receive_data(encode((1, close)), 0.0)
    assert [e.token for e in event.unconfirmed] == ["a", "b"]  # unknown, failed
    assert [e.token for e in event.resent] == ["c", "d"]
    frames = sent(conn)
    assert [type(obj).__name__ for _, obj in frames if not isinstance(obj, (header.ContentHeader, ContentBody))] == [
        "CloseOk", "Open", "Select", "Publish", "Publish"
    ]  # fmt: skip
    assert [obj.value for _, obj in frames if isinstance(obj, ContentBody)] == [b"c", b"d"]
    conn.receive_data(encode((1, commands.Channel.OpenOk()), (1, commands.Confirm.SelectOk())), 0.0)
    [settled] = conn.receive_data(encode((1, commands.Basic.Ack(2, multiple=True))), 0.0)
    assert [e.token for e in settled.entries] == ["c", "d"]  # numbered afresh from 1
