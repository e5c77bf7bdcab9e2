"""django-nameko 0.8.2, unchanged, on shimeji (pip install --no-deps).

Its `ClusterRpcProxyPool` keeps ``pool_size`` standalone `ClusterRpcProxy`
clients in a queue; each ``with pool.next() as rpc`` borrows one. What it
reaches into, and these tests read:

- ``ClusterRpcProxy(config, context_data=..., timeout=...)``; ``start()``
  returns the inner cluster proxy (kept as ``RpcContext._rpc``); ``stop()``;
- ``_rpc._worker_ctx.data``: the dict of context data sent with every call,
  which it resets to the pool's after each block;
- `IOError` / ``amqp.exceptions.ConnectionError`` from ``start()`` when the
  broker is unreachable (it then replaces the client), and py-amqp's
  ``AccessRefused`` on a wrong login (what its own test expects);
- with ``HEARTBEAT`` set, a thread that calls, on every idle client,
  ``_rpc._reply_listener.queue_consumer.connection.drain_events(timeout=0.1)``
  (``socket.timeout`` expected when nothing arrives) and ``.heartbeat_check()``,
  and clears ``_rpc._reply_listener.queue_consumer.replies`` of stale replies;
- ``get_pool()`` / ``dispatch()`` configured from Django's
  ``settings.NAMEKO_CONFIG`` (the latter through
  ``nameko.standalone.events.event_dispatcher``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import amqp
import django_nameko
import pytest
from django.conf import settings
from django.test import override_settings
from django_nameko import rpc as django_rpc
from django_nameko.rpc import ClusterRpcProxyPool

from nameko._concurrency import Event
from nameko.contextdata import Language
from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port
from tests.compat.ext_support import TIMEOUT, LogRecords, assert_installed_on_shimeji
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

THREADS = 8
CALLS_PER_THREAD = 5


class Greeter:
    name = "greeter"

    language = Language()
    events: list = []
    event_seen = Event()

    @rpc
    def hello(self, name):
        return {"greeting": f"hello {name}", "language": self.language}

    @rpc
    def fail(self):
        raise ValueError("boom")

    @event_handler("django", "user_created")
    def on_user_created(self, payload):
        Greeter.events.append((payload, self.language))
        Greeter.event_seen.set()


@pytest.fixture(scope="module", autouse=True)
def django_settings():
    """django-nameko reads Django's settings; a bare configuration will do."""
    if not settings.configured:
        settings.configure()


@pytest.fixture
def greeter(container_factory, rabbit_config):
    Greeter.events = []
    Greeter.event_seen = Event()
    container = container_factory(Greeter, rabbit_config)
    container.start()
    return container


@pytest.fixture
def make_pool():
    pools: list[ClusterRpcProxyPool] = []

    def make(config, **kwargs):
        pool = ClusterRpcProxyPool(config, **kwargs)
        pools.append(pool)
        pool.start()
        return pool

    yield make
    for pool in pools:
        pool.stop()


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("django-nameko", "0.8.2")
    assert django_nameko.get_pool is django_rpc.get_pool
    assert django_rpc.ClusterRpcProxy is ClusterRpcProxy


def test_pool_serves_calls_from_several_threads(greeter, rabbit_config, make_pool):
    pool = make_pool(rabbit_config, pool_size=3, context_data={"language": "en"}, timeout=TIMEOUT)
    assert pool.is_started
    assert pool.queue.qsize() == 3
    contexts = list(pool.queue.queue)
    assert all(isinstance(ctx._proxy, ClusterRpcProxy) for ctx in contexts)
    assert all(ctx._rpc is None for ctx in contexts)  # started on first borrow

    def calls(thread: int) -> list:
        results = []
        for call in range(CALLS_PER_THREAD):
            with pool.next() as proxy:
                results.append(proxy.greeter.hello(f"{thread}-{call}"))
        return results

    with ThreadPoolExecutor(THREADS) as executor:
        results = [r for rs in executor.map(calls, range(THREADS)) for r in rs]
    assert sorted(r["greeting"] for r in results) == sorted(
        f"hello {t}-{c}" for t in range(THREADS) for c in range(CALLS_PER_THREAD)
    )
    assert {r["language"] for r in results} == {"en"}  # the pool's context data
    # every client went back to the queue, and each was started (by `start()`)
    assert pool.queue.qsize() == 3
    assert sorted(map(id, pool.queue.queue)) == sorted(map(id, contexts))
    for ctx in contexts:
        assert ctx._rpc is not None
        assert ctx._rpc._worker_ctx.data == {"language": "en"}


