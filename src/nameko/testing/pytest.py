"""pytest plugin (entry point ``pytest_nameko``): fixtures for testing services.

Compared with nameko's (SPEC 11.6, 12.7):

* no eventlet: ``--blocking-detection`` and
  ``--suppress-nameko-eventlet-notification`` are accepted and do nothing;
* per-test RabbitMQ vhosts are made through the management API when it
  answers, else with ``rabbitmqctl`` (the management plugin is not needed);
* both config styles at once: ``empty_config``, ``memory_config``,
  ``rabbit_config``, ``rabbit_ssl_config`` and ``web_config`` return a dict
  (nameko 2.x) *and* patch the global ``nameko.config`` for the test
  (nameko 3: ``@pytest.mark.usefixtures("rabbit_config")``);
  ``container_factory`` and ``runner_factory`` take either call style;
* ``memory_config`` runs services on the in-memory broker, no RabbitMQ.
"""

from __future__ import annotations

import itertools
import secrets
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import create_autospec, patch
from urllib.parse import urlsplit, urlunsplit

import pytest

from nameko import config as global_config
from nameko._urls import first_url, split_urls
from nameko.testing.utils import find_free_port

DEFAULT_AMQP_URI = "pyamqp://guest:guest@localhost:5672/"
DEFAULT_API_URI = "http://guest:guest@localhost:15672"
DEFAULT_SSL_PORT = 5671
DEFAULT_SSL_OPTIONS = [
    ("ca_certs", "certs/cacert.pem"),
    ("certfile", "certs/clientcert.pem"),
    ("keyfile", "certs/clientkey.pem"),
    ("cert_reqs", "CERT_REQUIRED"),
]


# -- options -------------------------------------------------------------------


