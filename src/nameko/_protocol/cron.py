"""Cron expressions and their fire times: pure functions, no I/O, no clock.

`parse_cron` reads a standard 5-field expression (minute hour day-of-month
month day-of-week), or 6 fields with a leading seconds field (Quartz and
Spring's form; shimeji's tests use it to tick every second through the same
code path), or an alias (``@yearly @annually @monthly @weekly @daily
@midnight @hourly``). Each field takes ``*``, numbers, ``a-b`` ranges,
``/step`` on either, comma lists, and names for months (``jan``) and days
(``mon``); day-of-week 0 and 7 are both Sunday.

Day-of-month and day-of-week follow Vixie cron: when both are restricted a
day matches if *either* does (``0 0 1 * mon``: the 1st and every Monday);
when either starts with ``*`` (``*/2`` included) both must match.

`next_fire(schedule, after, tz)` is the first fire time strictly after
``after``, with the fields read as wall-clock time in ``tz``. The set of
fire times is defined with PEP 495's ``fold``, so DST has one rule:

* a local time that does not exist (spring forward: Europe/London has no
  01:30 on the last Sunday of March) is read with the offset in force
  before the gap, so it fires shifted forward by the gap (01:30 GMT, which
  is 02:30 BST); where that instant is also a regular fire time it fires
  once (``*/5 * * * *`` keeps a plain five-minute cadence);
* a local time that happens twice (fall back: 01:00-01:59 in late October)
  fires at its first occurrence only, unless the expression fires every
  hour (its hour field covers all 24): then it fires in both, so
  ``*/5 * * * *`` keeps its cadence through the repeated hour while
  ``30 1 * * *`` still fires once that day.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

__all__ = ["CronSchedule", "first_match", "next_fire", "parse_cron"]

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_Field = tuple[str, int, int, dict[str, int]]  # name, lowest, highest, names
_FIELDS: tuple[_Field, ...] = (  # seconds first
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTHS)}),
    ("day-of-week", 0, 7, {n: i for i, n in enumerate(_DAYS)}),
)
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
# A time this far from a UTC offset change is in a linear stretch of time;
# every DST rule in the tz database moves clocks by less (at most 2 h).
MARGIN = timedelta(hours=3)
SEARCH_YEARS = 10  # a satisfiable day (29 Feb) comes round within 8 years
_SECOND = timedelta(seconds=1)
UTC = timezone.utc


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression: the allowed values of each field, sorted."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    day_star: bool  # day-of-month started with "*"
    weekday_star: bool

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24

    def day_matches(self, day: date) -> bool:
        dom = day.day in self.days
        dow = day.isoweekday() % 7 in self.weekdays
        if self.day_star or self.weekday_star:
            return dom and dow
        return dom or dow

    def matches(self, wall: datetime) -> bool:
        """Whether the naive wall-clock time ``wall`` (whole second) fires."""
        return (
            wall.second in self.seconds
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and self.day_matches(wall.date())
        )


def parse_cron(expression: str) -> CronSchedule:
    """Parse ``expression``; `ValueError` saying which field is wrong, or
    that it can never fire (``0 0 30 feb *``)."""
    text = ALIASES.get(expression.strip().lower(), expression.strip().lower())
    fields = text.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        raise ValueError(
            f"cron expression {expression!r}: expected 5 fields (minute hour day-of-month "
            "month day-of-week), 6 with seconds first, or an alias such as @hourly"
        )
    values = [_parse_field(f, spec, expression) for f, spec in zip(fields, _FIELDS, strict=True)]
    seconds, minutes, hours, days, months, weekdays = (tuple(v) for v in values)
    schedule = CronSchedule(
        expression,
        seconds,
        minutes,
        hours,
        days,
        months,
        tuple(sorted({d % 7 for d in weekdays})),
        day_star=fields[3].startswith("*"),
        weekday_star=fields[5].startswith("*"),
    )
    if first_match(schedule, datetime(2000, 1, 1)) is None:
        raise ValueError(f"cron expression {expression!r} never fires")
    return schedule


def _parse_field(text: str, spec: _Field, expression: str) -> list[int]:
    name, low, high, names = spec
    found: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"cron expression {expression!r}: bad {name} field {text!r}")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = low, high
        else:
            bounds = [_value(part, names, name, expression) for part in span.split("-")]
            first, last = bounds[0], bounds[-1]
            if match.group(2) and len(bounds) == 1:
                last = high  # "a/step": from a to the end of the range
        if not (low <= first <= last <= high) or step < 1:
            raise ValueError(
                f"cron expression {expression!r}: {name} {item!r} is outside {low}-{high}"
            )
        found.update(range(first, last + 1, step))
    return sorted(found)


def _value(text: str, names: dict[str, int], field: str, expression: str) -> int:
    if text.isdigit():
        return int(text)
    if text in names:
        return names[text]
    raise ValueError(f"cron expression {expression!r}: unknown {field} {text!r}")


def _next_in(values: tuple[int, ...], current: int) -> int | None:
    return next((v for v in values if v >= current), None)


def first_match(schedule: CronSchedule, start: datetime) -> datetime | None:
    """The first naive wall-clock time at or after ``start`` (rounded up to a
    whole second) that the schedule matches; None within `SEARCH_YEARS`."""
    t = start if not start.microsecond else start.replace(microsecond=0) + _SECOND
    limit = t.year + SEARCH_YEARS
    while t.year <= limit:
        month = _next_in(schedule.months, t.month)
        if month is None:
            t = datetime(t.year + 1, 1, 1)
        elif month != t.month:
            t = datetime(t.year, month, 1)
        elif not schedule.day_matches(t.date()):
            t = datetime.combine(t.date() + timedelta(days=1), datetime.min.time())
        else:
            found = _within_day(schedule, t)
            if found is not None:
                return found
            t = datetime.combine(t.date() + timedelta(days=1), datetime.min.time())
    return None


def _within_day(schedule: CronSchedule, t: datetime) -> datetime | None:
    """The first matching time of ``t``'s day at or after ``t``."""
    while True:
        hour = _next_in(schedule.hours, t.hour)
        if hour is None:
            return None
        if hour != t.hour:
            t = t.replace(hour=hour, minute=0, second=0)
        minute = _next_in(schedule.minutes, t.minute)
        if minute is None:
            if t.hour == 23:
                return None
            t = t.replace(hour=t.hour + 1, minute=0, second=0)
            continue
        if minute != t.minute:
            t = t.replace(minute=minute, second=0)
        second = _next_in(schedule.seconds, t.second)
        if second is not None:
            return t.replace(second=second)
        if t.minute == 59:
            if t.hour == 23:
                return None
            t = t.replace(hour=t.hour + 1, minute=0, second=0)
        else:
            t = t.replace(minute=t.minute + 1, second=0)


