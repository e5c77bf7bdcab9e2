"""``@cron(expression, tz=None, singleton=True)``: run a method on a cron
schedule, once per cluster by default.

A `Cron` is a `nameko._timer.Timer` whose ticks are the fire times of a cron
expression (`nameko._protocol.cron`: 5 fields, or 6 with seconds first)
read as wall-clock time in ``tz`` (a name such as ``"Europe/London"`` or a
`tzinfo`; None means UTC, so that instances on hosts with different local
zones agree). Each tick spawns one worker and waits for it, as the timer
does; missed ticks are not caught up (`nameko._schedule.loop`).

Once per cluster is the default (D28): a cron job is nearly always meant
to run once ("send the nightly report"), and running it on every instance
is the surprise a scaled-out service should not spring. ``singleton=False``
gives nameko's per-instance behaviour (no broker needed). ``key`` names the
lease queue (``schedule-<service>.<key>``, default the method's name).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nameko._protocol.cron import CronSchedule, next_fire, parse_cron
from nameko._runtime.extensions import ExpectedExceptions, Method, SensitiveArguments
from nameko._schedule.loop import run_schedule
from nameko._timer import Timer

__all__ = ["Cron", "cron"]


def as_tz(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return timezone.utc
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


class Cron(Timer):
    """Calls the decorated method (without arguments) at the fire times of
    a cron expression; on one instance of the service unless ``singleton=False``."""

    def __init__(
        self,
        expression: str,
        tz: str | tzinfo | None = None,
        *,
        singleton: bool = True,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.expression = expression
        self.schedule: CronSchedule = parse_cron(expression)  # ValueError when declared
        self.tz = as_tz(tz)
        super().__init__(interval=0, singleton=singleton, key=key, **kwargs)

    def _check_options(self) -> None:
        pass  # the expression was checked by parse_cron; no interval, never eager

    def next_due(self, after: float) -> float | None:
        found = next_fire(self.schedule, datetime.fromtimestamp(after, timezone.utc), self.tz)
        return None if found is None else found.timestamp()

    def _run(self) -> None:
        leads_at = self.leadership.leads_at if self.singleton else None
        run_schedule(self.next_due, self._fire, self.should_stop, leads_at, self)


def cron(
    expression: str,
    tz: str | tzinfo | None = None,
    *,
    singleton: bool = True,
    key: str | None = None,
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]:
    """Call the decorated method (without arguments) at the fire times of a
    cron expression: ``@cron("*/5 * * * *", tz="Europe/London")``.

    Args:
        expression: five fields (minute, hour, day of month, month, day of
            week), or six with seconds first; ``*``, lists (``1,15``), ranges
            (``1-5``), steps (``*/10``), month and day names (``jan``,
            ``mon-fri``). A bad expression raises `ValueError` where the
            decorator is written.
        tz: the time zone the expression is read in: a name such as
            ``"Europe/London"`` or a `tzinfo`; None (the default) is UTC, so
            that instances on hosts in different zones agree.
        singleton: True (the default): each tick fires on one instance of
            the service in the whole cluster, the one holding the schedule's
            lease on the broker; False: on every instance, with no broker.
        key: the lease's name (``schedule-<service>.<key>``; default the
            method's name).
        expected_exceptions: exception classes the method raises on purpose:
            logged at WARNING instead of ERROR.
        sensitive_arguments: argument names (or paths inside them, such as
            ``"payload.password"``) masked wherever the call is logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.

    Missed ticks (the service was down, or the previous tick still ran)
    are skipped, never fired in a burst.
    """
    return Cron.decorator(
        expression,
        tz,
        singleton=singleton,
        key=key,
        expected_exceptions=expected_exceptions,
        sensitive_arguments=sensitive_arguments,
        **kwargs,
    )
