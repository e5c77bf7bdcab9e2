"""``nameko backdoor [host:]port``: talk to a service's backdoor console.

A plain TCP client in Python (nameko 2.14 needed telnet or netcat). It
first answers the backdoor's token prompt with the token that ``nameko
run`` wrote for that port (or ``--token-file``); then what the console
sends is printed, what you type (or pipe in) is sent line by line; with a
terminal, ``readline`` gives line editing and history. End of input closes
our half of the connection and the console's answers are still read to the
end, so ``echo 'runner.service_names' | nameko backdoor 8123`` works.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from nameko._concurrency import start_thread
from nameko.cli._backdoor import REFUSED, TOKEN_PROMPT, parse_backdoor_address
from nameko.cli._backdoor_auth import read_token, token_path
from nameko.exceptions import CommandError

NAME = "backdoor"
HELP = "Connect to the backdoor console of a running service (nameko run --backdoor-port)"


def init_parser(parser: Any) -> None:
    parser.add_argument("target", metavar="[host:]port", help="where the backdoor listens")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="the backdoor's token (default: the file nameko run wrote for PORT, as it printed)",
    )
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
    path = Path(args.token_file) if args.token_file else token_path(port)
    try:
        _authenticate(conn, _token(path), path, f"{host}:{port}")
    except CommandError:
        conn.close()
        raise
    conn.settimeout(None)
    printer = start_thread(_print_from, "backdoor-client", conn, daemon=True)
    _send_input(conn)
    printer.join()
    return 0


def _token(path: Path) -> str:
    try:
        return read_token(path)
    except OSError as exc:
        raise CommandError(
            f"cannot read the backdoor's token from {path} ({exc.strerror or exc}): "
            "run this as the user that runs the service, or give --token-file"
        ) from None


def _authenticate(conn: socket.socket, token: str, path: Path, where: str) -> None:
    """Wait for the token prompt, answer it and read the first answer (each
    within the connect timeout): a refusal is an error, not empty output."""
    seen = b""
    try:
        while len(seen) < len(TOKEN_PROMPT):
            chunk = conn.recv(len(TOKEN_PROMPT) - len(seen))
            if not chunk:
                break
            seen += chunk
        if seen == TOKEN_PROMPT:
            conn.sendall(token.encode() + b"\n")
            first = conn.recv(65536)
            if first and not first.startswith(REFUSED):
                sys.stdout.write(first.decode("utf-8", "replace"))
                sys.stdout.flush()
                return
            conn.close()
            raise CommandError(f"the backdoor on {where} refused the token from {path}")
    except OSError:
        pass
    conn.close()
    raise CommandError(f"{where} did not ask for a backdoor token: is it a shimeji backdoor?")


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
