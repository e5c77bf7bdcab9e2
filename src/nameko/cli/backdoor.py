"""``nameko backdoor [host:]port``: talk to a service's backdoor console.

A plain TCP client in Python (nameko 2.14 needed telnet or netcat): what the
console sends is printed, what you type (or pipe in) is sent line by line;
with a terminal, ``readline`` gives line editing and history. End of input
closes our half of the connection and the console's answers are still read
to the end, so ``echo 'runner.service_names' | nameko backdoor 8123`` works.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from nameko._concurrency import start_thread
from nameko.cli._backdoor import parse_backdoor_address
from nameko.exceptions import CommandError

NAME = "backdoor"
HELP = "Connect to the backdoor console of a running service (nameko run --backdoor-port)"


def init_parser(parser: Any) -> None:
    parser.add_argument("target", metavar="[host:]port", help="where the backdoor listens")
    parser.add_argument("--rlwrap", action="store_true", help=argparse_note())
    parser.add_argument("--no-rlwrap", action="store_true", help=argparse_note())
    parser.set_defaults(main=main)


def argparse_note() -> str:
    return "accepted for nameko 2.14's command line; line editing comes from readline"


def main(args: Any) -> int:
    try:
        host, port, _ = parse_backdoor_address(args.target)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        conn = socket.create_connection((host, port), timeout=5)
    except OSError as exc:
        raise CommandError(
            f"Backdoor unreachable on {host}:{port} ({exc.strerror or exc})"
        ) from None
    conn.settimeout(None)
    printer = start_thread(_print_from, "backdoor-client", conn, daemon=True)
    _send_input(conn)
    printer.join()
    return 0


def _print_from(conn: socket.socket) -> None:
    out = sys.stdout
    while chunk := _recv(conn):
        out.write(chunk.decode("utf-8", "replace"))
        out.flush()


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def _send_input(conn: socket.socket) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing for input())
    try:
        while True:
            line = _read_line(interactive)
            if line is None:
                break
            conn.sendall(line.encode())
    except (OSError, KeyboardInterrupt):
        pass
    try:
        conn.shutdown(socket.SHUT_WR)  # end of input: the console sees EOF and says goodbye
    except OSError:
        pass


def _read_line(interactive: bool) -> str | None:
    if interactive:
        try:
            return input() + "\n"  # the console already printed the prompt
        except EOFError:
            return None
    return sys.stdin.readline() or None
