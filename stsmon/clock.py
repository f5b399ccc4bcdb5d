"""The one source of "now" below the CLI.

Time is an input: library code takes a :class:`Clock` (or a ``now``) from its
caller and never reads the wall clock itself. The CLI, and the entry points
of the background processes (scheduler, endpoint), build a
:class:`SystemClock`; tests build a :class:`FixedClock` dated years away from
today, so a test passes on any date. ``tests/test_clock_boundary.py`` fails
when a module below the CLI reads the wall clock directly.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock (UTC). Built only by the CLI and process entry points."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until told to move (tests, drills, replays).

    ``tick`` (optional) advances it by that much on every read, so successive
    events get distinct, ordered times without any wall clock.
    """

    def __init__(self, start: datetime, *, tick: timedelta = timedelta(0)) -> None:
        if start.tzinfo is None:
            raise ValueError(f"FixedClock needs an aware datetime, got naive {start!r}")
        self._now = start.astimezone(UTC)
        self._tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            current = self._now
            self._now = current + self._tick
            return current

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"FixedClock needs an aware datetime, got naive {moment!r}")
        with self._lock:
            self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"


SYSTEM = SystemClock()


def iso_seconds(moment: datetime) -> str:
    """``2026-11-27T13:00:00Z``: the form every state file uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
