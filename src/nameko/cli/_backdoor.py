"""The backdoor: a Python console inside a running service process, over TCP.

How it works: one listening socket and an accept thread (``backdoor``);
each client gets a thread of its own (``backdoor-session``). That thread
first asks for the backdoor's token (`_backdoor_auth`): the client's first
line, read within `HANDSHAKE_DEADLINE` seconds and at most
`MAX_TOKEN_LINE` bytes, must be it, or the connection is closed having run
nothing (an HTTP request, as a web page would send, is logged as such).
Then it runs a `code.InteractiveConsole` whose input is read from its
socket and whose output has the config's secrets masked. At most
`MAX_CLIENTS` connections are served at once; more are closed on arrival.

What the console and the code typed into it print goes to ``sys.stdout`` and
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
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from nameko._concurrency import Lock, current_thread, deadline_after, remaining, start_thread
from nameko.cli._backdoor_auth import (
    Masker,
    check_token,
    looks_like_http,
    new_token,
    remove_token,
    token_path,
    write_token,
)

__all__ = ["REFUSED", "TOKEN_PROMPT", "Backdoor", "parse_backdoor_address"]

_log = logging.getLogger("nameko.cli.backdoor")
LOOPBACK = "127.0.0.1"
TOKEN_PROMPT = b"backdoor token: "
REFUSED = b"refused: wrong token\n"
HANDSHAKE_DEADLINE = 15.0  # seconds to send the token line (a person may paste it)
MAX_TOKEN_LINE = 128  # bytes; the token is 43
MAX_CLIENTS = 16  # connections at once, in the handshake or in a session
REFUSAL_LOG_INTERVAL = 10.0  # seconds: one log line for a burst of refusals


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
    def __init__(self, conn: socket.socket, mask: Callable[[str], str]) -> None:
        self.conn = conn
        self.mask = mask

    def write(self, text: str) -> int:
        try:
            self.conn.sendall(self.mask(text).encode("utf-8", "replace"))
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


class _Refusals:
    """Logs refused connections, at most one line per `REFUSAL_LOG_INTERVAL`
    (a page in a loop must not flood the service's log)."""

    def __init__(self) -> None:
        self._last = -REFUSAL_LOG_INTERVAL
        self._quiet = 0
        self._lock = Lock()

    def __call__(self, peer: Any, why: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < REFUSAL_LOG_INTERVAL:
                self._quiet += 1
                return
            quiet, self._quiet, self._last = self._quiet, 0, now
        more = f" ({quiet} more refused since the last line)" if quiet else ""
        _log.warning("backdoor: refused %s: %s; nothing was run%s", _peer(peer), why, more)


class Backdoor:
    """Listen on ``(host, port)`` and serve a console per client that sends
    the token, with ``namespace`` (copied per session) in scope and the
    strings in ``hidden`` masked in what a session prints."""

    def __init__(
        self,
        host: str,
        port: int,
        namespace: dict[str, Any],
        *,
        hidden: Iterable[str] = (),
        token_dir: Path | None = None,
    ) -> None:
        self.namespace = namespace
        self._mask = Masker(hidden)
        self._listener = socket.create_server((host, port))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._token = new_token()
        self.token_file = token_path(self.address[1], token_dir)
        try:
            write_token(self.token_file, self._token)
        except OSError:
            self._listener.close()
            raise
        self._sessions: set[socket.socket] = set()
        self._lock = Lock()
        self._refused = _Refusals()
        start_thread(self._accept, "backdoor")

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                full = len(self._sessions) >= MAX_CLIENTS
                if not full:
                    self._sessions.add(conn)
            if full:
                self._refused(peer, f"{MAX_CLIENTS} connections are open already")
                _close(conn)
                continue
            start_thread(self._serve, "backdoor-session", conn, peer)

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        try:
            if self._handshake(conn, peer):
                self._session(conn, peer)
        finally:
            with self._lock:
                self._sessions.discard(conn)
            _close(conn)

    def _handshake(self, conn: socket.socket, peer: Any) -> bool:
        """True once the client's first line is the token; nothing else runs before."""
        try:
            conn.sendall(TOKEN_PROMPT)
            line = _first_line(conn, deadline_after(HANDSHAKE_DEADLINE))
        except TimeoutError:
            self._refused(peer, f"no token within {HANDSHAKE_DEADLINE:g}s")
            return False
        except OSError:
            return False
        if check_token(line, self._token):
            conn.settimeout(None)
            return True
        if looks_like_http(line):
            self._refused(peer, "it sent an HTTP request (a web page?)")
        else:
            self._refused(peer, "wrong token")
            try:
                conn.sendall(REFUSED)
            except OSError:
                pass
        return False

    def _session(self, conn: socket.socket, peer: Any) -> None:
        _log.info("backdoor session from %s", _peer(peer))
        writer = _SocketWriter(conn, self._mask)
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
            _log.info("backdoor session from %s ended", _peer(peer))

    def close(self) -> None:
        _close(self._listener)
        remove_token(self.token_file, self._token)
        with self._lock:
            sessions = list(self._sessions)
        for conn in sessions:
            _close(conn)


def _first_line(conn: socket.socket, deadline: float | None) -> bytes:
    """The client's first line, within ``deadline`` in all (not per byte) and
    `MAX_TOKEN_LINE` bytes. Byte by byte, so what follows it stays in the
    socket for the console."""
    line = b""
    while len(line) < MAX_TOKEN_LINE:
        left = remaining(deadline)
        if not left:
            raise TimeoutError
        conn.settimeout(left)
        byte = conn.recv(1)
        if not byte or byte == b"\n":
            break
        line += byte
    return line


def _peer(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


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
