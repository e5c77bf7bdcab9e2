"""The web server: keep-alive, pipelining, shared addresses, limits, overload, stop."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from nameko._concurrency import Event
from nameko.exceptions import ConfigurationError
from nameko.web.handlers import http
from tests.waiting import refuses_connections, wait_until

RELEASE_TIMEOUT = 10


class Service:
    name = "server_test"
    gate = Event()  # the blocking handler waits on it; tests set it
    entered = Event()

    @http("GET", "/echo/<value>")
    def echo(self, request, value):
        return value

    @http("POST", "/size")
    def size(self, request):
        return str(len(request.get_data()))

    @http("GET", "/block")
    def block(self, request):
        Service.entered.set()
        assert Service.gate.wait(RELEASE_TIMEOUT)
        return "released"


@pytest.fixture(autouse=True)
def fresh_gate():
    Service.gate = Event()
    Service.entered = Event()
    yield
    Service.gate.set()  # never leave a worker blocked


def get(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"


def test_keep_alive_serves_many_requests_on_one_connection(start, raw):
    start(Service)
    client = raw()
    for i in range(5):
        client.send(get(b"/echo/%d" % i))
        (response,) = client.responses(1)
        assert (response.status, response.body) == (200, b"%d" % i)
        assert "connection" not in response.headers


def test_pipelined_requests_are_answered_in_order(start, raw):
    start(Service)
    client = raw()
    client.send(b"".join(get(b"/echo/%d" % i) for i in range(20)))
    assert [r.body for r in client.responses(20)] == [b"%d" % i for i in range(20)]


def test_a_half_closed_client_still_gets_its_answers(start, raw):
    start(Service)
    client = raw()
    client.send(b"".join(get(b"/echo/%d" % i) for i in range(3)))
    client.sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc` does
    assert [r.body for r in client.responses(3)] == [b"0", b"1", b"2"]
    assert client.closed_by_server()


def test_http10_and_connection_close_are_honoured(start, raw):
    start(Service)
    client = raw()
    client.send(b"GET /echo/a HTTP/1.0\r\n\r\n")
    (response,) = client.responses(1)
    assert response.body == b"a" and response.headers["connection"] == "close"
    assert client.closed_by_server()


def test_chunked_upload_and_expect_continue(start, raw):
    start(Service)
    client = raw()
    client.send(b"POST /size HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert client.responses(1)[0].body == b"3"
    client.send(b"POST /size HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert client.sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    client.send(b"data")
    assert client.responses(1)[0].body == b"4"


# -- several services, one address -------------------------------------------------------


class Other:
    name = "other"

    @http("GET", "/other")
    def other(self, request):
        return "other"


class Clash:
    name = "clash"

    @http("GET,POST", "/echo/<value>")
    def echo(self, request, value):
        return "clash"


def test_two_services_share_one_address_and_one_route_table(start, web_session):
    start(Service)
    start(Other)
    for _ in range(20):  # nameko 2.14 would 404 about half of these
        assert web_session.get("/other").text == "other"
        assert web_session.get("/echo/x").text == "x"
    assert web_session.get("/missing").status_code == 404


def test_a_route_claimed_twice_fails_the_start(start):
    start(Service)
    with pytest.raises(
        ConfigurationError,
        match=r"route `GET,HEAD /echo/<value>` is claimed twice: by `server_test` and by `clash`",
    ):
        start(Clash)


def test_the_address_outlives_one_of_its_services(start, web_session):
    first = start(Service)
    start(Other)
    first.stop()
    assert web_session.get("/other").text == "other"
    assert web_session.get("/echo/x").status_code == 404


# -- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,config,status",
    [
        (b"POST /size HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", {"WEB_MAX_BODY_SIZE": 1000}, 413),
        (get(b"/echo/" + b"a" * 300), {"WEB_MAX_URL_LENGTH": 200}, 414),
        (get(b"/echo/a", b"X-Big: " + b"v" * 3000 + b"\r\n"), {"WEB_MAX_HEADER_SIZE": 2000}, 431),
        (get(b"/echo/a", b"X: v\r\n" * 30), {"WEB_MAX_HEADER_COUNT": 20}, 431),
        (get(b"/echo/%ff%fe"), {}, 400),
        (get(b"/echo/\xc3\xa9"), {}, 400),
        (b"NOT A REQUEST\r\n\r\n", {}, 400),
    ],
    ids=["body", "url", "header-size", "header-count", "non-utf8", "raw-non-ascii", "garbage"],
)
def test_limits_and_bad_requests(start, raw, data, config, status):
    start(Service, **config)
    client = raw()
    client.send(data)
    (response,) = client.responses(1)
    assert response.status == status
    assert b"Traceback" not in response.body
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()


def test_a_body_under_the_limit_is_served(start, web_session):
    start(Service, WEB_MAX_BODY_SIZE=1000)
    assert web_session.post("/size", data=b"x" * 1000).text == "1000"
    assert web_session.post("/size", data=b"x" * 1001).status_code == 413


def test_trickled_headers_time_out_while_others_are_served(start, raw, web_session):
    start(Service, WEB_HEADER_TIMEOUT=1)
    slow = raw()
    slow.send(b"GET /echo/slow HTTP/1.1\r\n")
    for i in range(10):  # the slow client holds nothing the others need
        assert web_session.get(f"/echo/{i}").text == str(i)
    slow.send(b"X-Trickle: 1\r\n")  # progress does not extend the deadline
    (response,) = slow.responses(1)
    assert response.status == 408
    assert slow.closed_by_server()


def test_a_trickled_body_times_out(start, raw):
    start(Service, WEB_BODY_TIMEOUT=0.5)
    slow = raw()
    slow.send(b"POST /size HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
    (response,) = slow.responses(1)
    assert response.status == 408 and slow.closed_by_server()


def test_idle_keep_alive_connections_are_closed(start, raw):
    start(Service, WEB_KEEPALIVE_TIMEOUT=0.3)
    client = raw()
    client.send(get(b"/echo/a"))
    assert client.responses(1)[0].body == b"a"
    assert client.closed_by_server()


def test_connections_over_the_cap_get_503(start, raw, web_config_port):
    start(Service, WEB_MAX_CONNECTIONS=2)
    held = [raw(), raw()]
    for client in held:
        client.send(get(b"/echo/held"))
        client.responses(1)
    extra = raw()
    (response,) = extra.responses(1)
    assert response.status == 503 and "WEB_MAX_CONNECTIONS" in response.body.decode()
    held[0].close()
    url = f"http://127.0.0.1:{web_config_port}/echo/freed"
    wait_until(lambda: _ok(url), timeout=5, what="a closed connection frees a slot")


def _ok(url: str) -> bool:
    try:
        return requests.get(url).status_code == 200
    except requests.ConnectionError:  # refused while at the cap
        return False


# -- overload ------------------------------------------------------------------------------


def test_past_the_queue_limit_requests_get_503_with_retry_after(start, web_config_port, caplog):
    container = start(Service, max_workers=1, WEB_QUEUE_LIMIT=1)
    url = f"http://127.0.0.1:{web_config_port}"
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(requests.get, f"{url}/block")
        assert Service.entered.wait(RELEASE_TIMEOUT)
        queued = pool.submit(requests.get, f"{url}/echo/queued")
        wait_until(lambda: container._worker_pool.pending == 1, timeout=5, what="one queued")
        assert _refused(url)
        wait_until(lambda: "web server overloaded: requests refused" in caplog.text, timeout=5)
        Service.gate.set()
        assert running.result().text == "released"
        assert queued.result().text == "queued"
    assert requests.get(f"{url}/echo/after").text == "after"


def _refused(url: str) -> bool:
    response = requests.get(f"{url}/echo/third", timeout=5)
    assert response.status_code == 503 and "overloaded" in response.text
    return response.headers["Retry-After"] == "1"


# -- graceful stop -------------------------------------------------------------------------


def test_graceful_stop_answers_in_flight_requests_after_closing_the_listener(
    start, web_config_port
):
    container = start(Service)
    url = f"http://127.0.0.1:{web_config_port}"
    with ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(requests.get, f"{url}/block")
        assert Service.entered.wait(RELEASE_TIMEOUT)
        stopping = pool.submit(container.stop)
        wait_until(lambda: refuses_connections(web_config_port), timeout=5, what="listener closed")
        assert not stopping.done()
        Service.gate.set()
        assert in_flight.result().text == "released"
        stopping.result(timeout=RELEASE_TIMEOUT)


# -- found in review: ordering and ownership corner cases ---------------------------------


class Big:
    name = "big"

    @http("GET", "/big")
    def big(self, request):
        return "x" * (4 * 1024 * 1024)


def test_requests_before_a_malformed_one_are_answered_first(start, raw):
    start(Service)
    client = raw()
    client.send(get(b"/echo/first") + b"NOT HTTP\r\n\r\n")
    first, error = client.responses(2)
    assert (first.status, first.body, error.status) == (200, b"first", 400)
    assert client.closed_by_server()


def test_100_continue_waits_for_the_answers_ahead_of_it(start, raw):
    start(Service)
    client = raw()
    client.send(
        get(b"/block") + b"POST /size HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    assert Service.entered.wait(RELEASE_TIMEOUT)
    Service.gate.set()
    blocked, interim = client.responses(2)  # the 200 first, then the 100 for the POST
    assert (blocked.status, blocked.body, interim.status) == (200, b"released", 100)
    client.send(b"ok")
    assert client.responses(1)[0].body == b"2"


def test_a_slow_request_behind_a_large_response_keeps_its_connection(start, raw):
    start(Big, WEB_BODY_TIMEOUT=0.5)
    start(Service)  # shares the address
    client = raw()
    client.send(get(b"/big") + get(b"/block"))
    assert Service.entered.wait(RELEASE_TIMEOUT)
    big = client.responses(1)[0]
    assert len(big.body) == 4 * 1024 * 1024
    Event().wait(1.0)  # no event to wait for: time passes the old write deadline, unfired
    Service.gate.set()
    assert client.responses(1)[0].body == b"released"


def test_a_request_dropped_by_a_kill_is_answered_503(start, web_config_port):
    container = start(Service, max_workers=1)  # alone: requests queue on its own pool
    url = f"http://127.0.0.1:{web_config_port}"
    with ThreadPoolExecutor(2) as pool:
        pool.submit(requests.get, f"{url}/block")
        assert Service.entered.wait(RELEASE_TIMEOUT)
        queued = pool.submit(requests.get, f"{url}/echo/queued", timeout=10)
        wait_until(lambda: container._worker_pool.pending == 1, timeout=5, what="one queued")
        start(Other)  # keeps the address open after the kill
        container.kill()
        assert queued.result().status_code == 503
        Service.gate.set()


def test_the_access_log_masks_secret_query_values(start, web_session, caplog):
    caplog.set_level(logging.INFO, logger="nameko.web.server")
    start(Service)
    assert web_session.get("/echo/x?token=Tok-1234&page=2&api_key=Key-5678").text == "x"
    assert web_session.get("/echo/plain").text == "plain"

    def access_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if '"GET /echo/' in r.getMessage()]

    wait_until(lambda: len(access_lines()) == 2, what="two access log lines")
    masked, plain = access_lines()
    assert "/echo/x?token=********&page=2&api_key=********" in masked
    assert "Tok-1234" not in caplog.text and "Key-5678" not in caplog.text
    assert '"GET /echo/plain" 200' in plain
