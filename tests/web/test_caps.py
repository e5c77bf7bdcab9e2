"""Resource caps a client can't get around: hub subscriptions and channel names,
a per-peer share of the connections, request threads that retire when idle, and
log lines a client can cause at a bounded rate."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from nameko._web.site import peer_key
from nameko.exceptions import RemoteError
from nameko.testing.utils import get_extension
from nameko.web.handlers import http
from nameko.web.websocket import WebSocketHubProvider, WebSocketServer, rpc
from tests.waiting import wait_until

TIMEOUT = 10
SECOND_PEER = "127.0.0.2"  # all of 127.0.0.0/8 is loopback on Linux: a second client address


class Hub:
    name = "hub_caps"
    hub = WebSocketHubProvider()

    @rpc
    def join(self, socket_id, channel):
        self.hub.subscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @rpc
    def leave(self, socket_id, channel):
        self.hub.unsubscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"


def _refused_subscription(ws, channel):
    with pytest.raises(RemoteError) as raised:
        ws.rpc("join", channel=channel)
    assert raised.value.exc_type == "SubscriptionRefused"
    return raised.value.value


# -- the hub ---------------------------------------------------------------------------------


def test_subscriptions_per_socket_are_capped_and_the_socket_stays_usable(start, websocket):
    start(Hub, WEB_WEBSOCKET_MAX_SUBSCRIPTIONS=3)
    ws = websocket()
    for channel in "abc":
        ws.rpc("join", channel=channel)
    assert "WEB_WEBSOCKET_MAX_SUBSCRIPTIONS (3)" in _refused_subscription(ws, "d")
    assert ws.rpc("join", channel="a") == ["a", "b", "c"]  # one it holds: not a new one
    assert ws.rpc("leave", channel="a") == ["b", "c"]
    assert ws.rpc("join", channel="d") == ["b", "c", "d"]
    assert websocket().rpc("join", channel="e") == ["e"]  # the cap is per socket


def test_channel_names_are_capped_in_length(start, websocket):
    start(Hub, WEB_WEBSOCKET_MAX_CHANNEL_LENGTH=16)
    ws = websocket()
    assert "WEB_WEBSOCKET_MAX_CHANNEL_LENGTH (16)" in _refused_subscription(ws, "x" * 17)
    assert ws.rpc("join", channel="x" * 16) == ["x" * 16]


def test_by_default_a_900_kb_channel_name_is_refused(start, websocket):
    start(Hub)
    ws = websocket()
    _refused_subscription(ws, "n" * 900_000)
    assert ws.rpc("join", channel="news") == ["news"]


def test_the_hub_keeps_nothing_of_a_closed_socket(start, websocket):
    container = start(Hub)
    server = get_extension(container, WebSocketServer)
    ws = websocket()
    for i in range(20):
        ws.rpc("join", channel=f"channel-{i}")
    ws.close()
    wait_until(
        lambda: not (server.sockets or server.connections or server.subscriptions),
        timeout=TIMEOUT,
        what="the hub dropped the socket, its connection and its channels",
    )


# -- the per-peer share of WEB_MAX_CONNECTIONS -----------------------------------------------


def _connect(port, source):
    sock = socket.create_connection(("127.0.0.1", port), TIMEOUT, source_address=(source, 0))
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
    return sock


def _answer(sock):
    """The first response's status line; the connection is kept open on 200."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def _hold_until_refused(port, source, most):
    """Open keep-alive connections from ``source`` until one is refused."""
    held = []
    for _ in range(most):
        sock = _connect(port, source)
        status = _answer(sock)
        if not status.endswith(b"200 OK"):
            sock.close()
            return held, status
        held.append(sock)
    return held, b""


def test_one_peer_cannot_take_every_connection(start, web_config_port):
    start(Hub, WEB_MAX_CONNECTIONS=4)  # the share defaults to half: 2
    held, refusal = _hold_until_refused(web_config_port, SECOND_PEER, 5)
    try:
        assert len(held) == 2 and refusal.startswith(b"HTTP/1.1 503")
        other = _connect(web_config_port, "127.0.0.1")  # the other peer still gets in
        assert _answer(other).endswith(b"200 OK")
        other.close()
        held.pop().close()  # a connection given back is the peer's to use again
        wait_until(
            lambda: _retry(web_config_port, SECOND_PEER, held),
            timeout=TIMEOUT,
            what="the closed connection freed its place in the share",
        )
    finally:
        for sock in held:
            sock.close()


