"""Small helpers for tests (public nameko 2.x path)."""

from __future__ import annotations

import socket
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import ANY

from nameko._concurrency import Event
from nameko._reexports import reexported
from nameko._runtime.extensions import Entrypoint
from nameko.testing._pipeline import ResourcePipeline

__all__ = [
    "ANY_PARTIAL",
    "AnyInstanceOf",
    "DummyProvider",
    "MockCallArgs",
    "ResourcePipeline",
    "assert_stops_raising",
    "find_free_port",
    "get_container",
    "get_extension",
    "get_rabbit_connections",
    "reset_rabbit_connections",
    "unpack_mock_call",
    "wait_for_call",
    "wait_for_worker_idle",
]


def get_extension(container: Any, extension_cls: type, **match_attrs: Any) -> Any:
    """The first extension of ``container`` that is an ``extension_cls`` with
    all of ``match_attrs``, or None."""
    for extension in container.extensions:
        if isinstance(extension, extension_cls) and all(
            getattr(extension, name, object()) == value for name, value in match_attrs.items()
        ):
            return extension
    return None


def get_container(runner: Any, service_cls: type) -> Any:
    for container in runner.containers:
        if container.service_cls is service_cls:
            return container
    return None


@contextmanager
def wait_for_call(timeout: float, mock_method: Any) -> Iterator[Any]:
    """Yield ``mock_method``; on leaving, wait until it has been called."""
    yield mock_method
    deadline = time.monotonic() + timeout
    tick = Event()
    while not mock_method.called:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{mock_method} was not called within {timeout} seconds")
        tick.wait(0.01)


def wait_for_worker_idle(container: Any, timeout: float = 10) -> None:
    """Deprecated in nameko; waits until no worker runs or waits to run."""
    if not container._worker_pool.wait_idle(timeout):
        raise TimeoutError(f"workers of {container} still busy after {timeout} seconds")


def assert_stops_raising(
    fn: Callable[[], Any],
    exception_type: type[BaseException] = Exception,
    timeout: float = 10,
    interval: float = 0.1,
) -> Any:
    """Call ``fn`` every ``interval`` seconds until it stops raising."""
    deadline = time.monotonic() + timeout
    tick = Event()
    while True:
        try:
            return fn()
        except exception_type:
            if time.monotonic() >= deadline:
                raise
        tick.wait(interval)


MockCallArgs = namedtuple("MockCallArgs", ["positional", "keyword"])


def unpack_mock_call(call: Any) -> MockCallArgs:
    return MockCallArgs(*call)


class AnyInstanceOf:
    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.cls)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return f"<AnyInstanceOf-{self.cls}>"


ANY_PARTIAL = ANY


class DummyProvider(Entrypoint):
    def __init__(self, method_name: str | None = None) -> None:
        super().__init__()
        if method_name is not None:  # else unbound, as a declaration is
            self.method_name = method_name


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def get_rabbit_connections(vhost: str, rabbit_manager: Any) -> list[Any]:
    return [c for c in rabbit_manager.get_connections() if c.get("vhost") == vhost]


def reset_rabbit_connections(vhost: str, rabbit_manager: Any) -> None:
    for connection in get_rabbit_connections(vhost, rabbit_manager):
        rabbit_manager.delete_connection(connection["name"])


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
