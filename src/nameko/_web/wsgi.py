"""From a parsed request to a WSGI environ, and from a WSGI app's answer to bytes.

The body is in memory by the time the app runs (it is capped by
``WEB_MAX_BODY_SIZE``), so ``wsgi.input`` is a `BytesIO` and the app's
response is collected whole and sent with a ``Content-Length``: no chunked
responses, no streaming (a deliberate limit, see docs/architecture.md D19).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from nameko._web.http11 import HttpError, HttpRequest, render_response

__all__ = ["WsgiApp", "build_environ", "call_wsgi"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_SPECIAL = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


def build_environ(request: HttpRequest, server: tuple[str, int], peer: Any) -> dict[str, Any]:
    path, _, query = _split_target(request.target)
    raw_path = unquote_to_bytes(path)
    try:
        raw_path.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "Bad Request", "request path is not UTF-8")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": raw_path.decode("latin-1"),  # WSGI carries bytes as latin-1
        "QUERY_STRING": query.decode("latin-1"),
        "REQUEST_URI": request.target.decode("latin-1"),
        "RAW_URI": request.target.decode("latin-1"),
        "SERVER_NAME": server[0] or "0.0.0.0",
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "REMOTE_ADDR": peer[0] if peer else "",
        "REMOTE_PORT": str(peer[1]) if peer else "",
        "CONTENT_LENGTH": str(len(request.body)),  # the body is whole, chunked or not
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    _add_headers(environ, request.headers)
    return environ


def _split_target(target: bytes) -> tuple[bytes, bytes, bytes]:
    if not target.startswith(b"/"):  # absolute form: http://host/path
        scheme, sep, rest = target.partition(b"://")
        target = (b"/" + rest.partition(b"/")[2]) if sep else b"/" + target
    return target.partition(b"?")


def _add_headers(environ: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        lower = name.lower()
        if lower in _SPECIAL:
            if lower == b"content-type":
                environ["CONTENT_TYPE"] = value.decode("latin-1")
            continue
        if b"_" in name:  # `X_Forwarded_For` must not pass for `X-Forwarded-For`
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text


def call_wsgi(app: WsgiApp, environ: dict[str, Any], keep_alive: bool) -> tuple[str, bytes]:
    """Run ``app``; its status line and its whole response, rendered."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        if "\n" in status or "\r" in status or "\0" in status:
            raise ValueError(f"newline in response status {status!r}")
        for name, value in headers:  # no response splitting through an app's header
            if "\n" in name or "\r" in name or "\n" in value or "\r" in value:
                raise ValueError(f"newline in response header {name!r}")
        started[:] = [status, headers]
        return _no_write

    body_iter = app(environ, start_response)
    try:
        body = b"".join(body_iter)
    finally:
        close = getattr(body_iter, "close", None)
        if close is not None:
            close()
    status, headers = started
    head = environ["REQUEST_METHOD"] == "HEAD"
    return status, render_response(status, headers, body, keep_alive=keep_alive, head=head)


def _no_write(data: bytes) -> None:
    raise NotImplementedError("write() from start_response is not supported; return the body")
