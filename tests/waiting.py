"""Waiting for state that has no event to wait on (a queue expiring, a count
reported by rabbitmqctl): poll with a deadline, never a bare sleep."""

from __future__ import annotations

import socket
from collections.abc import Callable

from nameko._concurrency import Event, deadline_after, remaining


def wait_until(
    predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = deadline_after(timeout)
    pause = Event()  # never set: wait() is the polling interval
    while not predicate():
        left = remaining(deadline)
        if left == 0.0:
            raise AssertionError(f"not true within {timeout}s: {what or predicate}")
        pause.wait(min(interval, left))


def refuses_connections(port: int, host: str = "127.0.0.1") -> bool:
    """A predicate for `wait_until`: nothing listens on ``host:port`` any more."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False
