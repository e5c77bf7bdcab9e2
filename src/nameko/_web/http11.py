"""HTTP/1.1 without I/O: bytes in, requests out; a response in, bytes out.

`RequestParser` wraps httptools (llhttp, the parser in Node.js) and adds the
limits of `WebLimits`: it is fed whatever a socket read returned and hands
back every request completed so far, so keep-alive and pipelining are just
"keep feeding". A request that breaks a rule raises `HttpError` carrying the
status to answer with; the connection is closed after that answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import formatdate

import httptools

from nameko._web.limits import WebLimits

__all__ = ["HttpError", "HttpRequest", "RequestParser", "render_response", "simple_response"]


class HttpError(Exception):
    """The request can't be served; answer ``status`` and close."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.completed: list[HttpRequest] = []  # requests complete before the bad one


@dataclass
class HttpRequest:
    method: str
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    upgrade: bool = False
    trailing: bytes = b""  # bytes after an upgrade request: the new protocol's


@dataclass
class _Partial:
    url: bytearray = field(default_factory=bytearray)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    header_bytes: int = 0
    body: list[bytes] = field(default_factory=list)
    body_size: int = 0
    keep_alive: bool = True


class RequestParser:
    """One per connection; `feed` returns the requests completed by ``data``."""

    def __init__(self, limits: WebLimits) -> None:
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._partial: _Partial | None = None
        self._done: list[HttpRequest] = []
        self._error: HttpError | None = None
        self.headers_complete = False
        self.expects_continue = False  # set when a request asks for `100 Continue`

    @property
    def in_request(self) -> bool:
        """Part of a request has arrived (the timeouts care)."""
        return self._partial is not None

    def feed(self, data: bytes) -> list[HttpRequest]:
        try:
            self._feed(data)
        except HttpError as exc:
            exc.completed, self._done = self._done, []
            raise
        done, self._done = self._done, []
        return done

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0] if upgrade.args else len(data)
            if self._done:
                self._done[-1].upgrade = True
                self._done[-1].trailing = bytes(data[offset:])
        except httptools.HttpParserCallbackError:
            raise self._error or HttpError(400, "Bad Request", "malformed request")
        except httptools.HttpParserInvalidURLError:
            raise HttpError(400, "Bad Request", "request target is not valid (it must be ASCII)")
        except httptools.HttpParserError as exc:
            raise HttpError(400, "Bad Request", f"malformed request: {exc}")

    def _fail(self, status: int, reason: str, detail: str) -> None:
        self._error = HttpError(status, reason, detail)
        raise self._error

    @property
    def _current(self) -> _Partial:
        """The request being parsed: httptools calls `on_message_begin` first."""
        if self._partial is None:
            raise RuntimeError("httptools callback outside a message")
        return self._partial

    # -- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self._partial = _Partial()
        self.headers_complete = False
        self.expects_continue = False

    def on_url(self, url: bytes) -> None:
        partial = self._current
        partial.url += url
        if len(partial.url) > self._limits.max_url_length:
            self._fail(414, "URI Too Long", "request target longer than WEB_MAX_URL_LENGTH")

    def on_header(self, name: bytes, value: bytes) -> None:
        partial = self._current
        partial.headers.append((name, value))
        partial.header_bytes += len(name) + len(value) + 4
        if partial.header_bytes > self._limits.max_header_size:
            self._fail(431, "Request Header Fields Too Large", "headers exceed WEB_MAX_HEADER_SIZE")
        if len(partial.headers) > self._limits.max_header_count:
            self._fail(
                431, "Request Header Fields Too Large", "more headers than WEB_MAX_HEADER_COUNT"
            )

    def on_headers_complete(self) -> None:
        partial = self._current
        partial.keep_alive = self._parser.should_keep_alive()
        self.headers_complete = True
        length = _content_length(partial.headers)
        if length is not None and length > self._limits.max_body_size:
            self._fail(413, "Content Too Large", "body larger than WEB_MAX_BODY_SIZE")
        expect = _find(partial.headers, b"expect")
        self.expects_continue = expect is not None and expect.lower() == b"100-continue"

    def on_body(self, body: bytes) -> None:
        partial = self._current
        partial.body_size += len(body)
        if partial.body_size > self._limits.max_body_size:
            self._fail(413, "Content Too Large", "body larger than WEB_MAX_BODY_SIZE")
        partial.body.append(body)

    def on_message_complete(self) -> None:
        partial, self._partial = self._current, None
        self.headers_complete = False
        self.expects_continue = False
        self._done.append(
            HttpRequest(
                method=self._parser.get_method().decode("ascii"),
                target=bytes(partial.url),
                version=self._parser.get_http_version(),
                headers=partial.headers,
                body=b"".join(partial.body),
                keep_alive=partial.keep_alive,
            )
        )


def _find(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = _find(headers, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None  # llhttp rejects it on its own


# -- responses --------------------------------------------------------------------

_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:  # one formatting per second, not per response
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def render_response(
    status: str, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool, head: bool
) -> bytes:
    """The bytes of a complete response; ``head`` leaves the body out."""
    lines = [b"HTTP/1.1 " + status.encode("latin-1")]
    has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            has_length = True
        elif lower in ("connection", "transfer-encoding"):
            continue  # framing is ours: we always send the whole body with a length
        lines.append(f"{name}: {value}".encode("latin-1"))
    if not has_length:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Date: " + _http_date())
    if not keep_alive:
        lines.append(b"Connection: close")
    head_bytes = b"\r\n".join(lines) + b"\r\n\r\n"
    return head_bytes if head else head_bytes + body


def simple_response(status: int, reason: str, text: str, extra: tuple[str, ...] = ()) -> bytes:
    """A plain-text answer that closes the connection (errors the server gives itself)."""
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    headers += [(name, value) for name, _, value in (h.partition(": ") for h in extra)]
    body = f"{reason}: {text}\n".encode()
    return render_response(f"{status} {reason}", headers, body, keep_alive=False, head=False)
