"""Every command, on its success and error paths, with a known password in
its AMQP_URI: the password appears in none of their output.

A RabbitMQ user with that password is created on the test's vhost, so the
success paths really log in with it; `nameko run` logs at DEBUG so that any
log line carrying the URI would show. Output a user explicitly asks for
(``show-config --show-secrets``, printing ``n.config`` in the shell) is
theirs and not part of this test."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from nameko.testing._vhosts import rabbitmqctl
from nameko.testing.utils import find_free_port
from tests.integration.conftest import SRC, NamekoProcess, wait_until_serving

pytestmark = pytest.mark.rabbit

PASSWORD = f"Pw-{secrets.token_hex(8)}"
SERVICE = "from nameko.rpc import rpc\n\nclass Svc:\n    name = 'svc'\n\n    @rpc\n    def ping(self):\n        return 'pong'\n"
DEBUG_LOGGING = {
    "version": 1,
    "handlers": {"out": {"class": "logging.StreamHandler"}},
    "root": {"level": "DEBUG", "handlers": ["out"]},
}
FEW_RETRIES = ["-d", "TRANSPORT_OPTIONS={max_retries: 1, interval_start: 0.1}"]


@pytest.fixture
def secret_uri(rabbit_uri):
    """``rabbit_uri`` with a user of its own whose password is PASSWORD."""
    parts = urlsplit(rabbit_uri)
    vhost = parts.path[1:]
    user = f"pw_{secrets.token_hex(4)}"
    rabbitmqctl("add_user", user, PASSWORD)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        netloc = f"{user}:{PASSWORD}@{parts.hostname}:{parts.port or 5672}"
        yield urlunsplit(parts._replace(netloc=netloc))
    finally:
        rabbitmqctl("delete_user", user)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "svc.py").write_text(SERVICE)
    return tmp_path


def nameko(folder: Path, *args: str, stdin: str = "") -> str:
    """stdout and stderr of ``nameko args...``."""
    done = subprocess.run(
        [sys.executable, "-m", "nameko", *args],
        cwd=folder,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    )
    return done.stdout + done.stderr


def write_config(folder: Path, uri: str | list[str], name: str = "config.yaml") -> str:
    config = {"AMQP_URI": uri, "LOGGING": DEBUG_LOGGING}
    (folder / name).write_text(yaml.safe_dump(config))
    return name


def run_until_serving(folder: Path, uri: str, *args: str) -> str:
    proc = NamekoProcess(folder, [*args, "svc"], folder / f"run-{len(args)}.log")
    try:
        assert wait_until_serving({"AMQP_URI": uri}, "svc") == "pong"
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        return proc.output()
    finally:
        proc.close()


def test_no_command_shows_the_password(folder, secret_uri):
    config = write_config(folder, secret_uri)
    bad_vhost = secret_uri.rsplit("/", 1)[0] + "/no-such-vhost"
    down = secret_uri.replace(f":{urlsplit(secret_uri).port}/", f":{find_free_port()}/")
    (folder / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (folder / "broken.yaml").write_text(f"AMQP_URI: {secret_uri}\nLOGGING: [unclosed\n")
    # several nodes: the first is down, so its failure is logged
    nodes = write_config(folder, [down, secret_uri], "nodes.yaml")
    outputs = {
        "run --config": run_until_serving(folder, secret_uri, "--config", config),
        "run --broker": run_until_serving(
            folder, secret_uri, "--config", config, "--broker", secret_uri
        ),
        "show-config": nameko(folder, "show-config", "--config", config),
        "show-config bad yaml": nameko(folder, "show-config", "--config", "broken.yaml"),
        "shell": nameko(
            folder,
            "shell",
            "--broker",
            secret_uri,
            stdin="print(n.rpc.nobody.ping())\n",
        ),
        "run, missing vhost": nameko(folder, "run", "--broker", bad_vhost, "svc"),
        "run, broker down": nameko(folder, "run", "--broker", down, *FEW_RETRIES, "svc"),
        "shell, broker down": nameko(folder, "shell", "--broker", down, *FEW_RETRIES),
        "run, bad yaml": nameko(folder, "run", "--config", "broken.yaml", "svc"),
        "run, nodes": run_until_serving(folder, secret_uri, "--config", nodes),
        "run --broker nodes": run_until_serving(
            folder, secret_uri, "--config", config, "--broker", f"{down};{secret_uri}"
        ),
        "show-config, nodes": nameko(folder, "show-config", "--config", nodes),
        "shell, nodes down": nameko(folder, "shell", "--broker", f"{down},{down}", *FEW_RETRIES),
        "test": nameko(folder, "test", "--amqp-uri", secret_uri, "-p", "no:cacheprovider"),
    }
    assert "Connected to amqp://" in outputs["run --config"]  # the login really happened
    assert "UnknownService" in outputs["shell"] and "1 passed" in outputs["test"]
    assert "Error:" in outputs["run, missing vhost"] and "Error:" in outputs["run, broker down"]
    assert "; trying amqp://" in outputs["run, nodes"]  # the first node was tried
    shown = nameko(folder, "show-config", "--config", config, "--show-secrets")
    assert PASSWORD in shown  # the search does find the password where it is printed
    leaks = [name for name, output in outputs.items() if PASSWORD in output]
    assert leaks == [], {name: outputs[name] for name in leaks}


SECRET_VALUES = {
    "AUTH_HEADER": "Bearer Tok-{0}-abcdef",
    "CREDENTIALS": "svc:Cred-{0}",
    "SMTP": {"host": "smtp.example", "pass": "Smtp-{0}"},
    "SENTRY_DSN": "https://Dsn{0}@o1.ingest.sentry.example/42",
    "ERRORS": {"url": "https://Key{0}@o2.ingest.sentry.example/7"},
}


def test_no_command_shows_a_secret_config_value(folder, rabbit_uri):
    """Secrets beside the broker URL: by name at any depth, by value, and a
    secret-named placeholder's default, in show-config and in errors."""
    marker = secrets.token_hex(6)
    config = {"AMQP_URI": rabbit_uri, **yaml.safe_load(yaml.safe_dump(SECRET_VALUES))}
    text = yaml.safe_dump(config).format(marker)
    text += f"MAIL_OPTIONS: ${{MAIL_SMTP_PASS:Default-{marker}}}\n"
    (folder / "config.yaml").write_text(text)
    (folder / "typo.yaml").write_text(f"DB: ${{DB_PASSWORD:Typo-{marker}\n")
    outputs = {
        "show-config": nameko(folder, "show-config", "--config", "config.yaml"),
        "run, bad": nameko(folder, "run", "--config", "typo.yaml", "svc"),
        "run, bad -d": nameko(folder, "run", "-d", f"API_TOKEN=[Tok-{marker}, x", "svc"),
    }
    assert "smtp.example" in outputs["show-config"] and "DB_PASSWORD" in outputs["run, bad"]
    assert "not valid YAML" in outputs["run, bad -d"]
    shown = nameko(folder, "show-config", "--config", "config.yaml", "--show-secrets")
    assert shown.count(marker) == 6  # the search finds each where it is printed
    leaks = [name for name, output in outputs.items() if marker in output]
    assert leaks == [], {name: outputs[name] for name in leaks}
