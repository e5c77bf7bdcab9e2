"""The child processes a benchmark starts, each in its own session, so all can be ended."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

__all__ = ["Children", "interrupt", "signal_group"]


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
