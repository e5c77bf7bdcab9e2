"""``nameko show-config``: print the config after ``${ENV}`` substitution.

Secrets are masked unless ``--show-secrets`` is given (nameko 2.14 printed
them): by key name, by value pattern (`nameko._redaction`), and whatever a
secret-named environment variable (or its default) put in the config."""

from __future__ import annotations

from typing import Any

import yaml

from nameko._config_yaml import collecting_secret_values
from nameko._redaction import mask_values, redact_config
from nameko.cli.config import add_broker_option, add_define_option, setup_config

NAME = "show-config"
HELP = "Print the configuration, with environment variables substituted"


def init_parser(parser: Any) -> None:
    parser.add_argument(
        "-c", "--config", default="config.yaml", metavar="FILE", help="YAML configuration file"
    )
    add_define_option(parser)
    add_broker_option(parser, None)  # shows what `nameko run --broker URL` would use
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="print passwords, tokens and keys in clear (masked by default)",
    )
    parser.set_defaults(main=main)


def main(args: Any) -> None:
    with collecting_secret_values() as from_secret_variables:
        config = setup_config(args)
    if not args.show_secrets:
        config = redact_config(mask_values(config, from_secret_variables))
    print(yaml.dump(config, default_flow_style=False))
