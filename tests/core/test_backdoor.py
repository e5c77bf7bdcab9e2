"""The backdoor console: in-process for the server's behaviour, and the real
`nameko run --backdoor-port` / `nameko backdoor` commands, piped and on a
pseudo-terminal; what it refuses (a browser's request, a wrong or missing
token) and what it masks (the config's secrets)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nameko.cli._backdoor import Backdoor, parse_backdoor_address
from nameko.cli._backdoor_auth import read_token
from tests.terminal import Terminal

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 10


@pytest.fixture
def door(tmp_path):
    backdoor = Backdoor("127.0.0.1", 0, {"runner": "the-runner"}, token_dir=tmp_path / "tokens")
    yield backdoor
    backdoor.close()


class Client:
    """A deliberate client: it answers the token prompt with the token."""

    def __init__(self, door, token: str | None = None):
        self.sock = socket.create_connection(door.address, timeout=TIMEOUT)
        self.seen = b""
        self.read_until(b"backdoor token: ")
        self.send(read_token(door.token_file) if token is None else token)

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
    client = Client(door)
    assert "in scope: runner" in client.read_until(b">>> ")
    client.send("runner")
    assert client.read_until(b">>> ") == "'the-runner'\n"
    client.send("1/0")
    assert "ZeroDivisionError: division by zero" in client.read_until(b">>> ")
    client.send("print('printed')")
    assert client.read_until(b">>> ") == "printed\n"


@pytest.mark.parametrize("leave", ["exit()", "quit()", "raise SystemExit(3)", "<EOF>"])
def test_leaving_ends_the_session_not_the_backdoor(door, leave):
    client = Client(door)
    client.read_until(b">>> ")
    if leave == "<EOF>":
        client.sock.shutdown(socket.SHUT_WR)  # Ctrl-D
    else:
        client.send(leave)
    client.read_to_end()  # the server closed the connection
    again = Client(door)  # and still serves
    again.read_until(b">>> ")
    again.send("2 + 2")
    assert again.read_until(b">>> ") == "4\n"


def test_sessions_at_once_keep_their_names_and_output_apart(door, capsys):
    first, second = Client(door), Client(door)
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
    client = Client(door)
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
    """`nameko run --backdoor-port 0` on the memory broker, its token under a
    runtime directory of the test's; yields (cwd, env, port)."""
    (tmp_path / "svc.py").write_text(SERVICE)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1", XDG_RUNTIME_DIR=str(runtime))
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
    token_file = runtime / "nameko" / f"backdoor-{port}.token"
    assert line.endswith(f"(token in {token_file})\n"), line
    assert read_token(token_file) not in line  # its place is printed, never the token
    yield tmp_path, env, port
    proc.terminate()
    # the sessions never stopped the service (a loaded machine is slow to stop it)
    assert proc.wait(TIMEOUT * 3) == 0


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
    assert "can be reached from other machines" in caplog.text


BROWSER_BODY = "import os; open('pwned', 'w')"
BROWSER_REQUEST = (  # what fetch("http://127.0.0.1:PORT/", {method: "POST", mode: "no-cors", body}) sends
    "POST / HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Connection: keep-alive\r\n"
    f"Content-Length: {len(BROWSER_BODY)}\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Content-Type: text/plain;charset=UTF-8\r\n"
    "Accept: */*\r\n"
    "Origin: http://attacker.example\r\n"
    "Sec-Fetch-Site: cross-site\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Referer: http://attacker.example/\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "\r\n" + BROWSER_BODY + "\n"
)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:  # it closed with our surplus unread
        pass
    return received