def test_websockets_count_against_their_peers_share(start, web_config_port):
    start(Hub, WEB_MAX_CONNECTIONS=4, WEB_MAX_CONNECTIONS_PER_PEER=1)
    ws = _handshake(web_config_port, SECOND_PEER)
    try:
        with _connect(web_config_port, SECOND_PEER) as refused:
            assert _answer(refused).startswith(b"HTTP/1.1 503")
        with _connect(web_config_port, "127.0.0.1") as other:
            assert _answer(other).endswith(b"200 OK")
    finally:
        ws.close()
    held: list[socket.socket] = []
    wait_until(lambda: _retry(web_config_port, SECOND_PEER, held), timeout=TIMEOUT)
    held[0].close()


def test_a_share_of_0_lets_one_peer_use_every_connection(start, web_config_port):
    # e.g. every client comes through one reverse proxy on loopback
    start(Hub, WEB_MAX_CONNECTIONS=4, WEB_MAX_CONNECTIONS_PER_PEER=0)
    held, refusal = _hold_until_refused(web_config_port, "127.0.0.1", 5)
    try:
        assert len(held) == 4 and b"503" in refusal
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("10.0.0.1", 5000), "10.0.0.1"),
        (("2001:db8::1", 5000, 0, 0), "2001:db8::/64"),
        (("2001:db8::ffff:1", 5001, 0, 0), "2001:db8::/64"),  # one host's /64: one peer
        (("2001:db8:0:1::1", 5000, 0, 0), "2001:db8:0:1::/64"),
        (("::ffff:10.0.0.1", 5000, 0, 0), "10.0.0.1"),  # IPv4 on a dual-stack socket
        (("fe80::1%eth0", 5000, 0, 2), "fe80::/64"),
    ],
)
def test_peers_are_counted_by_address_and_ipv6_by_its_64(peer, key):
    assert peer_key(peer) == key


def _retry(port, source, held):
    sock = _connect(port, source)
    if _answer(sock).endswith(b"200 OK"):
        held.append(sock)
        return True
    sock.close()
    return False


def _handshake(port, source):
    sock = socket.create_connection(("127.0.0.1", port), TIMEOUT, source_address=(source, 0))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert _answer(sock).startswith(b"HTTP/1.1 101")
    return sock


# -- request threads retire when idle -------------------------------------------------------


def _request_threads(port):
    prefix = f"web-request-{port}-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_idle_request_threads_retire(start, web_config_port, websocket):
    start(Hub, WEB_THREAD_IDLE_TIMEOUT=0.2)
    sockets = [websocket() for _ in range(5)]  # one request thread each
    assert len(_request_threads(web_config_port)) >= 5
    for ws in sockets:
        ws.close()
    wait_until(
        lambda: not _request_threads(web_config_port),
        timeout=TIMEOUT,
        what="every idle request thread exited",
    )
    assert websocket().rpc("join", channel="again") == ["again"]  # and new ones start


# -- noisy log lines -------------------------------------------------------------------------


def test_a_burst_of_bad_requests_logs_a_bounded_number_of_lines(start, web_config_port, caplog):
    start(Hub, WEB_HEADER_TIMEOUT=0.2)
    caplog.set_level(logging.INFO, logger="nameko.web.server")
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", web_config_port), TIMEOUT) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert _answer(sock).startswith(b"HTTP/1.1 400")
    slow = [socket.create_connection(("127.0.0.1", web_config_port), TIMEOUT) for _ in range(20)]
    try:
        for sock in slow:  # headers that never end: each times out
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n")
        for sock in slow:
            assert _answer(sock).startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "nameko.web.server"]
    assert len([line for line in lines if line.startswith("bad request from")]) <= 2
    assert len([line for line in lines if "timed out" in line]) <= 2
