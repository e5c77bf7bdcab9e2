"""HTTP tests talk to a running container over real sockets: `requests` for the
usual, a raw socket where the bytes on the wire are the point."""

from __future__ import annotations

import socket

import httptools
import pytest


@pytest.fixture
def start(container_factory, web_config):
    """start(ServiceCls, **config_overrides) -> a started container on web_config."""

    def start(service_cls, **overrides):
        container = container_factory(service_cls, {**web_config, **overrides})
        container.start()
        return container

    return start


class RawResponse:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""


class RawClient:
    """A socket that sends raw bytes and reads back whole responses."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._done: list[RawResponse] = []
        self._current = RawResponse()
        self._parser = httptools.HttpResponseParser(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def responses(self, count: int) -> list[RawResponse]:
        """Read until ``count`` responses have arrived (fails on EOF before)."""
        while len(self._done) < count:
            data = self.sock.recv(65536)
            assert data, f"connection closed after {len(self._done)} of {count} responses"
            self._parser.feed_data(data)
        done, self._done = self._done[:count], self._done[count:]
        return done

    def closed_by_server(self) -> bool:
        """True if the server closes the connection (after any responses)."""
        try:
            while data := self.sock.recv(65536):
                self._parser.feed_data(data)
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._current.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._current.body += body

    def on_message_complete(self) -> None:
        self._current.status = self._parser.get_status_code()
        self._done.append(self._current)
        self._current = RawResponse()


@pytest.fixture
def raw(web_config_port):
    clients: list[RawClient] = []

    def connect(timeout: float = 10) -> RawClient:
        client = RawClient(web_config_port, timeout)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
