"""Presence with real `nameko run` processes on RabbitMQ (D29): `nameko
cluster` lists two services and their instances, a stopping instance says
goodbye, `PRESENCE: false` hides one, and `nameko shell` completes methods
it never called."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from nameko.presence import Roster
from tests.integration.conftest import SRC, wait_until_serving

pytestmark = pytest.mark.rabbit

TIMEOUT = 30
SERVICES = '''\
from nameko.rpc import rpc
from nameko.timer import timer


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, name: str, greeting: str = "hello") -> str:
        """Greet someone by name.

        Politely."""
        return f"{greeting} {name}"

    @rpc
    def ping(self):
        return "pong"


class Inventory:
    name = "inventory"

    @rpc
    def stock(self, item):
        """How many are left."""
        return 3

    @rpc
    def ping(self):
        return "pong"

    @timer(interval=3600)
    def recount(self):
        pass
'''


def nameko(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nameko", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        timeout=TIMEOUT,
    )


@pytest.fixture
def cluster(nameko_run, tmp_path, rabbit_uri):
    """Process 0: greeter and inventory; process 1: greeter again;
    process 2: inventory with PRESENCE false."""
    config = {"AMQP_URI": rabbit_uri}
    procs = []
    for index, (services, extra) in enumerate(
        [
            (["services"], {}),
            (["services:Greeter"], {}),
            (["services:Inventory"], {"PRESENCE": False}),
        ]
    ):
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        (folder / "services.py").write_text(SERVICES)
        procs.append(nameko_run(services, config=extra, folder=folder))
    wait_until_serving(config, "greeter")
    wait_until_serving(config, "inventory")
    return procs


def test_nameko_cluster_lists_services_instances_and_entrypoints(cluster, rabbit_uri):
    done = nameko("cluster", "--broker", rabbit_uri, "--wait", "2", "--json")
    assert done.returncode == 0, done.stderr
    messages = json.loads(done.stdout)
    pids = sorted((m["service"], m["pid"]) for m in messages)
    assert pids == sorted(
        [
            ("greeter", cluster[0].proc.pid),
            ("greeter", cluster[1].proc.pid),
            ("inventory", cluster[0].proc.pid),  # not process 2: PRESENCE false
        ]
    )
    text = nameko("cluster", "--broker", rabbit_uri, "--wait", "2").stdout
    assert "greeter (2 instances)" in text and "inventory (1 instance)" in text
    # a default is announced as "...", never its value
    assert "hello(name: str, greeting: str = ...) -> str  Greet someone by name." in text
    assert ["timer", "recount()", "every", "3600", "s"] in [
        line.split() for line in text.splitlines()
    ]


def test_a_stopping_instance_says_goodbye(cluster, rabbit_uri):
    with Roster({"AMQP_URI": rabbit_uri}) as roster:
        roster.discover()
        assert roster.wait_for(lambda seen: len(seen) == 3, TIMEOUT)
        cluster[1].signal(signal.SIGTERM)
        assert cluster[1].wait() == 0
        # without the goodbye it would stay listed for ten intervals (100 s)
        assert roster.wait_for(lambda seen: len(seen) == 2, 10)
        assert {s.message["pid"] for s in roster.instances()} == {cluster[0].proc.pid}


def test_the_shell_completes_methods_it_never_called(cluster, rabbit_uri):
    done = nameko(
        "shell", "--broker", rabbit_uri, stdin="print(dir(n.rpc), dir(n.rpc.inventory))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['greeter', 'inventory'] ['ping', 'stock']"]
