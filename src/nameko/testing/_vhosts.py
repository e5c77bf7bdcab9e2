"""Per-test RabbitMQ vhosts (shipped for users' tests too), created with rabbitmqctl (the management plugin may be off).

Each vhost costs two rabbitmqctl calls (about 0.5 s each), so a background
thread keeps a few ready ahead of the tests and deletes used ones.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess

from nameko._concurrency import start_thread

AMQP_HOST = os.environ.get("SHIMEJI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")  # no vhost
AHEAD = 2


def rabbitmqctl(*args: str) -> str:
    out = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return out.stdout


def create_vhost(name: str) -> None:
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def delete_vhost(name: str) -> None:
    try:
        rabbitmqctl("delete_vhost", name)
    except subprocess.CalledProcessError:
        pass


class VhostPool:
    def __init__(self) -> None:
        self._ready: queue.Queue[str] = queue.Queue()
        self._todo: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = start_thread(self._work, "vhost-pool")
        for _ in range(AHEAD):
            self._todo.put(("create", self._new_name()))

    @staticmethod
    def _new_name() -> str:
        return "shimeji_test_" + secrets.token_hex(5)

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            action, name = item
            if action == "create":
                create_vhost(name)
                self._ready.put(name)
            else:
                delete_vhost(name)

    def take(self) -> str:
        self._todo.put(("create", self._new_name()))
        return self._ready.get(timeout=120)

    def give_back(self, name: str) -> None:
        self._todo.put(("delete", name))

    def close(self) -> None:
        # drop spare vhosts so runs leave nothing behind
        while True:
            try:
                self._todo.put(("delete", self._ready.get_nowait()))
            except queue.Empty:
                break
        self._todo.put(None)
        self._thread.join(timeout=120)
        while True:
            try:
                delete_vhost(self._ready.get_nowait())
            except queue.Empty:
                break
