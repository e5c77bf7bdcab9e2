"""The backdoor console: in-process for the server's behaviour, and the real
`nameko run --backdoor-port` / `nameko backdoor` commands, piped and on a
pseudo-terminal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nameko.cli._backdoor import Backdoor, parse_backdoor_address
from tests.terminal import Terminal

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 10


@pytest.fixture
def door():
    backdoor = Backdoor("127.0.0.1", 0, {"runner": "the-runner"})
    yield backdoor
    backdoor.close()


class Client:
    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.seen = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def read_until(self, marker: bytes) -> str:
        while marker not in self.seen:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before {marker!r}; got {self.seen!r}"
            self.seen += chunk
        before, _, self.seen = self.seen.partition(marker)
        return before.decode()

    def read_to_end(self) -> str:
        while chunk := self.sock.recv(65536):
            self.seen += chunk
        return self.seen.decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8123", ("127.0.0.1", 8123, False)), ("0.0.0.0:80", ("0.0.0.0", 80, True))],
)
def test_addresses_default_to_loopback(text, expected):
    assert parse_backdoor_address(text) == expected
    with pytest.raises(ValueError):
        parse_backdoor_address("host:port")


def test_a_session_evaluates_with_runner_in_scope_and_keeps_errors_in_the_session(door):
    client = Client(door.address)
    assert "in scope: runner" in client.read_until(b">>> ")
    client.send("runner")
    assert client.read_until(b">>> ") == "'the-runner'\n"
    client.send("1/0")
    assert "ZeroDivisionError: division by zero" in client.read_until(b">>> ")
    client.send("print('printed')")
    assert client.read_until(b">>> ") == "printed\n"


@pytest.mark.parametrize("leave", ["exit()", "quit()", "raise SystemExit(3)", "<EOF>"])
def test_leaving_ends_the_session_not_the_backdoor(door, leave):
    client = Client(door.address)
    client.read_until(b">>> ")
    if leave == "<EOF>":
        client.sock.shutdown(socket.SHUT_WR)  # Ctrl-D
    else:
        client.send(leave)
    client.read_to_end()  # the server closed the connection
    again = Client(door.address)  # and still serves
    again.read_until(b">>> ")
    again.send("2 + 2")
    assert again.read_until(b">>> ") == "4\n"


def test_sessions_at_once_keep_their_names_and_output_apart(door, capsys):
    first, second = Client(door.address), Client(door.address)
    for client in (first, second):
        client.read_until(b">>> ")
    first.send("x = 'first'")
    second.send("x = 'second'")
    first.read_until(b">>> ")
    second.read_until(b">>> ")
    first.send("print(x)")
    second.send("print(x)")
    assert first.read_until(b">>> ") == "first\n"
    assert second.read_until(b">>> ") == "second\n"
    print("the service's own output")  # this thread is not a session: unchanged
    assert "the service's own output" in capsys.readouterr().out


def test_closing_the_backdoor_ends_its_sessions(door):
    client = Client(door.address)
    client.read_until(b">>> ")
    door.close()
    client.read_to_end()
    with pytest.raises(OSError):
        socket.create_connection(door.address, timeout=TIMEOUT)


SERVICE = """
from nameko.rpc import rpc


class Svc:
    name = "svc"

    @rpc
    def ping(self):
        return "pong"
"""


@pytest.fixture
def running(tmp_path):
    """`nameko run --backdoor-port 0` on the memory broker; yields (host, port)."""
    (tmp_path / "svc.py").write_text(SERVICE)
    env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nameko",
            "run",
            "--broker",
            "memory://bd",
            "--backdoor-port",
            "0",
            "svc",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("backdoor on 127.0.0.1:"), line
    port = int(line.split(":")[1])
    yield tmp_path, env, port
    proc.terminate()
    assert proc.wait(TIMEOUT) == 0  # the sessions never stopped the service


def test_nameko_backdoor_with_piped_input(running):
    cwd, env, port = running
    done = subprocess.run(
        [sys.executable, "-m", "nameko", "backdoor", str(port)],
        input="sorted(runner.service_names)\nexit()\nprint('after exit')\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT * 3,
    )
    assert done.returncode == 0, done.stderr
    assert "['svc']" in done.stdout and "after exit" not in done.stdout


def test_nameko_backdoor_on_a_terminal(running):
    cwd, env, port = running
    terminal = Terminal(["nameko", "backdoor", f"127.0.0.1:{port}"], cwd, env, TIMEOUT * 3)
    output = terminal.read_until(b">>> ")
    terminal.send(b"runner.service_names\n")
    output += terminal.read_until(b"dict_keys(['svc'])")
    assert terminal.end() == 0  # Ctrl-D
    assert b"in scope: runner" in output


def test_a_backdoor_nobody_listens_on_is_one_line(tmp_path):
    from nameko.testing.utils import find_free_port

    done = subprocess.run(
        [sys.executable, "-m", "nameko", "backdoor", str(find_free_port())],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        timeout=TIMEOUT * 3,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Backdoor unreachable on 127.0.0.1:")
    assert done.stderr.count("\n") == 1


def test_a_backdoor_beyond_loopback_is_allowed_only_explicitly_and_with_a_warning(caplog):
    from nameko.cli.run import _backdoor_address

    assert _backdoor_address(None) is None
    assert _backdoor_address("8123") == ("127.0.0.1", 8123)
    assert not caplog.records
    assert _backdoor_address("0.0.0.0:8123") == ("0.0.0.0", 8123)
    assert "accepts anyone who can reach it" in caplog.text
