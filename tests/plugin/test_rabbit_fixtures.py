"""The plugin's RabbitMQ fixtures against the shared broker, in an inner
pytest session: both config styles, the SSL variants, get_message_from_queue,
teardown order (containers die before their vhost is given back), teardown
after a failing test, and vhost clean-up (checked with rabbitmqctl)."""

from __future__ import annotations

import pytest

from nameko.testing._vhosts import rabbitmqctl

pytestmark = pytest.mark.rabbit

INNER_CONFTEST = """
import os

import pytest

STARTED = []  # containers the inner tests started
ALIVE_AT_GIVE_BACK = []  # any of them still running when their vhost was given back


@pytest.fixture(scope="session", autouse=True)
def _watch_vhosts(vhost_pipeline):
    original = vhost_pipeline.give_back

    def give_back(name):
        ALIVE_AT_GIVE_BACK.extend(c for c in STARTED if not c._died.ready())
        with open(os.environ["VHOSTS_OUT"], "a") as out:
            out.write(name + "\\n")
        original(name)

    vhost_pipeline.give_back = give_back
"""

INNER = """
import queue
import ssl

import pytest

from conftest import ALIVE_AT_GIVE_BACK, STARTED
from nameko import config
from nameko._broker import connect
from nameko._broker.base import Properties, Queue
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy


class Service:
    name = "service"

    @rpc
    def echo(self, value):
        return value


def test_rabbit_config_2x_style(rabbit_config, amqp_uri, rabbit_uri):
    vhost = rabbit_config["vhost"]
    assert vhost.startswith("shimeji_test_")
    assert rabbit_config == {
        "AMQP_URI": f"pyamqp://guest:guest@localhost:5672/{vhost}",
        "username": "guest",
        "vhost": vhost,
    }
    assert amqp_uri == rabbit_uri == rabbit_config["AMQP_URI"]
    assert dict(config) == rabbit_config  # and the global config has it too


@pytest.mark.usefixtures("rabbit_config")
def test_rabbit_config_3x_style(rabbit_uri, container_factory):
    assert config["AMQP_URI"] == rabbit_uri
    container = container_factory(Service)
    container.start()
    STARTED.append(container)
    with ClusterRpcClient() as client:
        assert client.service.echo("3.x") == "3.x"


def test_rabbit_ssl_config(rabbit_ssl_config, rabbit_ssl_uri, rabbit_ssl_options):
    vhost = rabbit_ssl_config["vhost"]
    assert rabbit_ssl_config["AMQP_URI"] == f"pyamqp://guest:guest@localhost:5671/{vhost}"
    assert rabbit_ssl_uri == rabbit_ssl_config["AMQP_URI"]
    assert rabbit_ssl_config["AMQP_SSL"] == rabbit_ssl_options
    assert rabbit_ssl_options["cert_reqs"] == ssl.CERT_REQUIRED
    assert config["AMQP_SSL"] == rabbit_ssl_options


def test_container_factory_before_rabbit_config(container_factory, rabbit_config):
    # asked for first, so torn down last: fast_teardown still kills it first
    container = container_factory(Service, rabbit_config)
    container.start()
    STARTED.append(container)
    with ClusterRpcProxy(rabbit_config) as proxy:
        assert proxy.service.echo("2.x") == "2.x"


def test_get_message_from_queue(rabbit_config, get_message_from_queue):
    with connect(rabbit_config["AMQP_URI"]) as broker:
        broker.declare([Queue("q", durable=False)])
        props = Properties(content_type="application/json", headers={"h": 1})
        broker.publish("", "q", b'{"n": 1}', props)
        kept = get_message_from_queue("q", ack=False)
        assert (kept.payload, kept.headers, kept.body) == ({"n": 1}, {"h": 1}, b'{"n": 1}')
        taken = get_message_from_queue("q")
        assert taken.delivery_info["redelivered"] is True
        assert taken.properties["content_type"] == "application/json"
        with pytest.raises(queue.Empty):
            get_message_from_queue("q", block=False)
        with pytest.raises(queue.Empty):
            get_message_from_queue("q", timeout=0.2)


def test_fails_with_a_running_container(rabbit_config, container_factory, runner_factory):
    container = container_factory(Service, rabbit_config)
    container.start()
    runner = runner_factory(rabbit_config)
    runner.start()
    STARTED.append(container)
    raise AssertionError("this test fails on purpose")


def test_every_container_died_before_its_vhost_was_given_back():
    assert len(STARTED) == 3
    assert all(c._died.ready() for c in STARTED)
    assert ALIVE_AT_GIVE_BACK == []
    assert dict(config) == {}
"""


def test_rabbit_fixtures(pytester, run_inner, monkeypatch):
    out = pytester.path / "vhosts.txt"
    monkeypatch.setenv("VHOSTS_OUT", str(out))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER)
    result = run_inner("-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["E * this test fails on purpose"])
    used = out.read_text().split()
    assert len(used) == 6  # one vhost per test that used RabbitMQ
    left = rabbitmqctl("list_vhosts", "name").split()
    assert not set(used) & set(left), "vhosts left behind"
