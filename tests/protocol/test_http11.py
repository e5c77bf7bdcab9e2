"""The HTTP/1.1 parser and renderer, bytes in and bytes out (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko._web.http11 import HttpError, RequestParser, render_response, simple_response
from nameko._web.limits import WebLimits

GET = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"


def parse(data: bytes, **limits):
    return RequestParser(WebLimits(**limits)).feed(data)


def test_one_request():
    (request,) = parse(GET)
    assert (request.method, request.target, request.version) == ("GET", b"/a?x=1", "1.1")
    assert request.headers == [(b"Host", b"h")]
    assert request.keep_alive and not request.upgrade


def test_pipelined_requests_come_out_in_order():
    requests = parse(GET + b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + GET)
    assert [(r.method, r.body) for r in requests] == [("GET", b""), ("POST", b"abc"), ("GET", b"")]


@given(st.integers(min_value=1, max_value=40))
def test_any_split_of_the_bytes_gives_the_same_requests(size):
    data = GET + b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    parser = RequestParser(WebLimits())
    got = []
    for i in range(0, len(data), size):
        got += parser.feed(data[i : i + size])
    assert [(r.target, r.body) for r in got] == [(b"/a?x=1", b""), (b"/b", b"hello")]
    assert not parser.in_request


def test_chunked_body_is_joined():
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse(data)[0].body == b"abcde"


def test_http10_closes_unless_asked():
    assert not parse(b"GET / HTTP/1.0\r\n\r\n")[0].keep_alive
    assert parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0].keep_alive
    assert not parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")[0].keep_alive


def test_partial_request_is_reported_for_timeouts():
    parser = RequestParser(WebLimits())
    assert parser.feed(b"GET / HTTP/1.1\r\nHo") == []
    assert parser.in_request and not parser.headers_complete
    parser.feed(b"st: h\r\nContent-Length: 4\r\n\r\nab")
    assert parser.headers_complete


def test_upgrade_keeps_the_bytes_that_follow():
    data = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
    (request,) = parse(data)
    assert request.upgrade and request.trailing == b"\x81\x00"


def test_expect_continue_is_noticed_after_the_headers():
    parser = RequestParser(WebLimits())
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert parser.expects_continue
    assert parser.feed(b"ok")[0].body == b"ok"
    assert not parser.expects_continue


@pytest.mark.parametrize(
    "data,limits,status",
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", {"max_body_size": 10}, 413),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n",
            {"max_body_size": 10},
            413,
        ),
        (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", {"max_url_length": 50}, 414),
        (b"GET / HTTP/1.1\r\nX: " + b"v" * 200 + b"\r\n\r\n", {"max_header_size": 100}, 431),
        (b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * 11 + b"\r\n", {"max_header_count": 10}, 431),
        (b"GARBAGE\r\n\r\n", {}, 400),
        (b"GET /\xff\xfe HTTP/1.1\r\n\r\n", {}, 400),
        (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", {}, 400),
    ],
    ids=["length", "chunked", "url", "header-size", "header-count", "method", "non-ascii", "cl"],
)
def test_limits_and_bad_requests_raise_the_status_to_answer(data, limits, status):
    with pytest.raises(HttpError) as raised:
        parse(data, **limits)
    assert raised.value.status == status


def test_render_adds_length_date_and_connection_close():
    data = render_response("200 OK", [("X-A", "1")], b"hey", keep_alive=False, head=False)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK" and body == b"hey"
    assert b"Content-Length: 3" in lines and b"Connection: close" in lines
    assert any(line.startswith(b"Date: ") for line in lines)


def test_render_head_has_no_body_and_keeps_the_length():
    data = render_response("200 OK", [("Content-Length", "3")], b"hey", keep_alive=True, head=True)
    assert data.endswith(b"\r\n\r\n") and b"Content-Length: 3" in data
    assert b"Connection" not in data


def test_render_drops_framing_headers_of_the_app():
    headers = [("Transfer-Encoding", "chunked"), ("Connection", "upgrade")]
    data = render_response("200 OK", headers, b"", keep_alive=True, head=False)
    assert b"chunked" not in data and b"upgrade" not in data


def test_simple_response_closes():
    data = simple_response(503, "Service Unavailable", "busy", ("Retry-After: 1",))
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Retry-After: 1" in data and b"Connection: close" in data
    assert data.endswith(b"Service Unavailable: busy\n")
