"""Cron expressions and fire times (`nameko._protocol.cron`), DST included.

The search is checked against a brute-force reference that walks every
minute of UTC time and every nonexistent local minute, written from the
rules in the module docstring rather than from the search's code."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from nameko._protocol.cron import first_match, next_fire, parse_cron

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # DST moves clocks by 30 minutes
SPRING_2026 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # London: 01:00 GMT -> 02:00 BST
FALL_2026 = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # London: 02:00 BST -> 01:00 GMT


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, start: datetime, count: int, tz=UTC) -> list[datetime]:
    schedule, found, t = parse_cron(expression), [], start
    for _ in range(count):
        t = next_fire(schedule, t, tz)
        found.append(t)
    return found


# -- parsing -------------------------------------------------------------------


def test_fields_lists_ranges_steps_and_names():
    s = parse_cron("*/15 9-17/4 1,15 jan-mar,DEC mon-fri")
    assert s.seconds == (0,)
    assert s.minutes == (0, 15, 30, 45)
    assert s.hours == (9, 13, 17)
    assert s.days == (1, 15)
    assert s.months == (1, 2, 3, 12)
    assert s.weekdays == (1, 2, 3, 4, 5)
    assert not s.day_star and not s.weekday_star


def test_seven_is_sunday_and_a_step_from_a_start_runs_to_the_end():
    assert parse_cron("0 0 * * 5-7").weekdays == (0, 5, 6)
    assert parse_cron("0 0 * * 7").weekdays == (0,)
    assert parse_cron("10/20 * * * *").minutes == (10, 30, 50)


def test_six_fields_have_seconds_first():
    s = parse_cron("*/20 * * * * *")
    assert s.seconds == (0, 20, 40)
    assert s.minutes == tuple(range(60))


@pytest.mark.parametrize(
    "alias,expression",
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_aliases(alias, expression):
    a, b = parse_cron(alias), parse_cron(expression)
    assert (a.minutes, a.hours, a.days, a.months, a.weekdays) == (
        b.minutes,
        b.hours,
        b.days,
        b.months,
        b.weekdays,
    )


@pytest.mark.parametrize(
    "expression,message",
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * * *", "expected 5 fields"),
        ("60 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("* * * * 8", "outside 0-7"),
        ("5-1 * * * *", "outside"),
        ("*/0 * * * *", "outside"),
        ("* * * foo *", "unknown month"),
        ("* * * * funday", "unknown day-of-week"),
        ("1,,2 * * * *", "bad minute"),
        ("@reboot", "expected 5 fields"),
        ("0 0 30 feb *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(ValueError, match=message):
        parse_cron(expression)


# -- fire times in UTC ------------------------------------------------------------


def test_every_five_minutes_strictly_after():
    assert fires("*/5 * * * *", utc(2026, 1, 1, 10, 0), 3) == [
        utc(2026, 1, 1, 10, 5),
        utc(2026, 1, 1, 10, 10),
        utc(2026, 1, 1, 10, 15),
    ]
    assert fires("*/5 * * * *", utc(2026, 1, 1, 10, 4, 59, 999999), 1) == [utc(2026, 1, 1, 10, 5)]


def test_rolls_over_hours_days_months_and_years():
    assert fires("30 23 31 12 *", utc(2026, 6, 1), 2) == [
        utc(2026, 12, 31, 23, 30),
        utc(2027, 12, 31, 23, 30),
    ]
    assert fires("0 0 29 2 *", utc(2026, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    assert fires("59 23 * * *", utc(2026, 2, 28, 23, 59), 1) == [utc(2026, 3, 1, 23, 59)]


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    # 2026-06-01 is a Monday; the 15th is a Monday too
    found = fires("0 12 13 * fri", utc(2026, 6, 1), 4)
    assert found == [
        utc(2026, 6, 5, 12),
        utc(2026, 6, 12, 12),
        utc(2026, 6, 13, 12),
        utc(2026, 6, 19, 12),
    ]


def test_a_star_day_field_means_both_must_match():
    # */2 days AND Monday: odd days of the month that are Mondays
    found = fires("0 0 */2 * mon", utc(2026, 6, 1), 3)
    assert found == [utc(2026, 6, 15), utc(2026, 6, 29), utc(2026, 7, 13)]
    assert all(d.isoweekday() == 1 and d.day % 2 == 1 for d in found)


def test_seconds_field():
    assert fires("*/20 * * * * *", utc(2026, 1, 1, 0, 0, 50), 3) == [
        utc(2026, 1, 1, 0, 1, 0),
        utc(2026, 1, 1, 0, 1, 20),
        utc(2026, 1, 1, 0, 1, 40),
    ]


def test_first_match_is_inclusive_and_gives_up_after_the_search_years():
    s = parse_cron("0 0 1 1 *")
    assert first_match(s, datetime(2026, 1, 1)) == datetime(2026, 1, 1)
    assert first_match(s, datetime(2026, 1, 1, 0, 0, 0, 1)) == datetime(2027, 1, 1)


def test_other_time_zones_read_fields_as_local_time():
    assert fires("0 9 * * *", utc(2026, 1, 10), 1, NEW_YORK) == [utc(2026, 1, 10, 14)]
    assert fires("0 9 * * *", utc(2026, 7, 10), 1, NEW_YORK) == [utc(2026, 7, 10, 13)]


# -- DST: Europe/London -------------------------------------------------------------


def test_spring_forward_every_five_minutes_keeps_its_cadence():
    found = fires("*/5 * * * *", SPRING_2026 - timedelta(minutes=10), 5, LONDON)
    assert found == [SPRING_2026 + timedelta(minutes=m) for m in (-5, 0, 5, 10, 15)]


def test_spring_forward_a_nonexistent_time_fires_shifted_by_the_gap():
    # 01:30 does not exist in London that day: it fires at 01:30 GMT = 02:30 BST
    found = fires("30 1 * * *", utc(2026, 3, 28, 12), 2, LONDON)
    assert found == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_spring_forward_a_time_in_the_gap_and_its_shift_fire_once():
    # 01:30 (gap) and 02:30 BST are the same instant
    found = fires("30 1,2 * * *", utc(2026, 3, 28, 23), 3, LONDON)
    assert found == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)]


def test_fall_back_a_repeated_time_fires_once():
    found = fires("30 1 * * *", utc(2026, 10, 24, 12), 2, LONDON)
    assert found == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_fall_back_every_hour_expressions_fire_in_both_passes():
    found = fires("*/30 * * * *", FALL_2026 - timedelta(hours=1, minutes=30), 6, LONDON)
    assert found == [FALL_2026 + timedelta(minutes=m) for m in (-60, -30, 0, 30, 60, 90)]
    hourly = fires("@hourly", FALL_2026 - timedelta(hours=2), 3, LONDON)
    assert hourly == [FALL_2026 - timedelta(hours=1), FALL_2026, FALL_2026 + timedelta(hours=1)]


def test_from_inside_the_repeated_hour():
    second_pass = FALL_2026 + timedelta(minutes=10)  # 01:10 GMT, the second 01:10
    assert fires("30 1 * * *", second_pass, 1, LONDON) == [utc(2026, 10, 26, 1, 30)]
    assert fires("20 * * * *", second_pass, 1, LONDON) == [FALL_2026 + timedelta(minutes=20)]


# -- against a brute-force reference --------------------------------------------------


def reference(expression: str, tz, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], by walking every minute."""
    s = parse_cron(expression)
    found = set()
    x = start.replace(second=0, microsecond=0)
    while x <= end:  # instants whose local reading matches
        local = x.astimezone(tz)
        if s.matches(local.replace(tzinfo=None)) and (local.fold == 0 or s.every_hour):
            found.add(x)
        x += timedelta(minutes=1)
    wall = start.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    while wall <= end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3):
        exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
        if not exists and s.matches(wall):  # a skipped time: read with the earlier offset
            before = (wall - timedelta(hours=3)).replace(tzinfo=tz).utcoffset()
            found.add((wall - before).replace(tzinfo=UTC))
        wall += timedelta(minutes=1)
    return sorted(t for t in found if start < t <= end)


