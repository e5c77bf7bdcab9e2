"""`nameko cluster` and the shell's names from announcements, in one process
(the memory broker is shared by URI); real processes: tests/integration."""

from __future__ import annotations

import json
import time

import pytest

from nameko.cli._shell import ServiceStopped, ShellUnknownService
from nameko.cli.main import main
from nameko.cli.shell import make_nameko_helper
from nameko.events import event_handler
from nameko.exceptions import RpcTimeout
from nameko.rpc import rpc
from nameko.timer import cron, timer


class Inventory:
    name = "inventory"

    @rpc
    def stock(self, item: str) -> int:
        """How many of ``item`` are left.

        Counted at the last stock-take."""
        return 3

    @rpc
    def ping(self):
        return "pong"

    @event_handler("orders", "placed")
    def on_placed(self, payload):
        pass


class Listener:
    name = "listener"

    @event_handler("orders", "placed")
    def on_placed(self, payload):
        pass


def cluster(config, capsys, *options):
    with pytest.raises(SystemExit) as exited:
        main(["cluster", "--broker", config["AMQP_URI"], "--wait", "0.5", *options])
    assert exited.value.code == 0
    return capsys.readouterr()


def test_cluster_lists_services_instances_and_entrypoints(config, announced, capsys):
    _, announcer = announced(Inventory)
    announced(Listener)
    out = cluster(config, capsys).out
    lines = out.splitlines()
    assert lines[0] == "inventory (1 instance)"
    assert lines[1].split() == ["instance", "host", "pid", "uptime", "version", "state"]
    row = lines[2].split()
    assert row[1:3] == [announcer.host, str(announcer.pid)] and row[-1] == "running"
    assert lines[3].split()[:3] == ["event_handler", "on_placed(payload)", "orders.placed"]
    assert lines[4].split()[:2] == ["rpc", "ping()"]
    assert lines[5].split() == [
        *("rpc", "stock(item:", "str)", "->", "int"),
        *("How", "many", "of", "``item``", "are", "left."),
    ]
    assert "listener (1 instance)" in lines


class Reports:
    name = "reports"

    @cron("*/1 * * * *")
    def nightly(self):
        pass

    @cron("0 7 * * mon-fri", tz="Europe/London", singleton=False)
    def morning(self):
        pass

    @timer(interval=90)
    def poll(self):
        pass


def test_cluster_shows_a_cron_entrypoint_by_its_expression(config, announced, capsys):
    announced(Reports)
    lines = cluster(config, capsys).out.splitlines()
    assert lines[3].split() == ["cron", "morning()", "0", "7", "*", "*", "mon-fri"] + [
        "(Europe/London,",
        "every",
        "instance)",
    ]
    assert lines[4].split() == ["cron", "nightly()", "*/1", "*", "*", "*", "*"] + [
        "(UTC,",
        "one",
        "instance)",
    ]
    assert lines[5].split() == ["timer", "poll()", "every", "90", "s"]


def test_cluster_json(config, announced, capsys):
    announced(Inventory)
    [message] = json.loads(cluster(config, capsys, "--json").out)
    assert message["service"] == "inventory"
    assert [ep["key"] for ep in message["entrypoints"]] == [
        "event_handler:on_placed",
        "rpc:ping",
        "rpc:stock",
    ]


def test_cluster_says_when_nobody_answers(config, capsys):
    err = cluster(config, capsys).err
    assert "no service instance answered" in err and "within 0.5 s" in err


def test_the_shell_completes_announced_services_and_their_rpc_methods(announced, config):
    announced(Inventory)
    announced(Listener)  # no @rpc: nothing to call through n.rpc
    n = make_nameko_helper(config, timeout=5)
    try:
        assert dir(n.rpc) == ["inventory"]
        assert dir(n.rpc.inventory) == ["ping", "stock"]
    finally:
        n.disconnect()


def test_an_unknown_service_suggests_announced_names(announced, config):
    announced(Inventory)
    n = make_nameko_helper(config, timeout=5)
    try:
        with pytest.raises(ShellUnknownService) as caught:
            n.rpc.inventori.ping()
        assert caught.value.suggestions == ["inventory"]
    finally:
        n.disconnect()


@pytest.mark.parametrize(
    "options, error",
    [
        (["--address", "nowhere"], "Error: --address must be [HOST:]PORT, not 'nowhere'"),
        (["--refresh", "0"], "Error: --refresh must be a positive number of seconds"),
    ],
)
def test_dashboard_options_are_checked_in_one_line(config, capsys, options, error):
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--broker", config["AMQP_URI"], *options])
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == error


def test_the_shell_gives_up_at_once_on_a_service_that_announced_it_stopped(announced, config):
    container, _ = announced(Inventory)
    n = make_nameko_helper(config, timeout=30)
    try:
        assert n.rpc.inventory.ping() == "pong"
        container.stop()  # its announcer says goodbye
        started = time.monotonic()
        with pytest.raises(ServiceStopped) as caught:
            n.rpc.inventory.ping()
        waited = time.monotonic() - started
        assert waited < 5, waited  # not the 30 s timeout
        assert isinstance(caught.value, RpcTimeout)  # what scripts catch
        assert str(caught.value) == (
            "no reply from 'inventory': its instances announced they stopped "
            "(the request stays queued for the next instance)"
        )
    finally:
        n.disconnect()


def test_the_shell_calls_a_service_again_once_an_instance_is_back(announced, config):
    first, _ = announced(Inventory)
    n = make_nameko_helper(config, timeout=30)
    try:
        first.stop()
        with pytest.raises(ServiceStopped):
            n.rpc.inventory.ping()
        announced(Inventory)
        assert n.rpc.inventory.ping() == "pong"  # the queued call was answered too
    finally:
        n.disconnect()


def test_a_method_not_found_suggests_announced_methods(announced, config):
    from nameko.exceptions import MethodNotFound

    announced(Inventory)
    n = make_nameko_helper(config, timeout=5)
    try:
        with pytest.raises(MethodNotFound) as caught:
            n.rpc.inventory.stok("apple")
        assert str(caught.value) == "stok: did you mean 'stock'?"
    finally:
        n.disconnect()
