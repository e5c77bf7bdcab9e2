"""``nameko cluster``: the services, instances and entrypoints that are running.

It asks every instance to announce itself (a discovery request on the
``nameko-presence`` exchange) and lists what answered within ``--wait``
seconds. Instances announce themselves when ``nameko run`` runs them with
presence on (the default; ``PRESENCE: false`` turns it off).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from nameko._concurrency import Event
from nameko._presence.listing import format_listing
from nameko._presence.roster import Roster
from nameko._urls import sanitize_url
from nameko.cli.config import add_config_options, setup_config
from nameko.cli.main import DEFAULT_BROKER
from nameko.constants import AMQP_URI_CONFIG_KEY

NAME = "cluster"
HELP = "List the running services, their instances and entrypoints"
DEFAULT_WAIT = 1.5


def init_parser(parser: Any) -> None:
    add_config_options(parser, DEFAULT_BROKER)
    parser.add_argument("--json", action="store_true", help="print the announcements as JSON")
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=f"how long to listen for answers (default {DEFAULT_WAIT:g})",
    )
    parser.set_defaults(main=main)


def main(args: Any) -> int:
    config = setup_config(args)
    with Roster(config) as roster:
        roster.discover()
        Event().wait(max(0.0, args.wait))  # answers arrive meanwhile; how many is unknown
        messages = [seen.message for seen in roster.instances()]
    if args.json:
        print(json.dumps(messages, indent=2, sort_keys=True))
    elif messages:
        print(format_listing(messages), end="")
    else:
        broker = sanitize_url(config[AMQP_URI_CONFIG_KEY])
        print(
            f"no service instance answered on {broker} within {args.wait:g} s "
            "(services announce themselves under `nameko run` unless PRESENCE is false)",
            file=sys.stderr,
        )
    return 0