def parse_ssl_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, VALUE parsed as YAML); a bare ``KEY`` -> (KEY, True)."""
    import yaml

    key, sep, value = text.partition("=")
    return (key, yaml.safe_load(value)) if sep else (key, True)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("nameko")
    group.addoption(
        "--amqp-uri",
        "--rabbit-amqp-uri",
        dest="RABBIT_AMQP_URI",
        default=DEFAULT_AMQP_URI,
        help="broker for rabbit_config; its vhost is ignored (one per test)",
    )
    group.addoption(
        "--rabbit-api-uri",
        "--rabbit-ctl-uri",
        dest="RABBIT_API_URI",
        default=DEFAULT_API_URI,
        help="RabbitMQ management API for rabbit_manager, and for per-test vhosts "
        "when it answers (else rabbitmqctl makes them)",
    )
    group.addoption(
        "--amqp-ssl-port",
        dest="AMQP_SSL_PORT",
        type=int,
        default=DEFAULT_SSL_PORT,
        help="broker TLS port for rabbit_ssl_config and rabbit_ssl_uri",
    )
    group.addoption(
        "--amqp-ssl-option",
        dest="AMQP_SSL_OPTIONS",
        type=parse_ssl_option,
        action="append",
        default=list(DEFAULT_SSL_OPTIONS),
        metavar="KEY=VALUE",
        help="an AMQP_SSL entry for rabbit_ssl_config (repeatable; VALUE is YAML; "
        "a bare KEY means True)",
    )
    group.addoption(
        "--blocking-detection",
        action="store_true",
        default=False,
        help="accepted for nameko 2.x compatibility; does nothing: there is no "
        "eventlet hub to block (shimeji runs workers on OS threads)",
    )
    group.addoption(
        "--suppress-nameko-eventlet-notification",
        action="store_true",
        default=False,
        help="accepted for nameko 2.x compatibility; does nothing: shimeji needs "
        "no eventlet monkey-patching, so it never warns about it",
    )


# -- config fixtures -------------------------------------------------------------


@pytest.fixture
def _nameko_config_guard() -> Iterator[None]:
    """Puts the global config back as it was, whatever order the fixtures
    patching it are torn down in (the factories patch it mid-test)."""
    with global_config.patch({}):
        yield


@pytest.fixture
def empty_config(_nameko_config_guard: None) -> Iterator[dict[str, Any]]:
    """``{}``; the global config is emptied for the test. Every other config
    fixture depends on this one, so it is always cleared first."""
    with global_config.patch({}, clear=True):
        yield {}


@pytest.fixture
def _nameko_web_address() -> str:
    """This test's ``WEB_SERVER_ADDRESS``: loopback, on a port free when it was
    picked. One per test, so `memory_config` and `web_config` agree on it."""
    return f"127.0.0.1:{find_free_port()}"


@pytest.fixture
def memory_config(
    empty_config: dict[str, Any], _nameko_web_address: str
) -> Iterator[dict[str, Any]]:
    """Config for an in-memory broker private to this test (no RabbitMQ),
    with ``WEB_SERVER_ADDRESS`` on a free loopback port (the one `web_config`,
    `web_config_port` and `web_session` use), never the default 8000."""
    values = {
        "AMQP_URI": f"memory://{secrets.token_hex(6)}",
        "WEB_SERVER_ADDRESS": _nameko_web_address,
    }
    with global_config.patch(values):
        yield values


@pytest.fixture
def web_config(empty_config: dict[str, Any], _nameko_web_address: str) -> Iterator[dict[str, Any]]:
    """The ``empty_config`` dict with ``WEB_SERVER_ADDRESS`` on a free port."""
    empty_config["WEB_SERVER_ADDRESS"] = _nameko_web_address
    with global_config.patch(empty_config):
        yield empty_config


@pytest.fixture
def web_config_port(web_config: dict[str, Any]) -> int:
    return int(web_config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1])


@pytest.fixture
def mock_container(empty_config: dict[str, Any]) -> Any:
    from nameko.containers import ServiceContainer

    container = create_autospec(ServiceContainer)
    container.config = dict(empty_config, serializer="json")
    container.serializer = "json"
    container.accept = ["json"]
    return container


# -- teardown order ----------------------------------------------------------------


class MadeInTest:
    """Containers and runners the factories made during one test."""

    def __init__(self) -> None:
        self._things: list[Any] = []

    def add(self, thing: Any) -> Any:
        self._things.append(thing)
        return thing

    def kill_all(self) -> None:
        """Kill newest first (idempotent: `kill` of a dead container returns)."""
        for thing in reversed(self._things):
            try:
                thing.kill()
            except Exception:  # teardown must go on
                pass


@pytest.fixture(autouse=True)
def fast_teardown() -> MadeInTest:
    """Every container and runner the factories make is registered here, and
    the per-test vhost's teardown kills them all *before* deleting the vhost.

    nameko 2.x's deleted the vhost first so that eventlet consumers would die
    quickly. Here the broker connections would instead start reconnecting to
    a vhost that is gone, so the order is the reverse: kill, then delete."""
    return MadeInTest()


# -- RabbitMQ ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def vhost_pipeline(request: Any) -> Iterator[Any]:
    """Vhosts made ahead of the tests, deleted after them in batches."""
    from nameko.testing._vhosts import VhostPool

    user = urlsplit(first_url(request.config.getoption("RABBIT_AMQP_URI"))).username or "guest"
    pool = VhostPool(api_uri=request.config.getoption("RABBIT_API_URI"), user=user)
    yield pool
    pool.close()


@pytest.fixture
def _nameko_vhost(vhost_pipeline: Any, fast_teardown: MadeInTest) -> Iterator[str]:
    """This test's vhost, shared by every RabbitMQ fixture the test uses."""
    vhost = vhost_pipeline.take()
    yield vhost
    fast_teardown.kill_all()
    vhost_pipeline.give_back(vhost)


def _uri_on(base: str, vhost: str, port: int | None = None) -> str:
    """``base`` on ``vhost``; every node of a ``;``-separated ``--amqp-uri``."""
    return ";".join(_node_on(uri, vhost, port) for uri in split_urls(base))


def _node_on(uri: str, vhost: str, port: int | None) -> str:
    parts = urlsplit(uri)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rpartition(':')[0] if parts.port else netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{vhost}", "", ""))


