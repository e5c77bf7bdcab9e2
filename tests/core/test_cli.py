"""CLI commands run in-process: what they print and how they exit."""

from __future__ import annotations

import pytest
import yaml

from nameko._redaction import redact_config
from nameko.cli.main import main

CONFIG = """\
AMQP_URI: amqp://user:${SECRET_PASSWORD:none}@rabbit.example:5672/prod
AMQP_SSL:
  certfile: /etc/ssl/client.pem
  keyfile_password: ${SECRET_PASSWORD:none}
DB_URIS:
  orders: postgresql://orders:S3cr3t@db.example/orders
API_TOKEN: abc123
SIGNING_KEY: k3y
max_workers: 4
"""


def _show_config(tmp_path, capsys, monkeypatch, *flags):
    monkeypatch.setenv("SECRET_PASSWORD", "S3cr3t")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    with pytest.raises(SystemExit) as exit_:
        main(["show-config", "--config", str(path), *flags])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    return out, yaml.safe_load(out)


def test_show_config_masks_secrets(tmp_path, capsys, monkeypatch):
    out, shown = _show_config(tmp_path, capsys, monkeypatch)
    assert "S3cr3t" not in out and "abc123" not in out and "k3y" not in out
    assert shown["AMQP_URI"] == "amqp://user:********@rabbit.example:5672/prod"
    assert shown["AMQP_SSL"] == {"certfile": "/etc/ssl/client.pem", "keyfile_password": "********"}
    assert shown["DB_URIS"]["orders"] == "postgresql://orders:********@db.example/orders"
    assert shown["API_TOKEN"] == shown["SIGNING_KEY"] == "********"
    assert shown["max_workers"] == 4


def test_show_config_show_secrets_prints_them(tmp_path, capsys, monkeypatch):
    _, shown = _show_config(tmp_path, capsys, monkeypatch, "--show-secrets")
    assert shown["AMQP_URI"] == "amqp://user:S3cr3t@rabbit.example:5672/prod"
    assert shown["AMQP_SSL"]["keyfile_password"] == "S3cr3t"
    assert shown["API_TOKEN"] == "abc123"


def test_redact_config_keeps_non_string_values_and_shapes():
    config = {"PASSWORD_RETRIES": 3, "tokens": ["a", "b"], "nested": ({"secret": None},)}
    assert redact_config(config) == config  # only string values of secret keys go
    assert redact_config({"auth": {"Password": "pw"}}) == {"auth": {"Password": "********"}}
