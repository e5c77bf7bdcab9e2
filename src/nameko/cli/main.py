"""Argument parsing and error reporting for the ``nameko`` command.

Unlike nameko 2.14 (SPEC 13.18), errors exit with a non-zero status.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Any

from nameko import __version__ as nameko_version
from nameko._broker.base import BrokerError
from nameko._redaction import redact_text
from nameko.exceptions import CommandError, ConfigurationError
from shimeji import __version__ as shimeji_version
from shimeji._install_check import check_command

__all__ = ["main", "setup_parser"]

DEFAULT_BROKER = "pyamqp://guest:guest@localhost"


# command -> its module in nameko.cli: ``nameko run`` imports run's module only,
# not the shell's, the backdoor client's or the dashboard's (memory and start-up)
COMMANDS = {
    "backdoor": "backdoor",
    "cluster": "cluster",
    "dashboard": "dashboard",
    "dead-letters": "dead_letters",
    "run": "run",
    "shell": "shell",
    "show-config": "show_config",
    "test": "test",
}


def setup_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``nameko`` parser; with ``only`` (a command name), that command's alone."""
    parser = argparse.ArgumentParser(prog="nameko")
    parser.add_argument(
        "-v",
        "--version",
        action="version",
        version=f"{nameko_version} (shimeji {shimeji_version})",
    )
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    commands.required = True
    names = [only] if only in COMMANDS else list(COMMANDS)
    for name in names:
        module = import_module(f"nameko.cli.{COMMANDS[name]}")
        module.init_parser(
            commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        )
    return parser


def main(argv: list[str] | None = None) -> Any:
    check_command()  # real nameko's files mixed into the package: one line and exit 2
    given = sys.argv[1:] if argv is None else argv
    parser = setup_parser(given[0] if given else None)
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
