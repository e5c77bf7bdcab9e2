"""Config for CLI commands: a YAML file (with ``${ENV:default}`` values) and/or --broker."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import yaml

from nameko._config_yaml import load_config
from nameko._global_config import config as global_config
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import CommandError

__all__ = [
    "add_config_options",
    "add_define_option",
    "parse_defines",
    "setup_config",
    "setup_logging",
]


def add_config_options(parser: Any, default_broker: str) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="YAML configuration file")
    add_define_option(parser)
    parser.add_argument(
        "--broker",
        default=None,
        metavar="URL",
        help=f"AMQP broker URL, used when the config gives no AMQP_URI (default {default_broker})",
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
    """The config file if given; ``--broker`` fills in a missing AMQP_URI
    (nameko 2.14 ignored --broker when --config was given, SPEC 13.19)."""
    config: dict[str, Any] = {}
    if args.config:
        try:
            config = load_config(args.config) or {}
        except FileNotFoundError:
            raise CommandError(f"config file not found: {args.config}") from None
        if not isinstance(config, dict):
            raise CommandError(f"config file {args.config} must hold a mapping")
    broker = args.broker or args.default_broker
    if broker is not None:
        config.setdefault(AMQP_URI_CONFIG_KEY, broker)
    config.update(parse_defines(getattr(args, "define", None) or []))
    global_config.setup(config)  # nameko 3 code reads `from nameko import config`
    return config


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
            raise CommandError(f"--define {key}: the value is not valid YAML ({exc})") from None
    return parsed


def setup_logging(config: dict[str, Any]) -> None:
    if "LOGGING" in config:
        # dictConfig would silence every logger that exists already, i.e.
        # all of the framework's; keep them unless the user says otherwise.
        logging.config.dictConfig({"disable_existing_loggers": False, **config["LOGGING"]})
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
