"""The backdoor: a Python console inside a running service process, over TCP.

How it works: one listening socket and an accept thread (``backdoor``);
each client gets a thread of its own (``backdoor-session``) running a
`code.InteractiveConsole` whose input is read from its socket. What the
console and the code typed into it print goes to ``sys.stdout`` and
``sys.stderr``; those are replaced, once, by streams that send a session
thread's writes to its socket and everybody else's to the real stream, so
several clients can work at once and the service's own output is left
where it was. ``exit()``, ``quit()`` and end of input (Ctrl-D) end the
session, never the service (nameko's eventlet backdoor refused them, and
``site``'s versions would close the process's stdin).
"""

from __future__ import annotations

import code
import logging
import socket
import sys
from typing import Any, TextIO

from nameko._concurrency import Lock, current_thread, start_thread

__all__ = ["Backdoor", "parse_backdoor_address"]

_log = logging.getLogger("nameko.cli.backdoor")
LOOPBACK = "127.0.0.1"


def parse_backdoor_address(text: str) -> tuple[str, int, bool]:
    """``[host:]port`` -> (host, port, host_given). No host means loopback."""
    host, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not a [host:]port: {text!r}")
    host = host.strip("[]") if sep else ""
    return host or LOOPBACK, int(port), bool(host)


_ROUTES: dict[Any, Any] = {}  # session thread -> its socket writer


class _Routed:
    """A ``sys.stdout``/``sys.stderr`` that writes each session's output to
    its socket: only session threads have a route."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def _target(self) -> Any:
        return _ROUTES.get(current_thread(), self.fallback)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


class _SocketWriter:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, text: str) -> int:
        try:
            self.conn.sendall(text.encode("utf-8", "replace"))
        except OSError:
            pass  # the client went away; its session ends at the next read
        return len(text)

    def flush(self) -> None:
        pass


class _EndSession(Exception):
    pass


def _leave(*args: Any) -> None:
    raise _EndSession


class _Console(code.InteractiveConsole):
    def __init__(self, namespace: dict[str, Any], reader: Any, writer: _SocketWriter) -> None:
        super().__init__(namespace, filename="<backdoor>")
        self.reader, self.writer = reader, writer

    def raw_input(self, prompt: str = "") -> str:
        self.writer.write(prompt)
        line = self.reader.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def write(self, data: str) -> None:
        self.writer.write(data)

    def runcode(self, code_object: Any) -> None:
        _route_std_streams()  # again: something (a test runner) may have swapped them
        try:
            exec(code_object, self.locals)
        except (_EndSession, SystemExit):
            raise _EndSession from None
        except BaseException:
            self.showtraceback()


class Backdoor:
    """Listen on ``(host, port)`` and serve a console per client, with
    ``namespace`` (copied per session) in scope."""

    def __init__(self, host: str, port: int, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self._listener = socket.create_server((host, port))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sessions: set[socket.socket] = set()
        self._lock = Lock()
        start_thread(self._accept, "backdoor")

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._sessions.add(conn)
            start_thread(self._session, "backdoor-session", conn, peer)

    def _session(self, conn: socket.socket, peer: Any) -> None:
        _log.info("backdoor session from %s:%s", *peer[:2])
        writer = _SocketWriter(conn)
        namespace = {**self.namespace, "exit": _leave, "quit": _leave}
        me = current_thread()
        _ROUTES[me] = writer
        _route_std_streams()
        try:
            with conn.makefile("r", encoding="utf-8", errors="replace") as reader:
                banner = f"shimeji backdoor, Python {sys.version.split()[0]}; in scope: "
                banner += ", ".join(sorted(self.namespace)) + ". exit() or Ctrl-D to leave."
                _Console(namespace, reader, writer).interact(banner, exitmsg="")
        except (_EndSession, OSError):
            pass
        finally:
            writer.write("\n")  # leave the client's terminal on a fresh line
            _ROUTES.pop(me, None)
            with self._lock:
                self._sessions.discard(conn)
            _close(conn)
            _log.info("backdoor session from %s:%s ended", *peer[:2])

    def close(self) -> None:
        _close(self._listener)
        with self._lock:
            sessions = list(self._sessions)
        for conn in sessions:
            _close(conn)


def _route_std_streams() -> None:
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        if not isinstance(current, _Routed):
            setattr(sys, name, _Routed(current))


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
