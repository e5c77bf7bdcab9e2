"""The child processes a benchmark starts, each in its own session, so all can be ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Children", "interrupt", "run_cleanly", "signal_group"]


class Children:
    """Stopped with ``stop_signal``, then SIGKILL after ``grace`` seconds."""

    def __init__(self, stop_signal: int = signal.SIGTERM, grace: float = 8.0) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stop_signal = stop_signal
        self.grace = grace

    def spawn(self, cmd: list[Any], **kwargs: Any) -> subprocess.Popen[bytes]:
        self.procs = [p for p in self.procs if p.poll() is None]
        proc = subprocess.Popen([str(c) for c in cmd], start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def spawn_logged(
        self, cmd: list[Any], log: Any, *, env: dict[str, str] | None = None, cwd: Any = None
    ) -> subprocess.Popen[bytes]:
        """A server-like child: no stdin, stdout and stderr to the file ``log``
        (a file, not a pipe: an unread pipe would fill and stall it), unbuffered."""
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            return self.spawn(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, *procs: subprocess.Popen[bytes]) -> None:
        alive = [p for p in procs if p.poll() is None]
        for proc in alive:
            signal_group(proc, self.stop_signal)
        deadline = time.monotonic() + self.grace
        for proc in alive:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        self.stop(*self.procs)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the pid
    except ProcessLookupError:
        pass


def interrupt(signum: int, frame: Any) -> None:
    """A SIGTERM handler: stop the way Ctrl-C does, so every child is ended."""
    raise KeyboardInterrupt


def run_cleanly(
    body: Callable[[], int], children: Children, errors: tuple[type[Exception], ...]
) -> int:
    """A benchmark's ``main``: run ``body``, end every child whatever happens
    (a second Ctrl-C included), and turn Ctrl-C/SIGTERM and ``errors`` into
    an exit status with one line instead of a traceback."""
    signal.signal(signal.SIGTERM, interrupt)
    try:
        try:
            return body()
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # clean up even on a second Ctrl-C
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            children.stop_all()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
