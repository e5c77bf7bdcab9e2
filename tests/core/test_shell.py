"""The shell's ``n``: timeouts, suggestions and completion on the in-memory
broker, and service discovery from the management API's queue listing.

The management API is off on the test machine's RabbitMQ, so discovery is
tested against a local HTTP server answering what the API answers for
``GET /api/queues/<vhost>``; the end-to-end shell is in
tests/integration/test_shell.py."""

from __future__ import annotations

import json
import sys
import threading
import traceback
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nameko.cli._shell import (
    Catalogue,
    NoReply,
    ShellUnknownService,
    management_api_url,
    rpc_services_from_management_api,
)
from nameko.cli.shell import ShellRunner, make_nameko_helper
from nameko.exceptions import MethodNotFound, RpcTimeout, UnknownService
from nameko.rpc import rpc
from nameko.testing.utils import find_free_port


class Inventory:
    name = "inventory"

    @rpc
    def stock(self, item):
        return 3


@pytest.fixture
def n(config):
    helper = make_nameko_helper(config, timeout=0.2)
    yield helper
    helper.disconnect()


def test_calls_are_remembered_for_completion(start, n):
    start(Inventory)
    assert dir(n.rpc) == []
    assert n.rpc.inventory.stock("apple") == 3
    assert n.rpc["inventory"].stock.call_async("pear").result() == 3
    assert dir(n.rpc) == ["inventory"] and dir(n.rpc.inventory) == ["stock"]


def test_a_queue_nobody_consumes_times_out_with_the_shells_message(start, n):
    container = start(Inventory)
    container.stop()  # the queue stays, with no consumer
    with pytest.raises(NoReply) as caught:
        n.rpc.inventory.stock("apple")
    assert isinstance(caught.value, RpcTimeout)
    assert str(caught.value) == ("no reply from 'inventory' in 0.2 s: is an instance running?")


def test_an_unknown_service_suggests_close_names(start, n):
    start(Inventory)
    n.rpc.inventory.stock("apple")
    with pytest.raises(ShellUnknownService) as caught:
        n.rpc.inventry.stock("apple")
    assert isinstance(caught.value, UnknownService)
    assert str(caught.value) == "Unknown service `inventry`: did you mean 'inventory'?"
    with pytest.raises(UnknownService, match=r"^Unknown service `zzz`$"):
        n.rpc.zzz.stock()


def test_discovery_runs_once_when_a_name_is_first_needed():
    asked = []
    catalogue = Catalogue(lambda: asked.append(1) or ["orders", "ordering"])
    assert asked == []
    assert catalogue.close_to("order") == ["orders", "ordering"]
    assert catalogue.services() == ["ordering", "orders"]
    assert asked == [1]


QUEUES = [
    {"name": "rpc-inventory", "consumers": 2},
    {"name": "rpc-stopped", "consumers": 0},
    {"name": "rpc.reply-standalone_rpc_proxy-1", "consumers": 1},
    {"name": "evt-inventory-stocked--audit.on_stocked", "consumers": 1},
    {"name": "rpc-orders", "consumers": 1},
]


@pytest.fixture
def management_api():
    seen = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers["Authorization"]))
            body = json.dumps(QUEUES).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/queues/my%2Fvhost", seen
    server.shutdown()
    server.server_close()


def test_services_with_a_consumer_come_from_the_management_api(management_api):
    url, seen = management_api
    found = rpc_services_from_management_api("amqp://bob:s3cret@host/my/vhost", url)
    assert found == ["inventory", "orders"]
    path, authorization = seen[0]
    assert path == "/api/queues/my%2Fvhost?columns=name,consumers"
    assert authorization == "Basic Ym9iOnMzY3JldA=="  # bob:s3cret


def test_the_api_url_follows_the_broker_and_its_vhost():
    assert management_api_url("amqp://u:p@rabbit.example:5672/") == (
        "http://rabbit.example:15672/api/queues/%2F"
    )
    assert management_api_url("amqp://u:p@rabbit/%2F") == "http://rabbit:15672/api/queues/%2F"
    assert management_api_url("amqp://u:p@rabbit/my/vhost") == (
        "http://rabbit:15672/api/queues/my%2Fvhost"
    )


def test_a_silent_management_api_means_no_names():
    url = f"http://127.0.0.1:{find_free_port()}/api/queues/%2F"  # nothing listens
    assert rpc_services_from_management_api("amqp://guest:guest@127.0.0.1/", url) == []


def test_bpython_then_ipython_then_the_plain_console(monkeypatch):
    started = []
    fake_bpython = types.ModuleType("bpython")
    fake_bpython.embed = lambda namespace, banner: started.append(("bpython", banner))
    monkeypatch.setitem(sys.modules, "bpython", fake_bpython)
    monkeypatch.setattr(ShellRunner, "plain", lambda self: started.append(("plain", "")))
    ShellRunner("hello", {}).start_shell()
    assert started == [("bpython", "hello")]
    monkeypatch.setitem(sys.modules, "bpython", None)  # not installed
    monkeypatch.setitem(sys.modules, "IPython", None)
    ShellRunner("hello", {}).start_shell()
    ShellRunner("hello", {}).start_shell("ipython")
    assert started[1:] == [("plain", ""), ("plain", "")]


class Shop:
    name = "shop"

    @rpc
    def buy(self, item):
        return item

    @rpc
    def fail(self):
        raise ValueError("broken")


def console_output(n, *lines):
    """What the plain console writes for ``lines``, as a person would type them."""
    from nameko.cli.shell import _Console

    written = []
    console = _Console({"n": n})
    console.write = written.append
    for line in lines:
        console.push(line)
    return "".join(written)


def test_a_remote_error_shows_no_frames_of_ours(start, n):
    start(Shop)
    n.rpc.shop.buy("warm-up")  # the first call to a service also checks it exists
    assert console_output(n, "n.rpc.shop.fail()") == (
        "Traceback (most recent call last):\n"
        '  File "<console>", line 1, in <module>\n'
        "nameko.exceptions.RemoteError: ValueError broken\n"
    )
    assert any("nameko" in frame.filename for frame in traceback.extract_tb(sys.last_traceback))


def test_the_users_own_frames_stay(start, n):
    start(Shop)
    out = console_output(n, "def order():", "    return n.rpc.shop.fail()", "", "order()")
    assert out.splitlines() == [
        "Traceback (most recent call last):",
        '  File "<console>", line 1, in <module>',
        '  File "<console>", line 2, in order',
        "nameko.exceptions.RemoteError: ValueError broken",
    ]


def test_a_method_not_found_suggests_close_names_in_one_line(start, n):
    start(Shop)
    n.rpc.shop.buy("x")
    with pytest.raises(MethodNotFound) as caught:
        n.rpc.shop.by("x")
    assert caught.value.args == ("by",)  # nameko's error, with the shell's text
    assert str(caught.value) == "by: did you mean 'buy'?"
    assert console_output(n, "n.rpc.shop.zzz()") == (
        "MethodNotFound: zzz: known methods of 'shop': buy\n"
    )
