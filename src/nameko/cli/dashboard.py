"""``nameko dashboard``: a web page of the live cluster.

Services, their instances (host, pid, uptime, version, workers busy) and
entrypoints with call and error rates and latency, from the instances'
announcements (`nameko._presence`), refreshed every ``--refresh`` seconds.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

from nameko._concurrency import Event
from nameko._listening import CannotListen
from nameko._urls import sanitize_url
from nameko.cli.config import add_config_options, setup_config, setup_logging
from nameko.cli.main import DEFAULT_BROKER
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import CommandError, ConfigurationError

if TYPE_CHECKING:
    from nameko._web.addresses import BindAddress

NAME = "dashboard"
HELP = "Serve a web page of the live cluster"
DEFAULT_ADDRESS = "127.0.0.1:8008"
# the server and its page are imported by `main`: other commands (and the
# services `nameko run` imports) must not load werkzeug and http.* first
DEFAULT_REFRESH = 2.0  # seconds, as nameko._presence.dashboard


def init_parser(parser: Any) -> None:
    add_config_options(parser, DEFAULT_BROKER)
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="[HOST:]PORT",
        help=f"where to serve the page (default {DEFAULT_ADDRESS}; loopback unless HOST is "
        "given; port 0 picks a free one)",
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=DEFAULT_REFRESH,
        metavar="SECONDS",
        help=f"how often to ask the instances for fresh stats (default {DEFAULT_REFRESH:g})",
    )
    parser.set_defaults(main=main)


def dashboard_address(text: str) -> BindAddress:
    from nameko._web.addresses import BindAddress, parse_address

    try:
        address = parse_address(text)
    except ConfigurationError:
        raise CommandError(f"--address must be [HOST:]PORT, not {text!r}") from None
    return BindAddress(address.address or "127.0.0.1", address.port)


def main(args: Any) -> int:
    config = setup_config(args)
    setup_logging(config)
    if args.refresh <= 0:
        raise CommandError("--refresh must be a positive number of seconds")
    address = dashboard_address(args.address)
    from nameko._presence.dashboard import Dashboard

    try:
        dashboard = Dashboard(config, address, args.refresh)
    except OSError as exc:
        fix = "pass --address a free [HOST:]PORT"
        raise CannotListen(address.address, address.port, exc, fix) from None
    stop = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    dashboard.start()
    broker = sanitize_url(config[AMQP_URI_CONFIG_KEY])
    print(f"dashboard on http://{address.address}:{dashboard.port}/ ({broker})", flush=True)
    try:
        stop.wait()
    finally:
        dashboard.close()
    return 0