@pytest.fixture
def rabbit_config(
    request: Any, empty_config: dict[str, Any], _nameko_vhost: str
) -> Iterator[dict[str, Any]]:
    """``{'AMQP_URI': ..., 'username': ..., 'vhost': ...}`` on a fresh vhost,
    deleted after the test; also in the global config for the test."""
    base = request.config.getoption("RABBIT_AMQP_URI")
    values = {
        "AMQP_URI": _uri_on(base, _nameko_vhost),
        "username": urlsplit(first_url(base)).username,
        "vhost": _nameko_vhost,
    }
    with global_config.patch(values):
        yield values


@pytest.fixture
def rabbit_ssl_options(request: Any) -> dict[str, Any]:
    """The ``AMQP_SSL`` dict: ``--amqp-ssl-option`` entries over the defaults;
    a ``cert_reqs`` name such as ``CERT_REQUIRED`` becomes the `ssl` constant."""
    options = dict(request.config.getoption("AMQP_SSL_OPTIONS"))
    if isinstance(options.get("cert_reqs"), str):
        options["cert_reqs"] = getattr(ssl, options["cert_reqs"])
    return options


@pytest.fixture
def rabbit_ssl_config(
    request: Any,
    empty_config: dict[str, Any],
    _nameko_vhost: str,
    rabbit_ssl_options: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """Like `rabbit_config`, on the ``--amqp-ssl-port`` with ``AMQP_SSL``."""
    base = request.config.getoption("RABBIT_AMQP_URI")
    port = request.config.getoption("AMQP_SSL_PORT")
    values = {
        "AMQP_URI": _uri_on(base, _nameko_vhost, port),
        "username": urlsplit(first_url(base)).username,
        "vhost": _nameko_vhost,
        "AMQP_SSL": rabbit_ssl_options,
    }
    with global_config.patch(values):
        yield values


@pytest.fixture
def rabbit_uri(request: Any, _nameko_vhost: str) -> str:
    """nameko 3: the broker URI on this test's vhost (the one `rabbit_config` uses)."""
    return _uri_on(request.config.getoption("RABBIT_AMQP_URI"), _nameko_vhost)


@pytest.fixture
def rabbit_ssl_uri(request: Any, _nameko_vhost: str) -> str:
    """nameko 3: `rabbit_uri` on the ``--amqp-ssl-port``."""
    base = request.config.getoption("RABBIT_AMQP_URI")
    return _uri_on(base, _nameko_vhost, request.config.getoption("AMQP_SSL_PORT"))


@pytest.fixture
def amqp_uri(rabbit_config: dict[str, Any]) -> str:
    return rabbit_config["AMQP_URI"]


@pytest.fixture(scope="session")
def rabbit_manager(request: Any) -> Any:
    """A management API client (`nameko.testing.rabbit.Client`); needs the
    management plugin, and says so at once when it does not answer."""
    from nameko.testing.rabbit import Client

    return Client(request.config.getoption("RABBIT_API_URI"))


def _broker_config(request: Any) -> dict[str, Any]:
    """The config dict of the broker this test uses (rabbit_config by default)."""
    for name in ("memory_config", "rabbit_ssl_config", "rabbit_config"):
        if name in request.fixturenames:
            return request.getfixturevalue(name)
    return request.getfixturevalue("rabbit_config")


@pytest.fixture
def get_message_from_queue(request: Any) -> Iterator[Callable[..., Any]]:
    """``get(queue_name, ack=True, block=True, timeout=1, accept=None)`` -> a
    message (``.body``, ``.payload``, ``.headers``, ``.properties``,
    ``.delivery_info``) from the test's broker; `queue.Empty` if none comes."""
    from nameko._broker import connect
    from nameko.testing._queue_get import get_message

    config = _broker_config(request)
    brokers: list[Any] = []

    def get(
        queue_name: str,
        ack: bool = True,
        block: bool = True,
        timeout: float | None = 1,
        accept: Any = None,
    ) -> Any:
        if not brokers:  # one connection for the test, opened on first use
            brokers.append(_connect_for_get(connect, config))
        return get_message(brokers[0], queue_name, ack, block, timeout, accept)

    yield get
    for broker in brokers:
        broker.close()


def _connect_for_get(connect: Callable[..., Any], config: dict[str, Any]) -> Any:
    return connect(
        config["AMQP_URI"],
        ssl=config.get("AMQP_SSL"),
        connection_name="nameko-testing:get_message_from_queue",
        reconnect_forever=False,
    )


# -- factories -----------------------------------------------------------------------


def _patch_for_lifetime(made: list[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Apply ``values`` to the global config until the factory's teardown, and
    return the config the new object should use: ``values`` itself when it
    is a whole config (nameko 2.x, so ``container.config is config``), else
    the global config with ``values`` on top (nameko 3: a patch), copied so
    that objects made with different configs in one test keep their own."""
    patcher = global_config.patch(values)
    patcher.__enter__()
    made.append(patcher)
    merged = dict(global_config)
    return values if merged == values else merged


@pytest.fixture
def container_factory(
    fast_teardown: MadeInTest, _nameko_config_guard: None
) -> Iterator[Callable[..., Any]]:
    """``make(service_cls, config=None)`` -> a container, not started; killed
    at teardown. A ``config`` dict is also applied to the global config while
    the container lives: the container gets the dict itself when it is a
    whole config (nameko 2.x), else the global config with the dict on top
    (nameko 3's patch). Without one, the container uses the global config."""
    from nameko.containers import get_container_cls

    patches: list[Any] = []

    def make(service_cls: type, config: dict[str, Any] | None = None) -> Any:
        if config is None:
            return fast_teardown.add(get_container_cls()(service_cls))
        config = _patch_for_lifetime(patches, config)
        return fast_teardown.add(get_container_cls(config)(service_cls, config))

    yield make
    fast_teardown.kill_all()
    for patcher in reversed(patches):
        patcher.__exit__(None, None, None)


@pytest.fixture
def runner_factory(
    fast_teardown: MadeInTest, _nameko_config_guard: None
) -> Iterator[Callable[..., Any]]:
    """``make(config, *service_classes)`` (nameko 2.x) or
    ``make(*service_classes)`` (nameko 3, global config) -> a ServiceRunner,
    not started; killed at teardown. A leading dict is in the global config
    too while the runner lives."""
    from nameko.runners import ServiceRunner

    patches: list[Any] = []

    def make(*args: Any) -> Any:
        config, classes = (
            (args[0], args[1:]) if args and isinstance(args[0], dict) else (None, args)
        )
        if config is not None:
            config = _patch_for_lifetime(patches, config)
        runner = ServiceRunner(config)
        for service_cls in classes:
            runner.add_service(service_cls)
        return fast_teardown.add(runner)

    yield make
    fast_teardown.kill_all()
    for patcher in reversed(patches):
        patcher.__exit__(None, None, None)


@pytest.fixture
def predictable_call_ids() -> Iterator[Any]:
    """Call ids ``'0'``, ``'1'``, ... for workers (``nameko.containers.new_call_id``)
    and for the standalone RPC clients' calls, from one counter. Yields the
    mock of ``new_call_id``."""
    counter = itertools.count()

    def next_id() -> str:
        return str(next(counter))

    with (
        patch("nameko.containers.new_call_id", side_effect=next_id) as mocked,
        # the standalone clients' call ids come from this module-level name
        patch("nameko._rpc.standalone.new_id", side_effect=next_id),
    ):
        yield mocked


# -- web ---------------------------------------------------------------------------------


@pytest.fixture
def web_session(web_config_port: int) -> Iterator[Any]:
    """A `requests.Session` whose relative URLs go to the service under test.

    nameko 2.14's used ``werkzeug.urls.url_join``, gone in werkzeug 3; this
    one joins with `urllib.parse.urljoin`.
    """
    from nameko.testing._web_session import WebSession

    with WebSession(f"http://127.0.0.1:{web_config_port}/") as session:
        yield session


@pytest.fixture
def websocket(web_config_port: int) -> Iterator[Any]:
    """``websocket()`` -> a connected virtual socket to the service under test."""
    from nameko.testing.websocket import make_virtual_socket

    sockets: list[Any] = []

    def connect(path: str = "/ws") -> Any:
        _, connect_socket = make_virtual_socket("127.0.0.1", web_config_port, path)
        sockets.append(connect_socket())
        return sockets[-1]

    yield connect
    for socket in sockets:
        socket.close()
