"""The WebSocket RPC hub (SPEC 8) with a real WebSocket client."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from nameko.exceptions import IncorrectSignature, MalformedRequest, MethodNotFound, RemoteError
from nameko.web.websocket import WebSocketHubProvider, rpc
from tests.waiting import wait_until


class Boom(Exception):
    pass


class Chat:
    name = "chat"
    hub = WebSocketHubProvider()

    @rpc
    def echo(self, socket_id, value):
        return {"socket_id": socket_id, "value": value}

    @rpc
    def fail(self, socket_id):
        raise Boom("no luck")

    @rpc
    def join(self, socket_id, channel):
        self.hub.subscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @rpc
    def leave(self, socket_id, channel):
        self.hub.unsubscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @rpc
    def say(self, socket_id, channel, text):
        self.hub.broadcast(channel, "said", {"from": socket_id, "text": text})

    @rpc
    def whisper(self, socket_id, to, text):
        return self.hub.unicast(to, "whispered", text)

    @rpc
    def subscribers(self, socket_id, channel):
        return sorted(self.hub.subscriptions.get(channel, ()))

    @rpc
    def subscribe_other(self, socket_id, other):
        self.hub.subscribe(other, "x")


@pytest.fixture
def chat(start):
    return start(Chat)


def test_connect_sends_the_socket_id_and_rpc_gets_it(chat, websocket):
    ws = websocket()
    assert len(ws.socket_id) == 36
    assert ws.rpc("echo", value="ナメコ") == {"socket_id": ws.socket_id, "value": "ナメコ"}


def test_errors_come_back_as_result_frames(chat, websocket):
    ws = websocket()
    with pytest.raises(RemoteError) as raised:
        ws.rpc("fail")
    assert (raised.value.exc_type, raised.value.value) == ("Boom", "no luck")
    with pytest.raises(MethodNotFound):
        ws.rpc("nothing_here")
    with pytest.raises(IncorrectSignature):
        ws.rpc("echo", wrong=1)


def test_malformed_requests_answer_with_a_null_correlation_id(chat, websocket):
    ws = websocket()
    for text in ["not json", json.dumps({"data": {}}), json.dumps([1, 2])]:
        ws.send_raw(text)
        frame = ws.wait_for_result(None)
        ws._replies.pop("None")
        assert frame["success"] is False and frame["correlation_id"] is None
        assert frame["error"]["exc_type"] == MalformedRequest.__name__
        assert frame["error"]["value"] == "Invalid JSON data"
    assert ws.rpc("echo", value=1)["value"] == 1  # the socket still works


def test_subscribe_broadcast_and_unicast(chat, websocket):
    alice, bob, carol = websocket(), websocket(), websocket()
    assert alice.rpc("join", channel="room") == ["room"]
    assert bob.rpc("join", channel="room") == ["room"]
    assert bob.rpc("join", channel="another") == ["another", "room"]
    carol.rpc("say", channel="room", text="hi")
    for ws in (alice, bob):
        assert ws.wait_for_event("said") == ("said", {"from": carol.socket_id, "text": "hi"})
    assert carol.get_event_queue("said").empty()
    assert alice.rpc("leave", channel="room") == []
    assert carol.rpc("whisper", to=bob.socket_id, text="psst") is True
    assert bob.wait_for_event("whispered") == ("whispered", "psst")
    assert carol.rpc("whisper", to="nobody", text="?") is False


def test_subscribing_an_unknown_socket_is_connection_not_found(chat, websocket):
    ws = websocket()
    with pytest.raises(RemoteError) as raised:  # not a registered type (SPEC 1.14)
        ws.rpc("subscribe_other", other="unknown-id")
    assert (raised.value.exc_type, raised.value.value) == ("ConnectionNotFound", "unknown-id")


def test_disconnect_cleans_up_subscriptions(chat, websocket):
    leaving, staying = websocket(), websocket()
    leaving.rpc("join", channel="room")
    staying.rpc("join", channel="room")
    leaving.close()
    wait_until(
        lambda: staying.rpc("subscribers", channel="room") == [staying.socket_id],
        timeout=10,
        what="the closed socket's subscription is gone",
    )


def test_oversize_message_closes_with_1009(start, websocket):
    start(Chat, WEB_WEBSOCKET_MAX_MESSAGE=1000)
    ws = websocket()
    assert ws.rpc("echo", value="x" * 500)["value"] == "x" * 500
    ws.send_raw(json.dumps({"method": "echo", "data": {"value": "x" * 2000}}))
    assert ws.closed.wait(10)
    assert ws.close_status == 1009


def test_the_message_cap_counts_bytes_not_characters(start, websocket):
    start(Chat, WEB_WEBSOCKET_MAX_MESSAGE=1000)
    ws = websocket()
    ws.send_raw(json.dumps({"method": "echo", "data": {"value": "ナ" * 400}}, ensure_ascii=False))
    assert ws.closed.wait(10)  # 400 characters, 1200 bytes
    assert ws.close_status == 1009


def test_plain_get_on_ws_is_400(chat, web_session):
    assert web_session.get("/ws").status_code == 400


def test_stopping_the_service_closes_open_sockets(chat, websocket):
    ws = websocket()
    ws.rpc("join", channel="room")
    chat.stop()
    assert ws.closed.wait(10)
    assert ws.close_status == 1001


def test_http_and_websocket_share_the_port(start, websocket, web_session):
    from nameko.web.handlers import http

    class Both(Chat):
        name = "both"

        @http("GET", "/plain")
        def plain(self, request):
            return "plain"

    start(Both)
    assert web_session.get("/plain").text == "plain"
    assert websocket().rpc("echo", value=2)["value"] == 2
    assert requests.get(web_session.base_url + "plain").text == "plain"


def _raw_handshake(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example
    return sock


def _opcodes_until_closed(sock):
    """Opcodes of the frames the server sends (server frames are unmasked, short here)."""
    opcodes, data = [], b""
    while chunk := sock.recv(4096):
        data += chunk
        while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
            length = data[1] & 0x7F
            opcodes.append(data[0] & 0x0F)
            data = data[2 + length :]
    return opcodes


def test_a_silent_peer_is_pinged_then_dropped(start, web_config_port):
    start(Chat, WEB_WEBSOCKET_PING_INTERVAL=0.2)
    sock = _raw_handshake(web_config_port)
    try:
        opcodes = _opcodes_until_closed(sock)  # never answers the ping
    finally:
        sock.close()
    assert opcodes[0] == 0x1  # the connected event (text)
    assert 0x9 in opcodes and opcodes[-1] == 0x8  # ping, then close


def test_a_client_that_answers_pings_stays_connected(start, websocket):
    start(Chat, WEB_WEBSOCKET_PING_INTERVAL=0.1)
    ws = websocket()  # websocket-client answers pings by itself
    assert not ws.closed.wait(1)  # ten ping intervals
    assert ws.rpc("echo", value=3)["value"] == 3


def _masked_text_frame(text):
    payload = text.encode()
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


class Flood:
    name = "flood"

    @rpc
    def flood(self, socket_id, size):
        return "x" * size


def test_a_client_that_stops_reading_cannot_hold_up_stop(start, web_config_port, monkeypatch):
    from nameko._concurrency import start_thread
    from nameko._web import ws_session
    from nameko.testing.services import entrypoint_waiter

    monkeypatch.setattr(ws_session, "SEND_TIMEOUT", 0.5)
    container = start(Flood, WEB_WEBSOCKET_PING_INTERVAL=0)  # no pings: only sends are bounded
    sock = _raw_handshake(web_config_port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        request = {"method": "flood", "data": {"size": 64 << 20}}
        with entrypoint_waiter(container, "flood"):  # the reply is being sent once it returns
            sock.sendall(_masked_text_frame(json.dumps(request)))
        stopper = start_thread(container.stop, "test-stop")
        stopper.join(15)  # never reading: the 64 MiB reply can't go out
        assert not stopper.is_alive(), "container.stop() hung on a client that doesn't read"
    finally:
        sock.close()


def test_an_upgrade_pipelined_behind_a_large_response_waits_for_it(start, web_config_port):
    from nameko.web.handlers import http

    class Large(Chat):
        name = "large"

        @http("GET", "/big")
        def big(self, request):
            return "x" * (4 * 1024 * 1024)

    start(Large)
    sock = socket.create_connection(("127.0.0.1", web_config_port), timeout=10)
    try:
        sock.sendall(
            b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"101 Switching Protocols" not in data:
            chunk = sock.recv(65536)
            assert chunk, "closed before the upgrade"
            data += chunk
    finally:
        sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    body = rest[: 4 * 1024 * 1024]
    assert body == b"x" * (4 * 1024 * 1024)  # whole, then the 101
    assert rest[len(body) :].startswith(b"HTTP/1.1 101 Switching Protocols")