def _steady(tz: tzinfo, instant: datetime) -> bool:
    """No UTC offset change within `MARGIN` of ``instant``."""
    before = (instant - MARGIN).astimezone(tz).utcoffset()
    return before == (instant + MARGIN).astimezone(tz).utcoffset()


def next_fire(schedule: CronSchedule, after: datetime, tz: tzinfo = UTC) -> datetime | None:
    """The first fire time strictly after the aware datetime ``after``, as an
    aware UTC datetime; None if there is none within `SEARCH_YEARS`."""
    after = after.astimezone(UTC)
    if _steady(tz, after):
        wall = after.astimezone(tz).replace(tzinfo=None)
        found = first_match(schedule, _second_after(wall))
        if found is None:
            return None
        candidate = found.replace(tzinfo=tz).astimezone(UTC)
        if _steady(tz, candidate):
            return candidate  # a linear stretch of time: the first match is the answer
        change = _change_near(tz, candidate)
    else:
        change = _change_near(tz, after)
    return _across_change(schedule, after, change, tz)


def _second_after(naive: datetime) -> datetime:
    return naive.replace(microsecond=0) + _SECOND


def _offset_at(tz: tzinfo, timestamp: int) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(tz).utcoffset()


def _change_near(tz: tzinfo, instant: datetime) -> datetime:
    """The instant (to the second) within `MARGIN` of ``instant`` when the
    UTC offset changes (bisection: zoneinfo does not list its transitions)."""
    low = math.floor((instant - MARGIN).timestamp())
    high = math.ceil((instant + MARGIN).timestamp())
    before = _offset_at(tz, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(tz, middle) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _across_change(
    schedule: CronSchedule, after: datetime, change: datetime, tz: tzinfo
) -> datetime | None:
    """Around an offset change wall-clock order is not time order: take the
    first fire time read with the offset before (``early``: also the skipped
    times of a gap) and the first read with the offset after (``late``:
    also second passes of a repeated hour, for every-hour expressions)."""
    early_offset = (change - _SECOND).astimezone(tz).utcoffset() or timedelta()
    late_offset = change.astimezone(tz).utcoffset() or timedelta()
    at, naive_after = change.replace(tzinfo=None), after.replace(tzinfo=None)
    found: list[datetime] = []
    gap = max(late_offset - early_offset, timedelta())  # skipped times fire in it
    if after < change + gap:
        early = first_match(schedule, _second_after(naive_after + early_offset))
        if early is not None and early < at + max(early_offset, late_offset):
            found.append((early - early_offset).replace(tzinfo=UTC))
    start = max(_second_after(naive_after + late_offset), at + late_offset)
    if early_offset > late_offset and not schedule.every_hour:
        start = max(start, at + early_offset)  # a repeated time fires in its first pass only
    late = first_match(schedule, start)
    if late is not None:
        instant = (late - late_offset).replace(tzinfo=UTC)
        if instant > change + MARGIN:  # beyond this change: search from there as usual
            instant = next_fire(schedule, change + MARGIN, tz) or instant
        found.append(instant)
    return min(found) if found else None
