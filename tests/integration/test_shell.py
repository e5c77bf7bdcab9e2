"""`nameko shell` against a real `nameko run` on RabbitMQ: piped (scripted)
and on a pseudo-terminal; the call timeout's one-line message, close-name
suggestions for an unknown service, tab completion, and a masked banner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.conftest import SRC, wait_until_serving
from tests.terminal import Terminal

pytestmark = pytest.mark.rabbit

TIMEOUT = 30
SERVICE = """\
from nameko.rpc import rpc


class Inventory:
    name = "inventory"

    @rpc
    def stock(self, item):
        return {"item": item, "count": 3}

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def fail(self):
        raise ValueError("out of stock")
"""


@pytest.fixture
def inventory(nameko_run, tmp_path, rabbit_uri):
    (tmp_path / "run0").mkdir()
    (tmp_path / "run0" / "inventory.py").write_text(SERVICE)
    proc = nameko_run(["inventory"])
    wait_until_serving({"AMQP_URI": rabbit_uri}, "inventory")
    return proc


def shell(rabbit_uri: str, script: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nameko", "shell", "--broker", rabbit_uri, *options],
        input=script,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC))


def test_a_script_calls_services_and_completion_knows_what_it_called(inventory, rabbit_uri):
    done = shell(
        rabbit_uri,
        "print(n.rpc.inventory.stock('apple'))\n"
        "print(n.rpc.inventory.ping.call_async().result())\n"
        "print(dir(n.rpc), dir(n.rpc.inventory))\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "{'item': 'apple', 'count': 3}",
        "pong",
        "['inventory'] ['fail', 'ping', 'stock']",
    ]
    banner = done.stderr
    assert "Broker: amqp://guest:********@" in banner and "guest:guest" not in banner
    assert "calls wait 30 s for a reply (--timeout)" in banner


def test_an_unknown_service_suggests_the_close_names_it_knows(inventory, rabbit_uri):
    done = shell(rabbit_uri, "n.rpc.inventory.ping()\nn.rpc.inventori.ping()\nprint('not run')\n")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "UnknownService: Unknown service `inventori`: did you mean 'inventory'?"
    )
    assert "Traceback" not in done.stderr and "not run" not in done.stdout


def test_a_remote_error_shows_the_scripts_line_and_the_error_only(inventory, rabbit_uri):
    done = shell(rabbit_uri, "n.rpc.inventory.fail()\n")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-3:] == [
        "Traceback (most recent call last):",
        '  File "<console>", line 1, in <module>',
        "nameko.exceptions.RemoteError: ValueError out of stock",
    ]


def test_a_mistyped_method_suggests_the_announced_ones(inventory, rabbit_uri):
    done = shell(rabbit_uri, "n.rpc.inventory.stok('apple')\n")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "MethodNotFound: stok: did you mean 'stock'?"
    assert "Traceback" not in done.stderr


def test_a_service_with_no_running_instance_times_out_in_one_line(inventory, rabbit_uri):
    inventory.signal()  # its queue stays, with nobody consuming it
    assert inventory.wait() == 0
    done = shell(rabbit_uri, "n.rpc.inventory.ping()\n", "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "RpcTimeout: no reply from 'inventory' in 0.5 s: is an instance running?"
    )
    assert "Traceback" not in done.stderr


def test_on_a_terminal_tab_completes_services_and_methods(inventory, rabbit_uri, tmp_path):
    terminal = Terminal(
        ["nameko", "shell", "--interface", "plain", "--broker", rabbit_uri],
        tmp_path,
        _env(),
        TIMEOUT,
    )
    assert b"Broker: amqp://guest:********@" in terminal.read_until(b">>> ")
    terminal.send(b"n.rpc.inventory.ping()\n")
    terminal.read_until(b"'pong'")
    terminal.send(b"n.rpc.inv\t")
    terminal.read_until(b"n.rpc.inventory")
    terminal.send(b".pi\t")  # methods are known once called in this session
    terminal.read_until(b"ping(")  # rlcompleter adds "(" to a callable
    terminal.send(b")\n")
    terminal.read_until(b"'pong'")
    terminal.send(b"n.rpc.nobody.ping()\n")  # the shell's errors stay in the session
    terminal.read_until(b"UnknownService: Unknown service `nobody`")
    assert terminal.end() == 0  # Ctrl-D
