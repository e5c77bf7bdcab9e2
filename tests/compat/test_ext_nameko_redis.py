"""nameko-redis 1.1.0, unchanged, on shimeji: what test_extensions_web.py and
seed 001 (test_seeds_web.py) leave out.

Those cover ``Redis(key)`` behind @http, ``decode_responses=True`` by
default and ``stop()`` dropping the client. Here: its keyword options reach
``StrictRedis.from_url``, several dependencies each read their own
``REDIS_URIS`` key in ``setup()``, one client is created in ``start()`` and
shared by every worker (it is ``get_dependency``'s return value), it is used
from @rpc workers over RabbitMQ concurrently, and ``kill()`` drops it too.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import nameko_redis
import pytest
import redis

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.compat.ext_support import TIMEOUT, assert_installed_on_shimeji

REDIS_URI = "redis://127.0.0.1:6379/11"  # as in test_extensions_web.py: keys are ours, uuid4


class Counter:
    name = "counter"

    text = nameko_redis.Redis("main")
    raw = nameko_redis.Redis("other", decode_responses=False, socket_timeout=5)

    @rpc
    def incr(self, key):
        return self.text.incr(key)

    @rpc
    def get_raw(self, key):
        value = self.raw.get(key)
        return [type(value).__name__, value.decode()]

    @rpc
    def client_ids(self):
        return [id(self.text), id(self.raw)]


@pytest.fixture
def key():
    key = f"shimeji-test-{uuid.uuid4().hex}"
    client = redis.StrictRedis.from_url(REDIS_URI)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"nameko-redis test needs Redis on 127.0.0.1:6379: {exc}")
    yield key
    client.delete(key)


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-redis", "1.1.0")
    assert nameko_redis.REDIS_URIS_KEY == "REDIS_URIS"


@pytest.mark.rabbit
def test_rpc_workers_share_the_started_client(container_factory, rabbit_config, key):
    uris = {"main": REDIS_URI, "other": REDIS_URI.replace("/11", "/12")}
    config = {**rabbit_config, "REDIS_URIS": uris, "max_workers": 4}
    container = container_factory(Counter, config)
    providers = {d.attr_name: d for d in container.dependencies}
    assert providers["text"].client is None  # nothing before start()
    container.start()
    text, raw = providers["text"], providers["raw"]
    assert (text.redis_uri, raw.redis_uri) == (uris["main"], uris["other"])
    assert text.client.connection_pool.connection_kwargs["decode_responses"] is True
    raw_kwargs = raw.client.connection_pool.connection_kwargs
    assert (raw_kwargs["decode_responses"], raw_kwargs["socket_timeout"]) == (False, 5)
    assert raw_kwargs["db"] == 12

    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        with ThreadPoolExecutor(8) as executor:
            counts = list(executor.map(lambda _: proxy.counter.incr(key), range(40)))
        assert sorted(counts) == list(range(1, 41))  # concurrent workers, one client
        assert proxy.counter.client_ids() == [id(text.client), id(raw.client)]
        redis.StrictRedis.from_url(uris["other"]).set(key, "bytes")
        try:
            assert proxy.counter.get_raw(key) == ["bytes", "bytes"]
        finally:
            redis.StrictRedis.from_url(uris["other"]).delete(key)

    container.kill()
    assert (text.client, raw.client) == (None, None)
