"""``nameko run --processes N``: N supervised copies of the same command.

How it works. The supervisor never connects to the broker and runs no
service: it starts N children, each the same command line (``sys.orig_argv``)
with ``SHIMEJI_PROCESS_INDEX`` and ``SHIMEJI_SUPERVISOR_PID`` in its
environment, which makes it run the services itself (one process, its own
connection and worker pool). Each child is in a session of its own, so a
terminal's Ctrl-C reaches the supervisor only, and the supervisor sends each
child exactly one SIGTERM: the same graceful stop as one process (consumers
cancelled, in-flight work finished and acked). A second signal is passed on
too, which makes the children kill their workers (unacked messages are
requeued) and exit 1.

The supervisor sleeps in `select` on a wake-up pipe that every signal writes
to (`signal.set_wakeup_fd`, SIGCHLD included), so reaping children, restarts
after a back-off and stopping all happen in the main thread, with no thread
and no polling. A child that exits while the supervisor is not stopping is
restarted: at once if it had run for `STEADY_AFTER` seconds, otherwise after a
delay that doubles up to `MAX_BACKOFF` (a crash loop does not spin). A child
whose supervisor has gone (killed with SIGKILL) notices and stops gracefully
(`watch_supervisor`, called by the child).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["INDEX_ENV", "SUPERVISOR_ENV", "Supervisor", "process_index", "watch_supervisor"]

INDEX_ENV = "SHIMEJI_PROCESS_INDEX"
SUPERVISOR_ENV = "SHIMEJI_SUPERVISOR_PID"
STEADY_AFTER = 10.0  # seconds: a child that ran this long is restarted at once
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0

_log = logging.getLogger("nameko.cli.run")


def process_index() -> int | None:
    """This process's index under a supervisor, or None when run directly."""
    value = os.environ.get(INDEX_ENV)
    return int(value) if value is not None and value.isdigit() else None


@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float | None = field(default=None)
    signals_sent: int = 0


class Supervisor:
    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.slots = [_Slot(index) for index in range(count)]
        self.stopping = 0  # signals received
        self.failed = False  # a child ended badly during the stop
        self._wake_r, self._wake_w = os.pipe()
        self._passed_on = 0  # signals already passed on to the children
        self._last_signal = ""

    def run(self) -> int:
        self._install_signals()
        for slot in self.slots:
            self._start(slot)
        while any(slot.proc is not None or slot.restart_at is not None for slot in self.slots):
            self._sleep()
            self._pass_signals_on()
            self._reap()
            self._restart_due()
        _log.info("all %d processes stopped", len(self.slots))
        return 1 if self.failed or self.stopping > 1 else 0

    def _install_signals(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes `select` via the pipe
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # only count it: the main loop, woken by the pipe, does the rest (no
        # logging or process handling inside a signal handler)
        self.stopping += 1
        self._last_signal = signal.Signals(signum).name

    def _pass_signals_on(self) -> None:
        """One SIGTERM to each live child per signal received."""
        if self.stopping > self._passed_on:
            self._passed_on = self.stopping
            if self.stopping == 1:
                _log.info(
                    "%s received: stopping %d processes gracefully",
                    *(self._last_signal, len(self.slots)),
                )
            else:
                _log.warning(
                    "%s received again: the processes kill their workers", self._last_signal
                )
        for slot in self.slots:
            if self.stopping:
                slot.restart_at = None
            while slot.proc is not None and slot.signals_sent < self.stopping:
                slot.signals_sent += 1
                if slot.proc.poll() is None:
                    slot.proc.send_signal(signal.SIGTERM)

    def _start(self, slot: _Slot) -> None:
        env = dict(os.environ, **{INDEX_ENV: str(slot.index), SUPERVISOR_ENV: str(os.getpid())})
        slot.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)
        slot.started, slot.restart_at, slot.signals_sent = time.monotonic(), None, 0
        _log.info("process %d started (pid %d)", slot.index, slot.proc.pid)

    def _sleep(self) -> None:
        due = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        select.select([self._wake_r], [], [], timeout)
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.proc is None or slot.proc.poll() is None:
                continue
            status, lived = slot.proc.returncode, time.monotonic() - slot.started
            slot.proc = None
            if self.stopping:
                self.failed |= status != 0
                _log.info("process %d exited (status %d)", slot.index, status)
                continue
            slot.backoff = 0.0 if lived >= STEADY_AFTER else _next_backoff(slot.backoff)
            slot.restart_at = time.monotonic() + slot.backoff
            _log.warning(
                "process %d exited (status %d) after %.1f s; restarting it in %.0f s",
                *(slot.index, status, lived, slot.backoff),
            )

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not self.stopping:
                self._start(slot)


def _next_backoff(previous: float) -> float:
    return min(MAX_BACKOFF, previous * 2 if previous else FIRST_BACKOFF)


def watch_supervisor(stop: Callable[[], None], stopped: Callable[[float], bool]) -> None:
    """In a child: call ``stop`` once the supervisor has gone (its pid is no
    longer our parent). ``stopped(timeout)`` waits for the child's own stop."""
    supervisor = int(os.environ[SUPERVISOR_ENV])
    while not stopped(1.0):
        if os.getppid() != supervisor:
            _log.warning("the supervisor (pid %d) has gone: stopping", supervisor)
            stop()
            return


def supervise(count: int) -> int:
    """Run this command line as ``count`` supervised processes."""
    sys.stdout.flush()
    return Supervisor(list(sys.orig_argv), count).run()
