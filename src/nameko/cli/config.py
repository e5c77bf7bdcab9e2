"""Config for CLI commands: a YAML file (with ``${ENV:default}`` values) and/or --broker."""

from __future__ import annotations

import logging
import sys
from typing import Any

import yaml

from nameko._config_yaml import load_config, malformed_placeholder
from nameko._global_config import config as global_config
from nameko._redaction import is_secret_name
from nameko._urls import sanitize_url
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import CommandError

__all__ = [
    "add_broker_option",
    "add_config_options",
    "add_define_option",
    "parse_defines",
    "setup_config",
    "setup_logging",
]


def add_config_options(parser: Any, default_broker: str) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="YAML configuration file")
    add_define_option(parser)
    add_broker_option(parser, default_broker)


def add_broker_option(parser: Any, default_broker: str | None) -> None:
    """``--broker URL``: wins over the config file's AMQP_URI (`setup_config`)."""
    fallback = f" (with neither: {default_broker})" if default_broker else ""
    parser.add_argument(
        "--broker",
        default=None,
        metavar="URL",
        help=f"AMQP broker URL; overrides the config file's AMQP_URI{fallback}",
    )
    parser.set_defaults(default_broker=default_broker)


def add_define_option(parser: Any) -> None:
    parser.add_argument(
        "-d",
        "--define",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key (the value is read as YAML; a bare KEY is true); repeatable, "
        "overrides the config file",
    )


def setup_config(args: Any) -> dict[str, Any]:
    """The config file if given, then ``--broker``, then ``--define``s.

    ``--broker`` on the command line wins over the file's AMQP_URI and says
    so (nameko 2.14 ignored it silently when a config file was given, SPEC
    13.19); the command's default broker only fills a missing AMQP_URI."""
    config = read_config_file(args.config) if args.config else {}
    if args.broker:
        if config.get(AMQP_URI_CONFIG_KEY, args.broker) != args.broker:
            print(
                f"--broker {sanitize_url(args.broker)} overrides AMQP_URI from {args.config}",
                file=sys.stderr,
            )
        config[AMQP_URI_CONFIG_KEY] = args.broker
    elif args.default_broker is not None:
        config.setdefault(AMQP_URI_CONFIG_KEY, args.default_broker)
    config.update(parse_defines(getattr(args, "define", None) or []))
    global_config.setup(config)  # nameko 3 code reads `from nameko import config`
    return config


def read_config_file(path: str) -> dict[str, Any]:
    """Load ``path``; every way it can fail is one line (`CommandError`)."""
    try:
        config = load_config(path)
    except FileNotFoundError:
        raise CommandError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"config file {path} is a directory, not a YAML file") from None
    except OSError as exc:
        raise CommandError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"config file {path} is not UTF-8 text ({exc.reason})") from None
    except yaml.MarkedYAMLError as exc:
        raise CommandError(_yaml_error(path, exc)) from None
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: invalid YAML: {exc}") from None
    check_placeholders(config, path)
    return config


def _yaml_error(path: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
    what = " ".join(filter(None, [exc.context, exc.problem]))
    return f"{where}: invalid YAML: {what}"


def check_placeholders(value: Any, path: str, key: str = "") -> None:
    """A ``${`` left after substitution that is not a well-formed
    ``${NAME}`` / ``${NAME:default}`` is a typo (``${PASSWORD``): nameko
    kept it as text and the broker refused the login later."""
    if isinstance(value, dict):
        for name, item in value.items():
            check_placeholders(item, path, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_placeholders(item, path, f"{key}[{index}]")
    elif isinstance(value, str) and (bad := malformed_placeholder(value)) is not None:
        raise CommandError(
            f"{path}: {key}: bad placeholder {bad!r}: write ${{NAME}} or ${{NAME:default}}"
        )


def parse_defines(defines: list[str]) -> dict[str, Any]:
    """``--define KEY=VALUE`` pairs: values are YAML (``-d max_workers=4``
    gives an int), a bare ``KEY`` is True."""
    parsed: dict[str, Any] = {}
    for define in defines:
        key, sep, value = define.partition("=")
        if not key:
            raise CommandError(f"--define wants KEY=VALUE, not {define!r}")
        try:
            parsed[key] = yaml.safe_load(value) if sep else True
        except yaml.YAMLError as exc:
            raise CommandError(
                f"--define {key}: the value is not valid YAML ({_why(key, exc)})"
            ) from None
    return parsed


def _why(key: str, exc: yaml.YAMLError) -> str:
    """The YAML error, without the snippet of the value when it is a secret."""
    if is_secret_name(key):
        return str(getattr(exc, "problem", None) or type(exc).__name__)
    return str(exc)


def setup_logging(config: dict[str, Any]) -> None:
    if "LOGGING" in config:
        # about 1 MiB (socketserver, logging.handlers): loaded only when asked for
        from logging import config as logging_config

        # dictConfig would silence every logger that exists already, i.e.
        # all of the framework's; keep them unless the user says otherwise.
        try:
            logging_config.dictConfig({"disable_existing_loggers": False, **config["LOGGING"]})
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            raise CommandError(f"LOGGING in the config is invalid: {exc}") from None
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
