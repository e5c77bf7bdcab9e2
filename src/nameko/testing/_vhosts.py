"""Per-test RabbitMQ vhosts (shipped for users' tests too), made with rabbitmqctl.

The management plugin may be off, so vhosts are made with ``rabbitmqctl``.
Each invocation starts an Erlang VM (about half a second of CPU), so vhosts
are created and deleted in batches with one ``rabbitmqctl eval`` each, by a
background thread that keeps a few ready ahead of the tests. Where ``eval``
is refused (another RabbitMQ version's internals), it falls back to one
``add_vhost`` + ``set_permissions`` per vhost.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess

from nameko._concurrency import start_thread

AMQP_HOST = os.environ.get("SHIMEJI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")  # no vhost
USER = "guest"
BATCH = 12  # vhosts made per rabbitmqctl call
LOW_WATER = 4  # refill when fewer are ready
ACTING_USER = '<<"shimeji-tests">>'


def rabbitmqctl(*args: str) -> str:
    out = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120
    )
    return out.stdout


def _erlang_list(names: list[str]) -> str:
    return "[" + ", ".join(f'<<"{name}">>' for name in names) + "]"


def create_vhosts(names: list[str]) -> None:
    script = (
        f"lists:foreach(fun(V) -> rabbit_vhost:add(V, {ACTING_USER}), "
        f'rabbit_auth_backend_internal:set_permissions(<<"{USER}">>, V, <<".*">>, <<".*">>, '
        f'<<".*">>, {ACTING_USER}) end, {_erlang_list(names)}), ok.'
    )
    try:
        rabbitmqctl("eval", script)
    except subprocess.CalledProcessError:
        for name in names:
            rabbitmqctl("add_vhost", name)
            rabbitmqctl("set_permissions", "-p", name, USER, ".*", ".*", ".*")


def delete_vhosts(names: list[str]) -> None:
    script = f"lists:foreach(fun(V) -> catch rabbit_vhost:delete(V, {ACTING_USER}) end, {_erlang_list(names)}), ok."
    try:
        rabbitmqctl("eval", script)
    except subprocess.CalledProcessError:
        for name in names:
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=120
            )


class VhostPool:
    def __init__(self) -> None:
        self._ready: queue.Queue[str] = queue.Queue()
        self._used: list[str] = []
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._thread = start_thread(self._work, "vhost-pool")
        self._todo.put("refill")

    @staticmethod
    def _new_name() -> str:
        return "shimeji_test_" + secrets.token_hex(5)

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            if item == "refill" and self._ready.qsize() < LOW_WATER:
                names = [self._new_name() for _ in range(BATCH)]
                create_vhosts(names)
                for name in names:
                    self._ready.put(name)
            elif item == "clean" and len(self._used) >= BATCH:
                batch, self._used = self._used, []
                delete_vhosts(batch)

    def take(self) -> str:
        name = self._ready.get(timeout=300)
        self._todo.put("refill")
        return name

    def give_back(self, name: str) -> None:
        self._used.append(name)
        self._todo.put("clean")

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join(timeout=300)
        leftovers = self._used + list(self._drain_ready())
        if leftovers:
            delete_vhosts(leftovers)

    def _drain_ready(self) -> list[str]:
        names = []
        while True:
            try:
                names.append(self._ready.get_nowait())
            except queue.Empty:
                return names
