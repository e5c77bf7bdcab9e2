"""nameko-chassis 3.2.0, unchanged, on shimeji (pip install --no-deps).

Its README's usage: a module that imports the kit's base class and extends it,

    from nameko_chassis.service import Service

    class MyService(Service):
        name = "my_service"

run with ``nameko run service``. The base (``name = "no name"``, RPC
``say_hello``/``query_state``/``set_log_level``, ``GET /metrics``) is then a
top-level class of the module too. It is not run: a class imported into the
module that a class of the module extends is a base, not a service. An
imported class that nothing extends still runs (a module that gathers
services), and two real services claiming one route still fail to start.
"""

from __future__ import annotations

import signal
import sys
import textwrap

import pytest
import requests

from nameko.cli.run import import_services
from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port
from tests.compat.ext_support import assert_installed_on_shimeji
from tests.integration.conftest import start_nameko, wait_until_serving
from tests.waiting import wait_until

TIMEOUT = 30

README_SERVICE = """
from nameko.rpc import rpc
from nameko_chassis.service import Service


class MyService(Service):
    name = "my_service"

    @rpc
    def my_method(self):
        return "mine"
"""


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Write modules into a fresh folder on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(**sources: str) -> None:
        for name, source in sources.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
            sys.modules.pop(name, None)

    yield write


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-chassis", "3.2.0")


def test_the_readme_module_discovers_only_its_own_service(modules):
    from nameko_chassis.service import Service

    modules(chassis_readme=README_SERVICE)
    (found,) = import_services("chassis_readme")
    assert found.name == "my_service" and issubclass(found, Service)
    # naming the base still runs exactly it
    assert import_services("chassis_readme:Service") == [Service]


def test_imported_services_nothing_extends_still_run(modules):
    modules(
        svc_a="from nameko.rpc import rpc\nclass A:\n    name = 'a'\n    @rpc\n    def m(self): pass\n",
        svc_b="from nameko.rpc import rpc\nclass B:\n    name = 'b'\n    @rpc\n    def m(self): pass\n",
        svc_all="from svc_a import A\nfrom svc_b import B\n",
        svc_local=(
            "from nameko.rpc import rpc\n"
            "class Base:\n    name = 'base'\n    @rpc\n    def m(self): pass\n"
            "class Child(Base):\n    name = 'child'\n"
        ),
    )
    assert sorted(cls.name for cls in import_services("svc_all")) == ["a", "b"]
    # a base defined in the module itself is the author's own service: it runs
    assert sorted(cls.name for cls in import_services("svc_local")) == ["base", "child"]


@pytest.mark.rabbit
def test_nameko_run_of_the_readme_module_serves_it(tmp_path, rabbit_uri):
    (tmp_path / "service.py").write_text(README_SERVICE)
    port = find_free_port()
    config = {"AMQP_URI": rabbit_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    proc = start_nameko(tmp_path, ["service"], config=config)
    try:
        assert wait_until_serving(config, "my_service", "say_hello") == "Hello from my_service!"
        with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc:
            assert rpc.my_service.my_method() == "mine"
            assert rpc.my_service.query_state()["service_name"] == "my_service"
            with pytest.raises(UnknownService):
                rpc["no name"].say_hello()  # the base was not started
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT)
        assert response.status_code == 200
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        output = proc.output()
        (starting,) = [line for line in output.splitlines() if "starting services:" in line]
        assert starting.endswith("starting services: my_service")  # not "no name"
        assert "claimed twice" not in output
    finally:
        proc.close()


@pytest.mark.rabbit
def test_two_real_services_claiming_one_route_still_refuse_to_start(tmp_path, rabbit_uri):
    (tmp_path / "clash.py").write_text(
        textwrap.dedent(
            """
            from nameko.web.handlers import http

            class One:
                name = "one"
                @http("GET", "/metrics")
                def metrics(self, request):
                    return "one"

            class Two:
                name = "two"
                @http("GET", "/metrics")
                def metrics(self, request):
                    return "two"
            """
        )
    )
    config = {"AMQP_URI": rabbit_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}"}
    proc = start_nameko(tmp_path, ["clash"], config=config)
    try:
        assert proc.wait(TIMEOUT) != 0
        wait_until(lambda: "claimed twice" in proc.output(), TIMEOUT, what="the clash error")
        assert "route `GET,HEAD /metrics` is claimed twice" in proc.output()
    finally:
        proc.close()
