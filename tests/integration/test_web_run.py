"""`nameko run` with an HTTP service, as users run it: served, then stopped by SIGTERM."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import requests

from nameko.testing.utils import find_free_port
from tests.waiting import refuses_connections, wait_until


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_sigterm_closes_the_listener_answers_in_flight_requests_and_exits_0(nameko_run):
    port = find_free_port()
    proc = nameko_run(
        ["web_service"],
        files=["web_service.py"],
        config={"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"},
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{base}/hello/x"), timeout=30, what="the service answers")
    assert requests.get(f"{base}/hello/world").text == "hello world"
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(requests.get, f"{base}/slow/3", timeout=30)
        wait_until(lambda: "slow request started" in proc.output(), timeout=10)
        proc.signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(port), timeout=5, what="the listener closes first")
        assert not in_flight.done()
        response = in_flight.result()
    assert (response.status_code, response.text) == (200, "finished")
    assert proc.wait(30) == 0, proc.output()
    assert '"GET /hello/world" 200' in proc.output()  # the access log, at INFO
