"""The operations endpoint under hostile or careless clients: a client
trickling bytes, silent connections, a burst of connects and more
connections than the cap; a probe must still answer within a second, and
every hanging connection is dropped at its deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from nameko._concurrency import Event, start_thread
from nameko._ops.server import MAX_CONNECTIONS, REQUEST_DEADLINE
from nameko.ops import serve_ops
from nameko.rpc import rpc

PROBE_WITHIN = 1.0  # seconds: what a Kubernetes probe with timeoutSeconds: 1 allows


class Service:
    name = "loadsvc"

    @rpc
    def ping(self):
        return "pong"


@pytest.fixture
def address(memory_config, runner_factory):
    runner = runner_factory(memory_config, Service)
    ops = serve_ops(runner, "127.0.0.1:0")
    runner.start()
    yield ops.address
    ops.close()


def probe(address: tuple[str, int], path: str = "/healthz") -> tuple[int, float]:
    """(status, seconds) of one GET that must finish within `PROBE_WITHIN`."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=PROBE_WITHIN) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return int(received.split(b" ", 2)[1]), time.monotonic() - started


@contextmanager
def trickling(address: tuple[str, int], every: float = 0.2) -> Iterator[Event]:
    """A client sending a request one byte every ``every`` seconds; the event
    is set once the server has cut it off."""
    cut_off, stop = Event(), Event()
    sock = socket.create_connection(address)

    def trickle() -> None:
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"a" * 10_000:
                sock.sendall(bytes([byte]))
                if stop.wait(every):  # the client's pace, not a wait for the server
                    return
        except OSError:  # reset or broken pipe: the server closed it
            cut_off.set()

    thread = start_thread(trickle, "trickler")
    try:
        yield cut_off
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@contextmanager
def silent_connections(address: tuple[str, int], count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(socket.create_connection(address, timeout=PROBE_WITHIN))
            for _ in range(count)
        ]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_trickling_client_does_not_delay_a_probe_and_is_cut_off(address):
    with trickling(address) as cut_off:
        for _ in range(3):
            status, took = probe(address)
            assert status == 200 and took < PROBE_WITHIN
        assert cut_off.wait(REQUEST_DEADLINE + 2), "the trickler outlived the request deadline"
    assert probe(address)[0] == 200


def test_six_silent_connections_do_not_delay_a_probe_and_are_dropped(address):
    with silent_connections(address, 6) as idle:
        status, took = probe(address)
        assert status == 200 and took < PROBE_WITHIN
        started = time.monotonic()
        assert all(closed_by_server(sock, REQUEST_DEADLINE + 2) for sock in idle)
        assert time.monotonic() - started < REQUEST_DEADLINE + 1


def test_fifty_parallel_connects_are_all_accepted_and_a_probe_answers(address):
    connected: list[socket.socket | OSError] = []

    def connect() -> None:
        try:
            connected.append(socket.create_connection(address, timeout=PROBE_WITHIN))
        except OSError as exc:
            connected.append(exc)

    threads = [start_thread(connect, f"connect-{i}") for i in range(50)]
    for thread in threads:
        thread.join(PROBE_WITHIN * 2)
    try:
        assert [c for c in connected if isinstance(c, OSError)] == []
        assert len(connected) == 50
        status, took = probe(address)
        assert status == 200 and took < PROBE_WITHIN
    finally:
        for sock in connected:
            if isinstance(sock, socket.socket):
                sock.close()


def test_more_connections_than_the_cap_evict_the_oldest_not_the_probe(address):
    with silent_connections(address, MAX_CONNECTIONS + 10) as idle:
        status, took = probe(address)
        assert status == 200 and took < PROBE_WITHIN
        assert closed_by_server(idle[0], PROBE_WITHIN)  # made room for a newer one


def test_every_route_answers_under_load_and_bad_requests_get_a_status(address):
    with trickling(address), silent_connections(address, 10):
        assert probe(address, "/readyz")[0] == 200
        assert probe(address, "/metrics")[0] == 200
        assert probe(address, "/nothing")[0] == 404
    with socket.create_connection(address, timeout=PROBE_WITHIN) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.0 405 ")
    with socket.create_connection(address, timeout=PROBE_WITHIN) as sock:
        sock.sendall(b"nonsense\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.0 400 ")
    with socket.create_connection(address, timeout=PROBE_WITHIN) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.0\r\n\r\n")
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.0 200 ") and head.endswith(b"\r\n\r\n")
    with socket.create_connection(address, timeout=PROBE_WITHIN) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 9000)
        assert sock.recv(65536).startswith(b"HTTP/1.0 431 ")
