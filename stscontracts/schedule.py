"""EventBridge Scheduler schedule expressions: ``cron(...)``, ``rate(...)``, ``at(...)``.

:func:`parse` checks an expression (a clear error naming what is wrong) and
returns a :class:`Schedule` whose :meth:`Schedule.next_after` gives the next
fire time. Cron has EventBridge's six fields ``minutes hours day-of-month
month day-of-week year``; one of day-of-month / day-of-week must be ``?``;
day-of-week is 1-7 = SUN-SAT. Supported: ``*``, ``?``, numbers, names
(JAN-DEC, SUN-SAT), ranges ``a-b``, lists ``a,b`` and steps ``*/n``,
``a/n``, ``a-b/n``. ``L``, ``W`` and ``#`` are refused (not used by this
project). Times are evaluated in the schedule's time zone
(``ScheduleExpressionTimezone``, default UTC).

A contract because two wings read the same ``MONITOR_SCHEDULE``: the
monitoring stack sizes its "no result" alarm with :func:`longest_gap`, the
local scheduler fires by :meth:`Schedule.next_after`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ContractError

class ScheduleError(ContractError):
    """A schedule expression (or its time zone) that EventBridge Scheduler would refuse, and why."""


_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
#: How far ahead a cron expression is searched for its next time.
_HORIZON_DAYS = 366 * 5


def _zone(name: str) -> tzinfo:
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown schedule time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)") from None


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None, what: str, expr: str) -> frozenset[int] | None:
    """The allowed values of one cron field; None for ``*`` / ``?`` (any)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if not token.isdigit():
            raise ScheduleError(f"schedule {expr!r}: {what} {text!r}: {token!r} is not a number"
                             + (f" or a name ({', '.join(names)})" if names else ""))
        value = int(token)
        if not lo <= value <= hi:
            raise ScheduleError(f"schedule {expr!r}: {what} {value} is outside {lo}-{hi}")
        return value

    for part in text.split(","):
        if any(c in part.upper() for c in "LW#") and not (names and part.upper() in names):
            raise ScheduleError(f"schedule {expr!r}: {what} {part!r}: L, W and # are not supported locally")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"schedule {expr!r}: {what} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            first, last = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = number(a), number(b)
            if first > last:
                raise ScheduleError(f"schedule {expr!r}: {what} range {base!r} goes backwards")
        else:
            first = number(base)
            last = hi if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule expression; :meth:`next_after` is the next fire time (UTC) or None."""

    expression: str
    zone: tzinfo
    kind: str  # cron | rate | at
    minutes: frozenset[int] | None = None
    hours: frozenset[int] | None = None
    days: frozenset[int] | None = None
    months: frozenset[int] | None = None
    weekdays: frozenset[int] | None = None  # 1 = Sunday
    years: frozenset[int] | None = None
    every: timedelta | None = None
    at: datetime | None = None

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware), in UTC.

        ``rate``: every interval from ``anchor`` (when the schedule started;
        default ``moment``). ``at``: its one time, or None once past.
        """
        moment = moment.astimezone(timezone.utc)
        if self.kind == "at":
            return self.at if self.at and self.at > moment else None
        if self.kind == "rate":
            start = (anchor or moment).astimezone(timezone.utc)
            if start > moment:
                return start
            periods = int((moment - start) / self.every) + 1
            return start + periods * self.every
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                first_day = day == local.date()
                for hour in sorted(self.hours or range(24)):
                    if first_day and hour < local.hour:
                        continue
                    for minute in sorted(self.minutes or range(60)):
                        if first_day and hour == local.hour and minute < local.minute:
                            continue
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
                        result = candidate.astimezone(timezone.utc)
                        if result > moment:
                            return result
            day += timedelta(days=1)
        return None

    def _day_matches(self, day: date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.days is not None and day.day not in self.days:
            return False
        weekday = (day.isoweekday() % 7) + 1  # Sunday = 1
        return self.weekdays is None or weekday in self.weekdays


def parse(expression: str, timezone_name: str = "UTC") -> Schedule:
    """Parse an EventBridge Scheduler expression (raises :class:`ScheduleError` with the reason)."""
    expr = (expression or "").strip()
    zone = _zone(timezone_name)
    if match := _RATE.match(expr):
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1:
            raise ScheduleError(f"schedule {expr!r}: the rate must be at least 1")
        return Schedule(expr, zone, "rate", every=timedelta(**{f"{unit}s": value}))
    if match := _AT.match(expr):
        local = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)
        return Schedule(expr, zone, "at", at=local.astimezone(timezone.utc))
    if match := _CRON.match(expr):
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ScheduleError(f"schedule {expr!r}: cron needs 6 fields (minutes hours day-of-month month "
                             f"day-of-week year), got {len(fields)}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"schedule {expr!r}: exactly one of day-of-month and day-of-week must be '?'")
        return Schedule(
            expr, zone, "cron",
            minutes=_field(minute, 0, 59, None, "minutes", expr),
            hours=_field(hour, 0, 23, None, "hours", expr),
            days=_field(dom, 1, 31, None, "day-of-month", expr),
            months=_field(month, 1, 12, _MONTHS, "month", expr),
            weekdays=_field(dow, 1, 7, _DAYS, "day-of-week", expr),
            years=_field(year, 1970, 2199, None, "year", expr),
        )
    raise ScheduleError(f"schedule expression {expr!r} is not cron(...), rate(N unit) or at(yyyy-mm-ddThh:mm:ss)")


#: Where :func:`longest_gap` starts looking (a fixed instant: synth must not depend on the day it runs).
_GAP_FROM = datetime(2033, 1, 3, tzinfo=timezone.utc)  # a Monday


def longest_gap(expression: str, timezone_name: str = "UTC", *, horizon: timedelta = timedelta(days=8)) -> timedelta | None:
    """The longest time between two fire times of a schedule, over ``horizon`` (a week and a day:
    every daily and weekly pattern repeats in it); None for a one-time ``at(...)``.

    The monitoring stack sizes its "no monitoring result" alarm with it.
    """
    schedule = parse(expression, timezone_name)
    if schedule.kind == "at":
        return None
    if schedule.kind == "rate":
        return schedule.every
    longest, previous = timedelta(0), schedule.next_after(_GAP_FROM)
    end = _GAP_FROM + horizon
    while previous is not None and previous < end:
        following = schedule.next_after(previous)
        if following is None:
            break
        longest = max(longest, following - previous)
        previous = following
    return longest or None
