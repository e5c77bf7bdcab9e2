"""``@timer(interval, eager=False)``: run a method on a fixed schedule.

The loop runs in a managed thread from `start`. Fire times are anchored to
the loop's start ``t0``: tick *n* is due at ``t0 + n * interval``, from
*n* = 1, or 0 with ``eager`` (fire at once). Each tick spawns one worker and
waits for it to finish before scheduling the next, so runs never overlap,
and waits are `Event.wait` calls that `stop` and `kill` interrupt.

Deliberate difference from nameko 2.14 (SPEC 13.13): after a run that
overran the interval, the next tick fires at once, as in nameko, but the
ticks missed meanwhile are skipped instead of being fired back to back until
the schedule catches up. The schedule stays on its grid: after the late
tick, the next one is due at the next grid point. Example, interval 0.2 s,
first run taking 1 s (t = 0.2 to 1.2): nameko fires 5 ticks at t = 1.2; we
fire one at t = 1.2 and the next at t = 1.4.

`stop` ends the loop and waits for a running worker. `kill` ends the loop
without waiting (threads can't be killed; a running worker finishes in the
background, see the container). By default the timer is not cluster-aware:
every running instance of the service fires (nameko's semantics).

``singleton=True`` (shimeji, D28): each tick fires on one instance of the
service only, the one holding the schedule's lease on the broker
(`nameko._schedule.lease`). Its ticks are then on a grid every instance
agrees on, multiples of ``interval`` since the Unix epoch (wall clock), not
anchored to the start; ``eager`` is refused with it. ``key`` names the
lease (default: the method's name), for a method with two singleton
schedules.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from nameko._concurrency import Event
from nameko._runtime.extensions import (
    Entrypoint,
    ExpectedExceptions,
    Method,
    SensitiveArguments,
)
from nameko._schedule.lease import Leadership, lease_queue
from nameko._schedule.loop import run_schedule
from nameko.exceptions import ConfigurationError, ContainerBeingKilled

__all__ = ["Timer", "timer"]

_log = logging.getLogger("nameko.timer")


class Timer(Entrypoint):
    """Calls the decorated method (without arguments) every ``interval`` seconds."""

    def __init__(
        self,
        interval: float,
        eager: bool = False,
        *,
        singleton: bool = False,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.interval = interval
        self.eager = eager
        self.singleton = singleton
        self.key = key
        self.should_stop = Event()
        self.worker_complete = Event()
        self.gt: Any = None
        #: wall-clock due time of the tick being fired (schedules on a wall
        #: clock: singleton timers and crons); the tick's identity
        self.due: float | None = None
        self._check_options()
        if singleton:  # a sub-extension only when asked for: others pay nothing
            self.leadership = Leadership()
        super().__init__(**kwargs)

    def _check_options(self) -> None:
        if self.singleton and (self.eager or self.interval <= 0):
            raise ValueError("a singleton timer needs an interval > 0 and cannot be eager")

    def setup(self) -> None:
        if self.singleton:
            self.leadership.queue = self.lease_name
            self._check_lease_unique()

    @property
    def lease_name(self) -> str:
        return lease_queue(self.container.service_name, self.key or self.method_name)

    def _check_lease_unique(self) -> None:
        twins = [
            ep
            for ep in self.container.entrypoints
            if ep is not self
            and isinstance(ep, Timer)
            and ep.singleton
            and ep.lease_name == self.lease_name
        ]
        if twins:
            raise ConfigurationError(
                f"two singleton schedules of {self.container.service_name}.{self.method_name} "
                f"share the lease {self.lease_name!r}: give one of them key='...'"
            )

    def start(self) -> None:
        _log.debug("starting %s", self)
        self.gt = self.container.spawn_managed_thread(self._run, identifier=f"timer {self!r}")

    def stop(self) -> None:
        _log.debug("stopping %s", self)
        self.should_stop.set()
        if self.gt is not None and not self.gt.is_current:
            self.gt.join()  # includes a running worker: the loop waits for it

    def kill(self) -> None:
        _log.debug("killing %s", self)
        self.should_stop.set()
        # wake a loop waiting for a worker the container is abandoning
        self.worker_complete.set()

    def _run(self) -> None:
        if self.singleton:
            leads_at = self.leadership.leads_at
            run_schedule(self.next_due, self._fire, self.should_stop, leads_at, self)
            return
        due = time.monotonic() + (0.0 if self.eager else self.interval)
        while not self.should_stop.wait(max(0.0, due - time.monotonic())):
            self.handle_timer_tick()
            due = self._next_due(due, time.monotonic())

    def _next_due(self, due: float, now: float) -> float:
        """One interval after ``due``; after an overrun, the latest grid point
        that has passed (so it fires at once, and only once)."""
        due += self.interval
        if due < now:
            if self.interval <= 0:
                return now
            missed = int((now - due) // self.interval)
            if missed:
                _log.info("%s overran: skipping %d tick(s)", self, missed)
            due += missed * self.interval
        return due

    def next_due(self, after: float) -> float | None:
        """The first grid point (a multiple of the interval since the epoch)
        strictly after the wall-clock time ``after`` (singleton timers)."""
        tick = math.floor(after / self.interval) + 1
        while tick * self.interval <= after:  # float rounding
            tick += 1
        return tick * self.interval

    def _fire(self, due: float) -> None:
        self.due = due  # stable while the worker runs: the loop waits for it
        self.handle_timer_tick()

    def handle_timer_tick(self) -> None:
        """Spawn a worker and wait until it finished."""
        self.worker_complete.clear()
        if self.should_stop.is_set():  # killed before we could start
            return
        try:
            self.container.spawn_worker(self, (), {}, handle_result=self.handle_result)
        except ContainerBeingKilled:
            return
        self.worker_complete.wait()

    def handle_result(self, worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        self.worker_complete.set()
        return result, exc_info


def timer(
    interval: float,
    eager: bool = False,
    *,
    singleton: bool = False,
    key: str | None = None,
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]:
    """Call the decorated method (without arguments) every ``interval``
    seconds while the service runs.

    Args:
        interval: seconds between two ticks. Ticks never overlap: when a
            worker overruns, the ticks that passed meanwhile are not caught
            up; the next one fires at once when it ends.
        eager: fire the first tick at start rather than after one interval.
        singleton: fire each tick on one instance of the service in the
            whole cluster (the one holding the schedule's lease on the
            broker), not on every instance; needs ``interval > 0`` and
            cannot be eager.
        key: the lease's name for a singleton timer
            (``schedule-<service>.<key>``; default the method's name).
        expected_exceptions: exception classes the method raises on purpose:
            logged at WARNING instead of ERROR.
        sensitive_arguments: argument names (or paths inside them, such as
            ``"payload.password"``) masked wherever the call is logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.
    """
    return Timer.decorator(
        interval,
        eager,
        singleton=singleton,
        key=key,
        expected_exceptions=expected_exceptions,
        sensitive_arguments=sensitive_arguments,
        **kwargs,
    )
