"""EventBridge Scheduler expressions: next fire times and clear refusals."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stscontracts.schedule import ScheduleError, parse

UTC = timezone.utc


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "expression, zone, after, expected",
    [
        ("cron(0 * ? * * *)", "UTC", "2026-11-27T12:00:00Z", "2026-11-27T13:00:00Z"),  # the project default: hourly
        ("cron(0 * ? * * *)", "UTC", "2026-11-27T12:59:59Z", "2026-11-27T13:00:00Z"),
        ("cron(5 * ? * * *)", "UTC", "2026-11-27T12:04:00Z", "2026-11-27T12:05:00Z"),
        ("cron(0/15 * ? * * *)", "UTC", "2026-11-27T12:16:00Z", "2026-11-27T12:30:00Z"),
        ("cron(0 8 ? * MON-FRI *)", "UTC", "2026-11-27T09:00:00Z", "2026-11-30T08:00:00Z"),  # Fri -> Mon
        ("cron(30 23 31 12 ? *)", "UTC", "2026-11-27T00:00:00Z", "2026-12-31T23:30:00Z"),
        ("cron(0 2 ? * * *)", "Europe/Berlin", "2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z"),  # 02:00 CET = 01:00Z
        ("cron(0 0 29 FEB ? *)", "UTC", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("rate(1 hour)", "UTC", "2026-11-27T12:30:00Z", "2026-11-27T13:00:00Z"),  # anchored at 12:00 below
        ("rate(15 minutes)", "UTC", "2026-11-27T12:31:00Z", "2026-11-27T12:45:00Z"),
        ("at(2026-12-01T06:00:00)", "UTC", "2026-11-27T12:00:00Z", "2026-12-01T06:00:00Z"),
    ],
)
def test_next_fire_time(expression, zone, after, expected):
    schedule = parse(expression, zone)
    assert schedule.next_after(t(after), anchor=t("2026-11-27T12:00:00Z")) == t(expected)


def test_at_in_the_past_never_fires_again():
    assert parse("at(2020-01-01T00:00:00)").next_after(t("2026-11-27T12:00:00Z")) is None


@pytest.mark.parametrize(
    "expression, message",
    [
        ("every hour", "is not cron(...), rate(N unit) or at("),
        ("cron(0 * * * *)", "cron needs 6 fields"),
        ("cron(0 * * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(61 * ? * * *)", "minutes 61 is outside 0-59"),
        ("cron(0 * ? * MON#2 *)", "L, W and # are not supported locally"),
        ("cron(0 * ? FOO * *)", "'FOO' is not a number or a name"),
        ("rate(0 hours)", "at least 1"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_unknown_time_zone():
    with pytest.raises(ScheduleError, match="unknown schedule time zone 'Mars/Olympus'"):
        parse("rate(1 hour)", "Mars/Olympus")