def test_context_data_changed_in_a_block_is_reset_after_it(greeter, rabbit_config, make_pool):
    pool = make_pool(rabbit_config, pool_size=1, context_data={"language": "en"}, timeout=TIMEOUT)
    with pool.next() as proxy:
        data = proxy._rpc._worker_ctx.data
        assert data == {"language": "en"}
        data["language"] = "fr"  # goes with the next call, as in nameko 2.14
        assert proxy.greeter.hello("ann")["language"] == "fr"
    assert data == {"language": "en"}  # django-nameko put the pool's back
    with pool.next() as proxy:
        assert proxy._rpc._worker_ctx.data is data
        assert proxy.greeter.hello("bob")["language"] == "en"


def test_a_remote_error_raised_in_a_block_returns_the_client(greeter, rabbit_config, make_pool):
    pool = make_pool(rabbit_config, pool_size=2, context_data=None, timeout=TIMEOUT)
    with pytest.raises(RemoteError) as error, pool.next() as proxy:
        proxy.greeter.fail()
    assert error.value.exc_type == "ValueError"
    assert pool.queue.qsize() == 2
    with pool.next() as proxy:
        assert proxy.greeter.hello("again") == {"greeting": "hello again", "language": None}


def test_stopped_pool_stops_its_clients(greeter, rabbit_config, make_pool):
    pool = make_pool(rabbit_config, pool_size=1, context_data={}, timeout=TIMEOUT)
    ctx = pool.next()
    with ctx as proxy:
        assert proxy.greeter.hello("x")["greeting"] == "hello x"
    inner = ctx._rpc
    pool.stop()
    assert pool.state == "STOPPED" and pool.queue is None
    assert ctx._proxy is None  # RpcContext.__del__ ran ClusterRpcProxy.stop()
    with pytest.raises(RuntimeError, match="This consumer has been stopped"):
        inner.greeter.hello("y")  # the message django-nameko checks for


def test_unreachable_broker_is_an_ioerror_and_the_client_is_replaced(make_pool):
    """``RpcContext.__enter__`` catches ``(IOError, amqp ConnectionError)``
    from ``start()`` and puts a new client in the queue."""
    port = find_free_port()  # nothing listens there
    config = {
        "AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:{port}/",
        "TRANSPORT_OPTIONS": {"max_retries": 0},  # fail at once, not after 9 s of retries
    }
    pool = make_pool(config, pool_size=1, context_data={}, timeout=TIMEOUT)
    broken = pool.next()
    with pytest.raises(IOError):
        with broken:
            pass
    assert broken._proxy is None
    assert pool.queue.qsize() == 1 and pool.queue.queue[0] is not broken


def test_pool_with_heartbeat_checks_its_connections_without_errors(
    greeter, rabbit_config, make_pool
):
    config = {**rabbit_config, "HEARTBEAT": 2}  # its thread wakes every 3 s (its minimum)
    with LogRecords("django_nameko", logging.DEBUG) as log:
        pool = make_pool(config, pool_size=2, context_data={"language": "en"}, timeout=TIMEOUT)
        assert pool.heartbeat == 2
        assert pool._heartbeat_check_thread.is_alive()
        first, second = pool.next(), pool.next()
        with first as a, second as b:  # start both: only started clients are checked
            assert a.greeter.hello("a")["greeting"] == "hello a"
            assert b.greeter.hello("b")["greeting"] == "hello b"

        # what the heartbeat thread uses, on each client
        for ctx in (first, second):
            consumer = ctx._rpc._reply_listener.queue_consumer
            try:
                consumer.connection.drain_events(timeout=0.1)
            except TimeoutError:  # socket.timeout: nothing arrived
                pass
            consumer.connection.heartbeat_check()
            assert list(consumer.replies.keys()) == []

        def checked_twice() -> bool:
            if log.messages(logging.INFO):  # an error, or "Heart beat failed"
                return True
            return log.messages().count("Heart beat 2 OK") >= 2

        wait_until(checked_twice, 4 * TIMEOUT, interval=0.1, what="two heartbeat checks")
        assert log.messages(logging.INFO) == []
        assert log.messages().count("Heart beat 2 OK") >= 2
        with pool.next() as proxy:  # the checked clients still work
            assert proxy.greeter.hello("c")["language"] == "en"


