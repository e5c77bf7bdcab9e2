"""Ports: the fixtures never use a fixed one, a taken address is one line
naming it and the setting to change, and the bound address is logged."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator

import pytest
import requests

from nameko._listening import CannotListen
from nameko.cli.main import main
from nameko.exceptions import ConfigurationError
from nameko.web.handlers import http


class Shop:
    name = "port_shop"

    @http("GET", "/hi")
    def hi(self, request):
        return "hi"


@pytest.fixture
def taken() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a socket this test listens on (a port the kernel chose)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_memory_config_serves_http_on_a_free_loopback_port(container_factory, memory_config):
    host, port = memory_config["WEB_SERVER_ADDRESS"].split(":")
    assert host == "127.0.0.1" and int(port) != 8000
    container_factory(Shop, memory_config).start()
    assert requests.get(f"http://127.0.0.1:{port}/hi", timeout=5).text == "hi"


def test_memory_config_and_web_config_agree(memory_config, web_config, web_config_port):
    assert memory_config["WEB_SERVER_ADDRESS"] == web_config["WEB_SERVER_ADDRESS"]
    assert web_config["WEB_SERVER_ADDRESS"] == f"127.0.0.1:{web_config_port}"


def test_a_taken_address_is_one_line_naming_it_and_the_setting(
    container_factory, memory_config, taken
):
    container = container_factory(Shop, {**memory_config, "WEB_SERVER_ADDRESS": taken})
    with pytest.raises(CannotListen) as raised:
        container.start()
    assert str(raised.value) == (
        f"cannot listen on {taken} (address already in use); "
        "set WEB_SERVER_ADDRESS to a free [host:]port"
    )
    # still what code catching the bind error expects
    assert isinstance(raised.value, OSError) and raised.value.errno == errno.EADDRINUSE
    assert isinstance(raised.value, ConfigurationError)


def test_nameko_run_on_a_taken_address_says_so_in_one_line(memory_config, taken, capsys):
    argv = ["run", "--broker", memory_config["AMQP_URI"], "-d", f"WEB_SERVER_ADDRESS={taken}"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "tests.web.test_ports:Shop"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err == (
        f"Error: cannot listen on {taken} (address already in use); "
        "set WEB_SERVER_ADDRESS to a free [host:]port\n"
    )


def test_the_bound_address_is_logged_at_info(container_factory, memory_config, caplog):
    config = {**memory_config, "WEB_SERVER_ADDRESS": "127.0.0.1:0"}
    with caplog.at_level(logging.INFO, logger="nameko.web.server"):
        container = container_factory(Shop, config)
        container.start()
    lines = [r.getMessage() for r in caplog.records if r.name == "nameko.web.server"]
    assert len(lines) == 1 and lines[0].startswith("port_shop: HTTP server listening on 127.0.0.1:")
    bound = int(lines[0].rsplit(":", 1)[1])
    assert bound != 0
    assert requests.get(f"http://127.0.0.1:{bound}/hi", timeout=5).text == "hi"


def test_the_dashboard_on_a_taken_address_says_so_in_one_line(memory_config, taken, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard", "--broker", memory_config["AMQP_URI"], "--address", taken])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f"Error: cannot listen on {taken} (address already in use); "
        "pass --address a free [HOST:]PORT\n"
    )
