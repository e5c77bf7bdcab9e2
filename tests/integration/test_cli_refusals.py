"""`nameko run` against a real broker that turns the connection down: a wrong
password or a missing vhost fails at once (retrying cannot fix it), in one
line that does not show the password; a broker that is down is retried a
bounded number of times, saying how many."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.integration.conftest import SRC

PASSWORD = "Sh1mejiS3cret"
SERVICE = "from nameko.rpc import rpc\n\nclass S:\n    name = 's'\n\n    @rpc\n    def ping(self):\n        return 1\n"


def nameko_run(tmp_path, broker: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "svc.py").write_text(SERVICE)
    return subprocess.run(
        [sys.executable, "-m", "nameko", "run", "--broker", broker, *extra, "svc"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        (
            f"amqp://guest:{PASSWORD}@127.0.0.1:5672/",
            "the broker refused the login of user 'guest' (ACCESS_REFUSED",
        ),
        (
            f"amqp://guest:guest@127.0.0.1:5672/no-such-vhost-{PASSWORD}",
            "the broker refused vhost 'no-such-vhost-Sh1mejiS3cret' (does it exist?)",
        ),
    ],
    ids=["password", "vhost"],
)
def test_a_refused_connection_fails_at_once_in_one_line(tmp_path, broker, message):
    done = nameko_run(tmp_path, broker)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot connect to broker at amqp://guest:********@")
    assert message in last
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr
    if "vhost" not in message:
        assert PASSWORD not in done.stdout + done.stderr


def test_a_broker_that_is_down_is_retried_a_bounded_number_of_times(tmp_path):
    from nameko.testing.utils import find_free_port

    port = find_free_port()  # nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text(
        "TRANSPORT_OPTIONS:\n  max_retries: 2\n  interval_start: 0\n  interval_step: 0.1\n"
    )
    done = nameko_run(tmp_path, f"amqp://guest:{PASSWORD}@127.0.0.1:{port}/", "-c", str(config))
    assert done.returncode == 1
    retries = re.findall(r"Retrying in [0-9.]+ seconds \(retry (\d) of 2\)", done.stderr)
    assert retries == ["1", "2"]
    assert done.stderr.strip().splitlines()[-1].startswith("Error: cannot connect to broker")
    assert PASSWORD not in done.stdout + done.stderr


CONFIG_ERRORS = [
    (
        "config.yaml",
        "AMQP_URI: [unclosed\n  x: 1\n",
        "Error: config.yaml:2:4: invalid YAML: while parsing a flow sequence expected ',' or "
        "']', but got ':'",
    ),
    (
        "config.yaml",
        "AMQP_URI: amqp://guest:${PASSWORD@localhost/\n",
        "Error: config.yaml: AMQP_URI: bad placeholder '${PASSWORD@localhost': write ${NAME} "
        "or ${NAME:default}",
    ),
    ("folder", None, "Error: config file folder is a directory, not a YAML file"),
    ("missing.yaml", None, "Error: config file not found: missing.yaml"),
]


@pytest.mark.parametrize(("name", "text", "line"), CONFIG_ERRORS, ids=lambda v: str(v)[:12])
@pytest.mark.parametrize("command", ["run", "shell", "show-config"])
def test_a_bad_config_is_one_line_from_every_command(tmp_path, command, name, text, line):
    if text is None and name == "folder":
        (tmp_path / name).mkdir()
    elif text is not None:
        (tmp_path / name).write_text(text)
    (tmp_path / "svc.py").write_text(SERVICE)
    args = [sys.executable, "-m", "nameko", command, "--config", name]
    done = subprocess.run(
        [*args, "svc"] if command == "run" else args,
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert (done.returncode, done.stderr) == (1, line + "\n")


def test_a_failing_logging_config_is_one_line_from_nameko_run(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "AMQP_URI: memory://x\nLOGGING:\n  version: 1\n  handlers:\n    x:\n      class: no.Such\n"
    )
    done = nameko_run(tmp_path, "memory://x", "-c", "config.yaml")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: LOGGING in the config is invalid: Unable to configure handler 'x'\n",
    )
