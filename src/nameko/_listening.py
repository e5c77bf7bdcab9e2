"""The one-line error for a listener that cannot bind its address."""

from __future__ import annotations

import os

from nameko.exceptions import ConfigurationError

__all__ = ["CannotListen", "format_address"]


def format_address(host: str, port: int) -> str:
    """``host:port``, ``[v6]:port``; an empty host is every interface."""
    host = host or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class CannotListen(ConfigurationError, OSError):
    """``cannot listen on HOST:PORT (reason); FIX``.

    An `OSError` with the bind error's ``errno``, for code that catches the
    bind error itself, and a `ConfigurationError`, which the CLI prints as one
    ``Error:`` line rather than a traceback through the start-up code."""

    def __init__(self, host: str, port: int, error: OSError, fix: str) -> None:
        super().__init__(error.errno, error.strerror)
        # the errno's own text: socket.create_server appends the address to strerror
        reason = (os.strerror(error.errno) if error.errno else str(error)).lower()
        self.message = f"cannot listen on {format_address(host, port)} ({reason}); {fix}"

    def __str__(self) -> str:
        return self.message
