"""Per-test RabbitMQ vhosts (shipped for users' tests too).

Vhosts are made through the management HTTP API when it answers, else with
``rabbitmqctl`` (the management plugin may be off, as it is on our CI
broker). Each ``rabbitmqctl`` invocation starts an Erlang VM (about half a
second of CPU), so vhosts are created and deleted in batches with one
``rabbitmqctl eval`` each, by a background thread that keeps a few ready
ahead of the tests. Where ``eval`` is refused (another RabbitMQ version's
internals), it falls back to one ``add_vhost`` + ``set_permissions`` per
vhost. When neither way works, `VhostPool.take` raises `VhostsUnavailable`
at once, saying what was tried, instead of waiting for vhosts that never come.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import subprocess
from typing import Any, Protocol

from nameko._concurrency import start_thread

AMQP_HOST = os.environ.get("SHIMEJI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")  # no vhost
USER = "guest"
BATCH = 12  # vhosts made per rabbitmqctl call
LOW_WATER = 4  # refill when fewer are ready
ACTING_USER = '<<"shimeji-tests">>'
TAKE_TIMEOUT = 300  # a batch normally takes a second or two; this only bounds a stuck broker


class VhostsUnavailable(RuntimeError):
    """No way to create vhosts worked (management API, rabbitmqctl)."""


def rabbitmqctl(*args: str) -> str:
    out = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120
    )
    return out.stdout


def _erlang_list(names: list[str]) -> str:
    return "[" + ", ".join(f'<<"{name}">>' for name in names) + "]"


def create_vhosts(names: list[str], user: str = USER) -> None:
    script = (
        f"lists:foreach(fun(V) -> rabbit_vhost:add(V, {ACTING_USER}), "
        f'rabbit_auth_backend_internal:set_permissions(<<"{user}">>, V, <<".*">>, <<".*">>, '
        f'<<".*">>, {ACTING_USER}) end, {_erlang_list(names)}), ok.'
    )
    try:
        rabbitmqctl("eval", script)
    except subprocess.CalledProcessError:
        for name in names:
            rabbitmqctl("add_vhost", name)
            rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


def delete_vhosts(names: list[str]) -> None:
    script = f"lists:foreach(fun(V) -> catch rabbit_vhost:delete(V, {ACTING_USER}) end, {_erlang_list(names)}), ok."
    try:
        rabbitmqctl("eval", script)
    except subprocess.CalledProcessError:
        for name in names:
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=120
            )


class VhostAdmin(Protocol):
    """One way of making and removing vhosts."""

    description: str

    def create(self, names: list[str]) -> None: ...

    def delete(self, names: list[str]) -> None: ...


class RabbitmqctlAdmin:
    description = "rabbitmqctl"

    def __init__(self, user: str = USER) -> None:
        self.user = user

    def create(self, names: list[str]) -> None:
        create_vhosts(names, self.user)

    def delete(self, names: list[str]) -> None:
        delete_vhosts(names)


class ManagementApiAdmin:
    """Through the management API: one HTTP request per vhost, no Erlang VM."""

    def __init__(self, client: Any, user: str = USER, uri: str = "") -> None:
        self.client = client
        self.user = user
        self.description = f"the management API at {uri}"

    def create(self, names: list[str]) -> None:
        for name in names:
            self.client.create_vhost(name)
            self.client.set_vhost_permissions(name, self.user, ".*", ".*", ".*")

    def delete(self, names: list[str]) -> None:
        for name in names:
            try:
                self.client.delete_vhost(name)
            except Exception:  # gone already; the others must still go
                pass


def choose_admin(api_uri: str | None, user: str = USER) -> VhostAdmin:
    """The management API if it answers, else rabbitmqctl if it is on PATH;
    `VhostsUnavailable` naming both attempts otherwise."""
    tried = []
    if api_uri:
        from nameko._urls import sanitize_url

        try:
            from nameko.testing._rabbit_api import Client

            return ManagementApiAdmin(Client(api_uri), user, sanitize_url(api_uri))
        except Exception as exc:  # ImportError (no requests) included
            tried.append(f"the management API at {sanitize_url(api_uri)}: {exc}")
    if shutil.which("rabbitmqctl"):
        return RabbitmqctlAdmin(user)
    tried.append("rabbitmqctl: not found on PATH")
    raise VhostsUnavailable(_failure_message(tried))


def _failure_message(tried: list[str]) -> str:
    return "cannot create RabbitMQ vhosts for the tests; tried " + "; ".join(tried)


class _Failed:
    """Put in the ready queue in place of a vhost when making them failed."""

    def __init__(self, error: VhostsUnavailable) -> None:
        self.error = error


class VhostPool:
    """Vhosts made ahead of the tests, and deleted in batches after them.

    ``admin`` defaults to `choose_admin` (``api_uri``, then rabbitmqctl),
    run on the pool's thread so that a session that needs no vhost never
    probes anything."""

    def __init__(
        self, api_uri: str | None = None, user: str = USER, admin: VhostAdmin | None = None
    ) -> None:
        self._api_uri = api_uri
        self._user = user
        self._admin = admin
        self._ready: queue.Queue[str | _Failed] = queue.Queue()
        self._used: list[str] = []
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._thread = start_thread(self._work, "vhost-pool")
        self._todo.put("refill")

    @staticmethod
    def _new_name() -> str:
        return "shimeji_test_" + secrets.token_hex(5)

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            try:
                self._do(item)
            except Exception as exc:  # reported to every take(), never lost in this thread
                self._ready.put(_Failed(self._as_unavailable(exc)))
                return

    def _as_unavailable(self, exc: Exception) -> VhostsUnavailable:
        if isinstance(exc, VhostsUnavailable):
            return exc
        detail = getattr(exc, "stderr", None) or exc
        how = self._admin.description if self._admin else "?"
        return VhostsUnavailable(_failure_message([f"{how}: {detail}"]))

    def _do(self, item: str) -> None:
        if self._admin is None:
            self._admin = choose_admin(self._api_uri, self._user)
        if item == "refill" and self._ready.qsize() < LOW_WATER:
            names = [self._new_name() for _ in range(BATCH)]
            self._admin.create(names)
            for name in names:
                self._ready.put(name)
        elif item == "clean" and len(self._used) >= BATCH:
            batch, self._used = self._used, []
            self._admin.delete(batch)

    def take(self) -> str:
        try:
            item = self._ready.get(timeout=TAKE_TIMEOUT)
        except queue.Empty:
            raise VhostsUnavailable(f"no vhost was made within {TAKE_TIMEOUT} s") from None
        if isinstance(item, _Failed):
            self._ready.put(item)  # for the next test too
            raise item.error
        self._todo.put("refill")
        return item

    def give_back(self, name: str) -> None:
        self._used.append(name)
        self._todo.put("clean")

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join(timeout=TAKE_TIMEOUT)
        leftovers = self._used + self._drain_ready()
        if leftovers and self._admin is not None:
            self._admin.delete(leftovers)

    def _drain_ready(self) -> list[str]:
        names: list[str] = []
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                return names
            if isinstance(item, str):
                names.append(item)
