"""Waiting for state that has no event to wait on (a queue expiring, a count
reported by rabbitmqctl): poll with a deadline, never a bare sleep."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

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


def outcome_within(fn: Callable[[], Any], seconds: float) -> tuple[Any, float]:
    """(what ``fn()`` returned or raised, how long it took); fails when it
    is still waiting after ``seconds`` (it is left running, in a daemon thread)."""
    done: list[Any] = []
    started = time.monotonic()

    def run() -> None:
        try:
            done.append(fn())
        except BaseException as exc:
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert done, f"still waiting after {seconds} s"
    return done[0], time.monotonic() - started
