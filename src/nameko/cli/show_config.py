"""``nameko show-config``: print the config after ``${ENV}`` substitution."""

from __future__ import annotations

from typing import Any

import yaml

from nameko.cli.config import setup_config

NAME = "show-config"
HELP = "Print the configuration, with environment variables substituted"


def init_parser(parser: Any) -> None:
    parser.add_argument(
        "--config", default="config.yaml", metavar="FILE", help="YAML configuration file"
    )
    parser.set_defaults(main=main, broker=None, default_broker=None)


def main(args: Any) -> None:
    config = setup_config(args)
    print(yaml.dump(config, default_flow_style=False))
