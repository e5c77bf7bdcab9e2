"""What the CLI says when a first try goes wrong: help that tells the truth,
a syntax error shown as Python shows it, the classes a module does have,
and an unreachable broker retried once, with an honest count."""

from __future__ import annotations

import logging
import re
import sys

import pytest
import yaml

from nameko.cli.main import main
from nameko.events import EventDispatcher
from nameko.rpc import RpcProxy, rpc
from nameko.testing.utils import find_free_port


class Orders:
    name = "orders"
    dispatch = EventDispatcher()
    inventory = RpcProxy("inventory")

    @rpc
    def place(self, item):
        return item


class Invoices:
    name = "invoices"

    @rpc
    def send(self, order):
        return order


class Helper:  # no entrypoints: not a service
    pass


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def test_run_help_says_broker_overrides_the_config(capsys):
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "used when the config gives no AMQP_URI" not in text
    assert (
        "--broker URL AMQP broker URL; overrides the config file's AMQP_URI "
        "(with neither: pyamqp://guest:guest@localhost)" in text
    )


def test_show_config_takes_broker_as_run_does(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("AMQP_URI: amqp://app:filepass@file-host/\nmax_workers: 4\n")
    code, out, err = run_cli(
        capsys, "show-config", "-c", str(path), "--broker", "amqp://app:clipass@cli-host/"
    )
    assert code == 0
    assert yaml.safe_load(out) == {"AMQP_URI": "amqp://app:********@cli-host/", "max_workers": 4}
    assert err == f"--broker amqp://app:********@cli-host/ overrides AMQP_URI from {path}\n"


def test_a_syntax_error_in_a_service_module_is_shown_as_python_shows_it(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "broken_shop.py").write_text(
        "from nameko.rpc import rpc\n\n\nclass Shop:\n    def buy(self, item:\n        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_shop", raising=False)
    code, _, err = run_cli(capsys, "run", "--broker", "memory://syntax", "broken_shop")
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "Error: cannot import 'broken_shop':"
    assert lines[1] == f'  File "{tmp_path / "broken_shop.py"}", line 5'
    assert lines[2] == "    def buy(self, item:"
    assert lines[3].strip() == "^"
    assert lines[4].startswith("SyntaxError: ")
    assert len(lines) == 5 and "Traceback" not in err


def test_a_missing_service_class_lists_the_services_there(capsys):
    module = "tests.core.test_cli_messages"
    code, _, err = run_cli(capsys, "run", "--broker", "memory://missing", f"{module}:Nope")
    assert (code, err) == (
        1,
        f"Error: Failed to find service class 'Nope' in module '{module}': "
        "it has Invoices, Orders\n",
    )
    code, _, err = run_cli(capsys, "run", "--broker", "memory://missing", f"{module}:Order")
    assert err.endswith("it has Invoices, Orders; did you mean 'Orders'?\n")


def test_an_unreachable_broker_is_retried_once_with_an_honest_count(capsys, caplog):
    port = find_free_port()  # nothing listens there: connections are refused
    options = "TRANSPORT_OPTIONS={max_retries: 2, interval_start: 0, interval_step: 0.1}"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(
            capsys,
            *("run", "--broker", f"amqp://guest:guest@127.0.0.1:{port}/", "-d", options),
            "tests.core.test_cli_messages:Orders",  # three extensions connect at set-up
        )
    assert code == 1
    retries = re.findall(r"\(retry (\d) of 2\)", caplog.text)
    assert retries == ["1", "2"]  # one round for the container, not one per extension
    assert err == (
        f"Error: cannot connect to broker at amqp://guest:********@127.0.0.1:{port}/: "
        "[Errno 111] Connection refused\n"
    )
