"""Where per-test vhosts come from: the management API when it answers,
rabbitmqctl otherwise, and a quick, explicit failure when neither works.
`rabbit_manager` needs the management API and says so. No RabbitMQ is
needed here: rabbitmqctl is taken off PATH, and the management API is a
local fake (`FakeManagementApi`) or a closed port."""

from __future__ import annotations

import json
import time

from tests.plugin.test_rabbit_client import closed_port

USES_RABBIT_CONFIG = """
import json, os

def test_one(rabbit_config):
    with open(os.environ["OUT"], "w") as out:
        json.dump(rabbit_config, out)

def test_two(rabbit_config):
    pass
"""


def no_rabbitmqctl(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_without_rabbitmqctl_or_management_api_rabbit_config_fails_fast(
    pytester, run_inner, monkeypatch, tmp_path
):
    no_rabbitmqctl(monkeypatch, tmp_path)
    port = closed_port()
    pytester.makepyfile(test_inner=USES_RABBIT_CONFIG)
    started = time.monotonic()
    result = run_inner("--rabbit-api-uri", f"http://guest:pw@127.0.0.1:{port}", timeout=60)
    assert time.monotonic() - started < 20
    result.assert_outcomes(errors=2)  # the second test fails at once as well
    text = result.stdout.str()
    assert "VhostsUnavailable: cannot create RabbitMQ vhosts for the tests; tried" in text
    assert f"the management API at http://guest:********@127.0.0.1:{port}" in text
    assert "rabbitmqctl: not found on PATH" in text
    errors = [line for line in text.splitlines() if line.startswith("E ")]
    assert errors and not any("pw@" in line for line in errors)  # the password is masked


def test_vhosts_come_from_the_management_api_when_it_answers(
    pytester, run_inner, monkeypatch, tmp_path, fake_api
):
    no_rabbitmqctl(monkeypatch, tmp_path)  # so the API must be what made it
    out = tmp_path / "config.json"
    monkeypatch.setenv("OUT", str(out))
    pytester.makepyfile(test_inner=USES_RABBIT_CONFIG)
    run_inner("--rabbit-api-uri", fake_api.uri).assert_outcomes(passed=2)
    seen = json.loads(out.read_text())
    vhost = seen["vhost"]
    assert seen["AMQP_URI"] == f"pyamqp://guest:guest@localhost:5672/{vhost}"
    assert ("PUT", f"/api/vhosts/{vhost}", None) in fake_api.requests
    assert fake_api.permissions[(vhost, "guest")] == {
        "configure": ".*",
        "read": ".*",
        "write": ".*",
    }
    # every vhost made for the session is gone once it ends
    assert list(fake_api.vhosts) == ["/"]
    assert ("DELETE", f"/api/vhosts/{vhost}", None) in fake_api.requests


USES_RABBIT_MANAGER = """
def test_manager(rabbit_manager):
    assert {"name": "/"} in rabbit_manager.get_all_vhosts()
"""


def test_rabbit_manager_says_the_management_api_is_off(pytester, run_inner):
    port = closed_port()
    pytester.makepyfile(test_inner=USES_RABBIT_MANAGER)
    result = run_inner("--rabbit-ctl-uri", f"http://guest:guest@127.0.0.1:{port}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ManagementApiUnavailable: Connection error for the RabbitMQ management HTTP API "
            f"at http://127.0.0.1:{port}/api/overview, is it enabled?"
        ]
    )


def test_rabbit_manager_talks_to_the_management_api(pytester, run_inner, fake_api):
    pytester.makepyfile(test_inner=USES_RABBIT_MANAGER)
    run_inner("--rabbit-api-uri", fake_api.uri).assert_outcomes(passed=1)
    assert ("GET", "/api/vhosts", None) in fake_api.requests
