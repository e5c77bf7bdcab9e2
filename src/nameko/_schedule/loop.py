"""The wall-clock loop of ``@cron`` and ``@timer(..., singleton=True)``.

A tick is an instant on a schedule every instance computes alike (a cron
expression, or multiples of the interval since the Unix epoch), so a tick
has an identity: its due time. Every instance waits for every tick; at the
tick, the leader (`Leadership.leads_at`) fires it and the others do nothing.

Missed ticks are not caught up (D14, D28): after a run that overran, the
latest tick that passed fires at once, once, and the schedule goes on from
its grid; a tick due while no instance led (between a leader's death and
its successor receiving the lease) is skipped. Waits are sliced (at most
`MAX_WAIT`) so that a wall-clock step (NTP) moves the next tick with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from nameko._concurrency import Event

__all__ = ["MAX_WAIT", "run_schedule"]

_log = logging.getLogger("nameko.schedule")

MAX_WAIT = 30.0  # seconds between looks at the wall clock
MAX_SKIPPED = 100_000  # ticks counted at most after an overrun


def run_schedule(
    next_due: Callable[[float], float | None],
    fire: Callable[[float], None],
    should_stop: Event,
    leads_at: Callable[[float], bool] | None,
    what: object,
) -> None:
    """Call ``fire(due)`` at each due time (wall-clock seconds) for which
    ``leads_at(due)`` holds (every one when None), until ``should_stop``."""
    due = next_due(time.time())
    while due is not None:
        left = due - time.time()
        if should_stop.wait(max(0.0, min(left, MAX_WAIT))):
            return
        if left > MAX_WAIT:
            continue  # a slice ended: look at the clock again
        if leads_at is None or leads_at(due):
            fire(due)
        due = _after(next_due, due, time.time(), what)


def _after(
    next_due: Callable[[float], float | None], due: float, now: float, what: object
) -> float | None:
    """The tick after ``due``; after an overrun, the latest one that passed."""
    following = next_due(due)
    skipped = 0
    while following is not None and following <= now and skipped < MAX_SKIPPED:
        later = next_due(following)
        if later is None or later > now:
            break
        following, skipped = later, skipped + 1
    if skipped:
        _log.info("%s overran: skipping %d tick(s)", what, skipped)
    return following
