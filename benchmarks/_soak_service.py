"""The service ``soak.py`` runs in two ``nameko run`` processes at once.

Both instances share the RPC queue of ``soak`` and the ``SERVICE_POOL``
queue of its event handler. Every execution is appended to a file of this
process's own, ``$SOAK_RECORDS/<pid>.log``, one line per execution, with one
``os.write`` on an ``O_APPEND`` descriptor: once the call returns the line
is in the kernel's page cache, so a SIGKILL right after it cannot lose it,
and lines of concurrent workers never interleave. Lines:

- ``r <id>``: ``work(id)`` ran;
- ``e <id> <ms> <sent>``: the ``tick`` event ``id`` was handled, ``ms``
  after the client dispatched it at ``sent`` (wall clock; same machine);
- ``p``: ``pid()`` ran (the soak's readiness probe).

The file is created at the first execution, so its existence says that this
process consumes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from nameko.events import SERVICE_POOL, event_handler
from nameko.rpc import rpc

SOURCE = "soak_source"  # the standalone dispatcher sends its events as this service
EVENT_TYPE = "tick"


class _Records:
    """This process's append-only record file, opened at the first record."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        os.write(self._open(), line.encode())

    def _open(self) -> int:
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    path = os.path.join(os.environ["SOAK_RECORDS"], f"{os.getpid()}.log")
                    self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd


RECORDS = _Records()


class SoakService:
    name = "soak"

    @rpc
    def work(self, call_id: int) -> int:
        RECORDS.add(f"r {call_id}\n")  # before the reply: a kill after it is a duplicate
        return call_id

    @rpc
    def pid(self) -> int:
        RECORDS.add("p\n")
        return os.getpid()

    @event_handler(SOURCE, EVENT_TYPE, handler_type=SERVICE_POOL)
    def on_tick(self, payload: dict[str, Any]) -> None:
        sent = payload["sent"]
        RECORDS.add(f"e {payload['id']} {(time.time() - sent) * 1000:.2f} {sent:.6f}\n")
