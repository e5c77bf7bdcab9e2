"""CLI commands run in-process: what they print and how they exit."""

from __future__ import annotations

import argparse

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


def test_redact_config_keeps_flags_numbers_and_shapes():
    config = {"PASSWORD_RETRIES": 3, "AUTH_ENABLED": True, "nested": ({"secret": None},)}
    assert redact_config(config) == config  # what says whether a secret is set stays
    assert redact_config({"auth": {"Password": "pw"}}) == {"auth": {"Password": "********"}}
    assert redact_config({"tokens": ["a", "b"]}) == {"tokens": ["********", "********"]}


BY_VALUE = """\
AMQP_URI: amqp://app:${AMQP_PASSWORD:Amqp-Pw-1}@rabbit.example:5672/prod
AUTH_HEADER: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcmRlcnMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ
CREDENTIALS: svc-orders:Cr3d-Secret
SMTP:
  host: smtp.example
  pass: Smtp-Pass-9
SENTRY_DSN: https://0f1e2d3c4b5a69788796a5b4c3d2e1f0@o1.ingest.sentry.example/42
ERRORS:
  url: https://9a8b7c6d5e4f@o2.ingest.sentry.example/7
MAIL_OPTIONS: ${MAIL_SMTP_PASS:Env-Default-7}
QUOTED: '${RELAY_TOKEN:Quoted-Default-8}'
CALLBACK: https://hooks.example/notify?api_key=Hook-Key-6&channel=ops
max_workers: 4
"""


def test_show_config_masks_secrets_by_value_and_nested_names(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AMQP_PASSWORD", raising=False)
    monkeypatch.delenv("MAIL_SMTP_PASS", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(BY_VALUE)
    with pytest.raises(SystemExit):
        main(["show-config", "--config", str(path)])
    out = capsys.readouterr().out
    for secret in [
        "Amqp-Pw-1",
        "eyJ",
        "Cr3d",
        "Smtp-Pass",
        "0f1e2d3c",
        "9a8b7c",
        "Env-Default",
        "Quoted-Def",
    ]:
        assert secret not in out, out
    assert "Hook-Key" not in out
    shown = yaml.safe_load(out)
    assert shown["AMQP_URI"] == "amqp://app:********@rabbit.example:5672/prod"
    assert shown["AUTH_HEADER"] == shown["CREDENTIALS"] == "********"
    assert shown["SMTP"] == {"host": "smtp.example", "pass": "********"}
    assert shown["SENTRY_DSN"] == "********"  # by its name
    assert shown["ERRORS"]["url"] == "https://********@o2.ingest.sentry.example/7"  # by value
    assert shown["MAIL_OPTIONS"] == "********"  # it came from a secret-named variable
    assert shown["QUOTED"] == "${RELAY_TOKEN:********}"
    assert shown["CALLBACK"] == "https://hooks.example/notify?api_key=********&channel=ops"
    assert shown["max_workers"] == 4
    with pytest.raises(SystemExit):
        main(["show-config", "--config", str(path), "--show-secrets"])
    assert "Env-Default-7" in capsys.readouterr().out


def test_an_error_never_shows_a_placeholder_default(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("DB: ${DB_PASSWORD:Typo-Default-5\n")
    code, _, err = _run_cli(capsys, "show-config", "-c", str(path))
    assert code == 1 and "DB_PASSWORD" in err and "Typo" not in err, err


def _run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "AMQP_URI: [unclosed\n  x: 1\n",
            "config.yaml:2:4: invalid YAML: while parsing a flow sequence expected ',' or ']'",
        ),
        ("a: 1\n b: 2\n", "config.yaml:2:3: invalid YAML: mapping values are not allowed here"),
        ("AMQP_URI: ${PASSWORD\n", "config.yaml: AMQP_URI: bad placeholder '${PASSWORD'"),
        ("DB:\n  - x${:y}\n", "config.yaml: DB[0]: bad placeholder '${:y}'"),
        ("- a\n- b\n", "The config file must contain a mapping, not list"),
        (b"a: \xff\n", "is not UTF-8 text"),
    ],
)
def test_a_bad_config_file_is_one_line_and_a_failure(tmp_path, capsys, text, message):
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, out, err = _run_cli(capsys, "show-config", "-c", str(path))
    assert code == 1
    assert err.startswith("Error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_directory_as_config_is_one_line(tmp_path, capsys):
    code, _, err = _run_cli(capsys, "show-config", "--config", str(tmp_path))
    assert code == 1
    assert err == f"Error: config file {tmp_path} is a directory, not a YAML file\n"


def test_a_quoted_placeholder_stays_text_as_in_nameko(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("TEMPLATE: '${NAME}'\n")
    code, out, _ = _run_cli(capsys, "show-config", "-c", str(path))
    assert code == 0 and yaml.safe_load(out) == {"TEMPLATE": "${NAME}"}


def test_a_failing_logging_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(
        "AMQP_URI: memory://logging\n"
        "LOGGING:\n  version: 1\n  handlers:\n    x:\n      class: no.such.Handler\n"
    )
    code, _, err = _run_cli(capsys, "run", "-c", str(path), "tests.core.test_cli")
    assert code == 1
    assert err == "Error: LOGGING in the config is invalid: Unable to configure handler 'x'\n"


def test_broker_on_the_command_line_beats_the_config_file_and_says_so(tmp_path, capsys):
    from nameko import config
    from nameko.cli.config import add_config_options, setup_config

    path = tmp_path / "config.yaml"
    path.write_text("AMQP_URI: amqp://u:filepass@file-host/\n")

    parser = argparse.ArgumentParser()
    add_config_options(parser, "amqp://guest:guest@localhost")
    args = parser.parse_args(["-c", str(path), "--broker", "amqp://u:clipass@cli-host/"])
    assert setup_config(args)["AMQP_URI"] == "amqp://u:clipass@cli-host/"
    assert config["AMQP_URI"] == "amqp://u:clipass@cli-host/"
    err = capsys.readouterr().err
    assert err == f"--broker amqp://u:********@cli-host/ overrides AMQP_URI from {path}\n"

    no_broker = parser.parse_args(["-c", str(path)])
    assert setup_config(no_broker)["AMQP_URI"] == "amqp://u:filepass@file-host/"
    assert setup_config(parser.parse_args([]))["AMQP_URI"] == "amqp://guest:guest@localhost"


def test_a_bad_process_count_is_one_line(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("AMQP_URI: memory://processes\nPROCESSES: two\n")
    code, _, err = _run_cli(capsys, "run", "-c", str(path), "tests.core.test_shell:Inventory")
    assert (code, err) == (1, "Error: PROCESSES must be a whole number of at least 1\n")
    code, _, err = _run_cli(capsys, "run", "--processes", "0", "tests.core.test_cli")
    assert code == 2 and "--processes: must be a whole number of at least 1, not '0'" in err