def chain(expression: str, tz, start: datetime, end: datetime) -> list[datetime]:
    s, found, t = parse_cron(expression), [], start
    while True:
        t = next_fire(s, t, tz)
        if t is None or t > end:
            return found
        found.append(t)


EXPRESSIONS = [
    "*/5 * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 1 * * *",
    "0,30 0-3 * * *",
    "15 */2 * * *",
    "45 1,2 * * sun",
    "10 2 29 3 *",
    "0 1 25 10 *",
]


@pytest.mark.parametrize("tz", [LONDON, NEW_YORK, LORD_HOWE], ids=str)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_matches_the_reference_across_both_transitions_of_2026(expression, tz):
    for when in _transitions(tz, 2026):
        start, end = when - timedelta(hours=5), when + timedelta(hours=5)
        assert chain(expression, tz, start, end) == reference(expression, tz, start, end)


def test_random_expressions_and_start_times_match_the_reference():
    rng = random.Random(14)
    for _ in range(60):
        expression = " ".join(
            [
                rng.choice(["*", "*/5", "0", "30", "10-40/10", "0,15,45"]),
                rng.choice(["*", "1", "0-3", "*/2", "2,5"]),
                rng.choice(["*", "*", "25-31", "1"]),
                rng.choice(["*", "*", "3", "10,11"]),
                rng.choice(["*", "*", "sun", "mon-fri"]),
            ]
        )
        tz = rng.choice([LONDON, NEW_YORK, LORD_HOWE, UTC])
        when = rng.choice(_transitions(tz, 2026) or [utc(2026, 5, 1)])
        start = when + timedelta(minutes=rng.randint(-300, 300), seconds=rng.randint(0, 59))
        end = start + timedelta(hours=8)
        assert chain(expression, tz, start, end) == reference(expression, tz, start, end), (
            expression,
            tz,
            start,
        )


def _transitions(tz, year: int) -> list[datetime]:
    """The instants (to the minute) when ``tz`` changes its UTC offset in ``year``."""
    found, t = [], datetime(year, 1, 1, tzinfo=UTC)
    offset = t.astimezone(tz).utcoffset()
    while t.year == year:
        later = t + timedelta(hours=1)
        if later.astimezone(tz).utcoffset() != offset:
            x = t
            while x.astimezone(tz).utcoffset() == offset:
                x += timedelta(minutes=1)
            found.append(x)
            offset = later.astimezone(tz).utcoffset()
        t = later
    return found
