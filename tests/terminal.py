"""A command run on a pseudo-terminal, for tests of interactive consoles."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time


class Terminal:
    """``python -m <args>`` with a terminal as its stdin and stdout."""

    def __init__(self, args: list[str], cwd: str | os.PathLike, env: dict, timeout: float) -> None:
        self.timeout = timeout
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: never returns
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", *args], env)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read_until(self, marker: bytes) -> bytes:
        seen = b""
        deadline = time.monotonic() + self.timeout
        while marker not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} from the terminal; got {seen!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                seen += os.read(self.fd, 65536)
        return seen

    def end(self, keys: bytes = b"\x04") -> int:
        """Send ``keys`` (Ctrl-D) until the command exits; its exit code.

        Sent again each second: a Ctrl-D that arrives while readline is
        between two prompts can be lost."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.send(keys)
            code = self._exit_code_within(1.0)
            if code is not None:
                os.close(self.fd)
                return code
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"the command did not exit within {self.timeout} s")

    def _exit_code_within(self, seconds: float) -> int | None:
        until = time.monotonic() + seconds
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                try:
                    os.read(self.fd, 65536)  # keep draining: a full terminal blocks the child
                except OSError:  # the child closed its side
                    pass
