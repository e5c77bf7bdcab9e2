"""flask-nameko 1.4.0, unchanged, on shimeji (pip install --no-deps).

`FlaskPooledClusterRpcProxy` reads the app's ``NAMEKO_*`` settings, keeps a
pool of clients made with ``ClusterRpcProxy(config, timeout=RPC_TIMEOUT)
.start()`` (the inner cluster proxy, wrapped in its `Connection`), lends one
per request (stored in ``flask.g``, given back on app-context teardown), and
reaches services with ``getattr(connection, service_name)``. The whole
``NAMEKO_*`` dict, its own keys included, is the client's config.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import flask_nameko
import pytest
from flask import Flask, jsonify
from flask_nameko.connection_pool import Connection

from nameko._concurrency import Event
from nameko.exceptions import RemoteError, RpcTimeout
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.compat.ext_support import TIMEOUT, assert_installed_on_shimeji

pytestmark = pytest.mark.rabbit


class Greeter:
    name = "greeter"

    release = Event()

    @rpc
    def hello(self, name):
        return f"Hello, {name}!"

    @rpc
    def fail(self):
        raise ValueError("boom")

    @rpc
    def slow(self):
        Greeter.release.wait(TIMEOUT)  # until the caller has timed out
        return "late"


def create_app(rpc_proxy, amqp_uri, **settings) -> Flask:
    """The README's app factory, with routes calling the service."""
    app = Flask(__name__)
    app.config.update(NAMEKO_AMQP_URI=amqp_uri, **settings)
    rpc_proxy.init_app(app)

    @app.route("/hello/<name>")
    def hello(name):
        return rpc_proxy.greeter.hello(name)

    @app.route("/twice/<name>")
    def twice(name):  # two calls in one request: one client, from flask.g
        service = rpc_proxy["greeter"]
        return jsonify([service.hello(name), service.hello(name.upper())])

    @app.route("/fail")
    def fail():
        try:
            rpc_proxy.greeter.fail()
        except RemoteError as exc:
            return jsonify(exc_type=exc.exc_type, value=exc.value), 502
        return "no error", 500

    @app.route("/slow")
    def slow():
        try:
            return rpc_proxy.greeter.slow()
        except RpcTimeout:
            return "timed out", 504

    return app


@pytest.fixture
def greeter(container_factory, rabbit_config):
    Greeter.release = Event()
    container = container_factory(Greeter, rabbit_config)
    container.start()
    yield container
    Greeter.release.set()


@pytest.fixture(autouse=True)
def clients(monkeypatch):
    """flask-nameko never stops the clients it makes (it keeps only what
    ``start()`` returns); note each one, and stop them after the test."""
    made: list[ClusterRpcProxy] = []

    class NotedClusterRpcProxy(ClusterRpcProxy):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(flask_nameko.proxies, "ClusterRpcProxy", NotedClusterRpcProxy)
    yield made
    for client in made:
        client.stop()


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("flask_nameko", "1.4.0")


def test_flask_app_calls_a_service_through_the_pool(greeter, rabbit_config, clients):
    proxy = flask_nameko.FlaskPooledClusterRpcProxy()
    app = create_app(
        proxy,
        rabbit_config["AMQP_URI"],
        NAMEKO_INITIAL_CONNECTIONS=1,
        NAMEKO_MAX_CONNECTIONS=3,
        NAMEKO_RPC_TIMEOUT=TIMEOUT,
    )
    pool = proxy._pool
    assert pool._queue.qsize() == 1 and pool._current_connections == 1
    connection = pool._queue.queue[0]
    assert isinstance(connection, Connection)
    # what ClusterRpcProxy(...).start() gave: the cluster proxy, connected
    assert connection.connection.greeter.hello("direct") == "Hello, direct!"
    assert proxy._config == {
        "AMQP_URI": rabbit_config["AMQP_URI"],
        "INITIAL_CONNECTIONS": 1,
        "MAX_CONNECTIONS": 3,
        "RPC_TIMEOUT": TIMEOUT,
    }

    client = app.test_client()
    response = client.get("/hello/ナメコ")
    assert (response.status_code, response.text) == (200, "Hello, ナメコ!")
    response = client.get("/twice/ann")
    assert response.json == ["Hello, ann!", "Hello, ANN!"]
    response = client.get("/fail")
    assert response.status_code == 502
    assert response.json == {"exc_type": "ValueError", "value": "boom"}
    # one request at a time: the one client served them all and came back
    assert pool._current_connections == 1 and pool._queue.queue[0] is connection

    def request(n: int) -> str:
        response = app.test_client().get(f"/hello/{n}")
        assert response.status_code == 200
        return response.text

    with ThreadPoolExecutor(6) as executor:
        texts = list(executor.map(request, range(30)))
    assert texts == [f"Hello, {n}!" for n in range(30)]
    # concurrent requests made more clients, never more than MAX_CONNECTIONS
    assert 1 <= pool._current_connections <= 3
    assert pool._queue.qsize() == pool._current_connections == len(clients)
    assert {c.config["RPC_TIMEOUT"] for c in clients} == {TIMEOUT}


def test_rpc_timeout_setting_reaches_the_client(greeter, rabbit_config):
    proxy = flask_nameko.FlaskPooledClusterRpcProxy()
    app = create_app(proxy, rabbit_config["AMQP_URI"], NAMEKO_RPC_TIMEOUT=0.5)
    response = app.test_client().get("/slow")
    assert (response.status_code, response.text) == (504, "timed out")
    Greeter.release.set()
    # the client is usable after a timeout; the late reply is dropped
    assert app.test_client().get("/hello/after").text == "Hello, after!"


def test_connect_on_access_gives_the_service_proxy_itself(greeter, rabbit_config):
    proxy = flask_nameko.FlaskPooledClusterRpcProxy(connect_on_method_call=False)
    app = create_app(proxy, rabbit_config["AMQP_URI"], NAMEKO_INITIAL_CONNECTIONS=1)
    with app.app_context():
        service = proxy.greeter  # borrows the client now, into flask.g
        assert repr(service) == "<proxy service: greeter>"
        assert service.hello("g") == "Hello, g!"
        assert proxy._pool._queue.empty()
    assert proxy._pool._queue.qsize() == 1  # teardown gave it back
