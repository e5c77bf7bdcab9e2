"""A command run on a pseudo-terminal, for tests of interactive consoles."""

from __future__ import annotations

import os
import pty
import select
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

    def exit_code(self) -> int:
        """Wait for the command to end (send it Ctrl-D first)."""
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)
