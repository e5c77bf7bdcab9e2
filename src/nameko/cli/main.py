"""Argument parsing and error reporting for the ``nameko`` command.

Unlike nameko 2.14 (SPEC 13.18), errors exit with a non-zero status.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nameko import __version__ as nameko_version
from nameko._broker.base import BrokerError
from nameko._redaction import redact_text
from nameko.exceptions import CommandError, ConfigurationError
from shimeji import __version__ as shimeji_version
from shimeji._install_check import check_command

__all__ = ["main", "setup_parser"]

DEFAULT_BROKER = "pyamqp://guest:guest@localhost"


def setup_parser() -> argparse.ArgumentParser:
    from nameko.cli import backdoor, cluster, dashboard, dead_letters, run, shell, show_config, test

    parser = argparse.ArgumentParser(prog="nameko")
    parser.add_argument(
        "-v",
        "--version",
        action="version",
        version=f"{nameko_version} (shimeji {shimeji_version})",
    )
    commands = parser.add_subparsers(
        dest="command",
        metavar="{backdoor,cluster,dashboard,dead-letters,run,shell,show-config,test}",
    )
    commands.required = True
    for module in (backdoor, cluster, dashboard, dead_letters, run, shell, show_config, test):
        module.init_parser(
            commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        )
    return parser


def main(argv: list[str] | None = None) -> Any:
    check_command()  # real nameko's files mixed into the package: one line and exit 2
    parser = setup_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        status = args.main(args)
    except (CommandError, ConfigurationError, BrokerError) as exc:
        print(f"Error: {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_status", 1))
    sys.exit(status or 0)
