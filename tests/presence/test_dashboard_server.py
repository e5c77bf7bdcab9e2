"""The dashboard's HTTP side in one process: the page, its JSON, errors.
The page in a real browser: tests/integration/test_dashboard.py."""

from __future__ import annotations

import json
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from nameko._presence.dashboard import Dashboard
from nameko._web.addresses import BindAddress
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.waiting import wait_until


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, name):
        return f"hello {name}"


@pytest.fixture
def dashboard(config):
    dashboard = Dashboard(config, BindAddress("127.0.0.1", 0), refresh=0.2)
    dashboard.start()
    yield f"http://127.0.0.1:{dashboard.port}"
    dashboard.close()


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    try:
        with urlopen(Request(url, method=method), timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def cluster(url):
    return json.loads(get(url + "/api/cluster")[2])


def test_the_page_and_its_json(config, announced, dashboard):
    status, kind, body = get(dashboard + "/")
    assert status == 200 and kind.startswith("text/html") and b"shimeji cluster" in body
    announced(Greeter)
    wait_until(lambda: cluster(dashboard)["services"], timeout=10, what="an announcement")
    with ClusterRpcProxy(config, timeout=10) as proxy:
        for _ in range(5):
            proxy.greeter.hello("ann")

    def hello():
        return cluster(dashboard)["services"][0]["entrypoints"][0]

    wait_until(lambda: hello()["calls"] == 5 and hello()["rate"] > 0, timeout=10, what="rates")
    view = cluster(dashboard)
    [service] = view["services"]
    assert service["name"] == "greeter" and service["state"] == "running"
    assert service["instances"][0]["max_workers"] == 10
    assert hello()["mean_ms"] is not None and hello()["p95_ms"] is not None


def test_unknown_paths_and_methods(dashboard):
    assert get(dashboard + "/nothing")[0] == 404
    assert get(dashboard + "/api/cluster", "POST")[0] == 405


class Login:
    name = "login"

    @rpc
    def check(self, user, password="Def4ult-PW"):
        return user


def test_the_json_never_carries_default_values(announced, dashboard):
    announced(Login)
    wait_until(lambda: cluster(dashboard)["services"], timeout=10, what="an announcement")
    body = get(dashboard + "/api/cluster")[2]
    assert b"Def4ult-PW" not in body
    [check] = json.loads(body)["services"][0]["entrypoints"]
    assert check["signature"] == "(user, password=...)"
