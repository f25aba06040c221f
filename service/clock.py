"""Time: the Clock that every service function reads, and helpers for the UTC ISO 8601 stamps Aidline stores."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Tells the time; the domain asks it instead of the system, so tests can move time."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None:
        """Let time pass (a wait the domain chooses, such as a batch window)."""


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


class ManualClock:
    """A clock that stands still until told to move: for tests and replays."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        """Sleeping moves this clock, at once."""
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> datetime:
        """Move time forward and return the new moment."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar day a moment falls on in a time zone (an IANA name such as Asia/Shanghai)."""
    return moment.astimezone(ZoneInfo(timezone)).date()