def test_a_wrong_password_is_py_amqps_access_refused(rabbit_config):
    """django-nameko's own test: ``get_pool()`` then a call, with a bad
    password, raises ``amqp.AccessRefused`` (nameko 2.14 let py-amqp's
    error through); it is also our `IOError`-like connection error."""
    uri = rabbit_config["AMQP_URI"].replace("guest:guest@", "guest:badpassword@")
    django_rpc.destroy_pool()
    try:
        with override_settings(NAMEKO_CONFIG={"AMQP_URI": uri}):
            with pytest.raises(amqp.AccessRefused) as error:
                pool = django_rpc.get_pool()
                with pool.next() as client:
                    client.greeter.hello("x")
    finally:
        django_rpc.destroy_pool()
    assert isinstance(error.value, ConnectionError)  # and so IOError
    assert error.value.reply_code == 403
    assert "refused the login of user 'guest'" in str(error.value)
    assert "badpassword" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "amqp_error", "code"),
    [
        (("guest:guest@", "guest:badpassword@"), amqp.exceptions.AccessRefused, 403),
        (("/shimeji_test_", "/no-such-vhost-"), amqp.exceptions.NotAllowed, 530),
    ],
    ids=["password", "vhost"],
)
def test_a_refused_client_raises_py_amqps_error_for_the_code(
    rabbit_config, change, amqp_error, code
):
    config = {"AMQP_URI": rabbit_config["AMQP_URI"].replace(*change)}
    with pytest.raises(amqp_error) as error:
        ClusterRpcProxy(config).start()
    assert isinstance(error.value, ConnectionError) and error.value.reply_code == code


def test_without_py_amqp_loaded_the_refusal_is_ours_alone(rabbit_config):
    """py-amqp is neither imported nor needed to tell a refusal apart."""
    uri = rabbit_config["AMQP_URI"].replace("guest:guest@", "guest:badpassword@")
    code = (
        "import sys\n"
        "from nameko.standalone.rpc import ClusterRpcProxy\n"
        "try:\n"
        f"    ClusterRpcProxy({{'AMQP_URI': {uri!r}}}).start()\n"
        "except ConnectionError as exc:\n"
        "    print(type(exc).__name__, exc.reply_code)\n"
        "print('amqp' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["BrokerRefused", "403", "False"]


def test_heartbeat_check_replaces_a_client_whose_connection_is_gone(
    greeter, rabbit_config, make_pool
):
    """What the heartbeat reads tells the truth: a closed connection raises
    `ConnectionError`, which django-nameko answers with a fresh client."""
    config = {**rabbit_config, "HEARTBEAT": 2}
    with LogRecords("django_nameko", logging.DEBUG) as log:
        pool = make_pool(config, pool_size=1, context_data={}, timeout=TIMEOUT)
        ctx = pool.next()
        with ctx as proxy:
            assert proxy.greeter.hello("a")["greeting"] == "hello a"
        connection = ctx._rpc._reply_listener.queue_consumer.connection
        ctx._proxy.stop()  # the client's connection closes under the pool
        with pytest.raises(ConnectionError):
            connection.heartbeat_check()
        with pytest.raises(ConnectionError):
            connection.drain_events(timeout=0.1)

        def replaced() -> bool:
            return any(m.startswith("Heart beat failed") for m in log.messages(logging.INFO))

        wait_until(replaced, 4 * TIMEOUT, interval=0.1, what="the heartbeat to replace the client")
    assert pool.queue.qsize() == 1 and pool.queue.queue[0] is not ctx
    with pool.next() as proxy:  # the replacement works
        assert proxy.greeter.hello("b")["greeting"] == "hello b"


def test_get_pool_and_dispatch_from_django_settings(greeter, rabbit_config):
    """The README's multi-pool settings; `dispatch` sends an event."""
    uri = rabbit_config["AMQP_URI"]
    nameko_config = {
        "default": {"AMQP_URI": uri, "POOL_SIZE": 2, "POOL_TIMEOUT": TIMEOUT},
        "french": {"POOL_CONTEXT_DATA": {"language": "fr"}, "POOL_SIZE": 1},
    }
    django_rpc.destroy_pool()
    try:
        with override_settings(NAMEKO_CONFIG=nameko_config):
            default, french = django_rpc.get_pool(), django_rpc.get_pool("french")
            assert (default.pool_size, french.pool_size) == (2, 1)
            assert french.config == {"AMQP_URI": uri}  # merged with the default's
            assert french.timeout == TIMEOUT
            with default.next() as proxy:
                assert proxy.greeter.hello("d")["language"] is None
            with french.next() as proxy:
                assert proxy.greeter.hello("f")["language"] == "fr"
            django_rpc.dispatch("django", "user_created", {"id": 7})
            assert Greeter.event_seen.wait(TIMEOUT)
            assert Greeter.events == [({"id": 7}, None)]
    finally:
        django_rpc.destroy_pool()
        django_rpc.nameko_event_dispatcher = None