def piped_session(cwd, env, port, lines: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nameko", "backdoor", str(port)],
        input=lines,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT * 3,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_browser_style_request_is_refused_and_runs_nothing(running):
    cwd, env, port = running
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(BROWSER_REQUEST.format(port=port).encode())
        assert read_all(sock) == b"backdoor token: "  # then closed: nothing evaluated
    assert not (cwd / "pwned").exists()
    # a deliberate client still gets in, and sees that nothing ran
    output = piped_session(cwd, env, port, "import os; os.path.exists('pwned')\n")
    assert "False" in output and "NameError" not in output
    assert not (cwd / "pwned").exists()


def test_the_refusal_is_logged_as_a_web_request(door, tmp_path, caplog):
    target = tmp_path / "pwned"
    body = f"open({str(target)!r}, 'w')"
    with socket.create_connection(door.address, timeout=TIMEOUT) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n\r\n{body}\n".encode())
        assert read_all(sock) == b"backdoor token: "
    assert not target.exists()
    assert "sent an HTTP request (a web page?); nothing was run" in caplog.text


def test_a_wrong_token_is_refused_and_what_follows_it_never_runs(door, tmp_path):
    target = tmp_path / "pwned"
    with socket.create_connection(door.address, timeout=TIMEOUT) as sock:
        sock.sendall(f"not-the-token\nopen({str(target)!r}, 'w')\n".encode())
        assert read_all(sock) == b"backdoor token: refused: wrong token\n"
    assert not target.exists()


def test_a_client_that_sends_no_token_is_dropped_at_the_handshake_deadline(door, monkeypatch):
    from nameko.cli import _backdoor

    monkeypatch.setattr(_backdoor, "HANDSHAKE_DEADLINE", 0.5)
    with socket.create_connection(door.address, timeout=TIMEOUT) as sock:
        for byte in b"abc":  # trickling does not extend it: the deadline is for the line
            sock.sendall(bytes([byte]))
        assert read_all(sock) == b"backdoor token: "


def test_connections_beyond_the_cap_are_closed_at_once(door, monkeypatch):
    from nameko.cli import _backdoor

    monkeypatch.setattr(_backdoor, "MAX_CLIENTS", 2)
    first, second = Client(door), Client(door)
    for client in (first, second):
        client.read_until(b">>> ")
    with socket.create_connection(door.address, timeout=TIMEOUT) as third:
        assert read_all(third) == b""  # no prompt: closed on arrival
    first.send("exit()")
    first.read_to_end()
    Client(door).read_until(b">>> ")  # a slot is free again


def test_the_token_file_is_private_and_removed_on_close(tmp_path):
    backdoor = Backdoor("127.0.0.1", 0, {}, token_dir=tmp_path / "tokens")
    path = backdoor.token_file
    assert path == tmp_path / "tokens" / f"backdoor-{backdoor.address[1]}.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(read_token(path)) >= 40
    backdoor.close()
    assert not path.exists()


def test_a_token_directory_others_can_open_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(PermissionError, match="mode 0700"):
        Backdoor("127.0.0.1", 0, {}, token_dir=shared)


def test_the_configs_secrets_are_masked_in_what_a_session_shows(tmp_path):
    from nameko.cli._backdoor_auth import secret_values

    config = {
        "AMQP_URI": "amqp://guest:s3cret-pw@rabbit:5672/",
        "API_TOKEN": "tok-0123456789",
        "DATABASE": {"password": "db-passw0rd", "host": "db"},
    }
    backdoor = Backdoor(
        "127.0.0.1",
        0,
        {"config": config},
        hidden=secret_values(config),
        token_dir=tmp_path / "tokens",
    )
    try:
        client = Client(backdoor)
        client.read_until(b">>> ")
        shown = ""
        for line in ("config", "print(config['API_TOKEN'])", "config['DATABASE']['password']"):
            client.send(line)
            shown += client.read_until(b">>> ")
        client.send("raise ValueError(config['AMQP_URI'])")
        shown += client.read_until(b">>> ")
    finally:
        backdoor.close()
    for secret in ("s3cret-pw", "tok-0123456789", "db-passw0rd"):
        assert secret not in shown
    assert "amqp://guest:********@rabbit:5672/" in shown and "'host': 'db'" in shown
    assert "ValueError: amqp://guest:********@rabbit" in shown


def test_nameko_backdoor_without_the_token_says_where_it_looked(running, tmp_path):
    cwd, env, port = running
    done = subprocess.run(
        [sys.executable, "-m", "nameko", "backdoor", "--token-file", "/nonexistent", str(port)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT * 3,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot read the backdoor's token from /nonexistent")
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-it\n")
    done = subprocess.run(
        [sys.executable, "-m", "nameko", "backdoor", "--token-file", str(wrong), str(port)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT * 3,
    )
    assert done.returncode == 1
    assert (
        done.stderr == f"Error: the backdoor on 127.0.0.1:{port} refused the token from {wrong}\n"
    )


def test_netcat_style_clients_send_the_token_file_first(running):
    """What the docs show for telnet/nc users: the token file, then the session."""
    cwd, env, port = running
    token_file = Path(env["XDG_RUNTIME_DIR"]) / "nameko" / f"backdoor-{port}.token"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(token_file.read_bytes() + b"sorted(runner.service_names)\n")
        sock.shutdown(socket.SHUT_WR)
        assert "['svc']" in read_all(sock).decode()


def test_secret_values_are_the_parts_show_config_masks():
    from nameko.cli._backdoor_auth import Masker, secret_values

    config = {
        "AMQP_URI": "amqp://guest:p@ss;word@rabbit/",
        "SMTP": {"PASSWORD": "mail-pw-1", "HOST": "smtp"},
        "KEYS": [{"api_key": "k-123456"}],
        "DB_PASSWORD": "abc",  # too short to mask without masking ordinary text
        "PORT": 8000,
    }
    assert secret_values(config) == {"p@ss;word", "mail-pw-1", "k-123456"}
    mask = Masker({"it's-secret"})
    assert mask("x it's-secret y 'it\\'s-secret'") == "x ******** y '********'"
