"""Report figures kept up to date as events happen: per local day and per ISO week, by grid and kind.

A need is counted in the day (and week) it was received, in its cell '<grid>|<kind>': received when it is
stored (in the same transaction), everything else by lib.lua's `rollup_status` inside the script that changes
its status, so a crash, a retried job or two workers racing can neither lose a count nor add one twice.
Durations are counted in fixed log-spaced buckets (`duration_bucket`), four per doubling. Volunteers' service
(accepted to done) is counted on the day it ends, per volunteer. Drill needs are never counted.

Each figure is a hash field '<grid>|<kind>|<figure>' of the day's, the ISO week's and the month's hash; a
report over a long span reads whole months from the month hashes, whole weeks around them from the week
hashes and only the days left at its edges from the day hashes (whole weeks and days when it is grouped by
week).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import redis

from service.clock import local_date, parse
from service.models import AttentionLevel, Need, NeedKind
from service.store.keys import Keys

PER_DOUBLING = 4
"""Duration buckets per doubling of the duration: a quantile read from them is within 2**(1/8), about 9 %."""

ATTENTION_LEVELS = tuple(level.value for level in AttentionLevel)
"""Households' attention levels, most closely watched first."""

VISIT_STATUSES = ("due", "done", "overdue")


def duration_bucket(seconds: float) -> int:
    """The bucket of a duration: 0 below one second, then PER_DOUBLING per doubling (as lib.lua's)."""
    if seconds < 1:
        return 0
    return math.floor(PER_DOUBLING * math.log(seconds) / math.log(2)) + 1


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The durations (seconds) a bucket holds: from its lower bound, below its upper one."""
    if bucket <= 0:
        return 0.0, 1.0
    return 2 ** ((bucket - 1) / PER_DOUBLING), 2 ** (bucket / PER_DOUBLING)


def week_of(day: date) -> str:
    """An ISO week's name, e.g. 2026-W48."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def cell(grid: str | None, kind: NeedKind | str) -> str:
    return f"{grid or ''}|{kind}"


def split_field(name: str) -> tuple[str, str, str]:
    """A rollup field's grid, kind and figure (a grid may hold '|'; kinds and figures do not)."""
    grid, kind, figure = name.rsplit("|", 2)
    return grid, kind, figure


@dataclass(frozen=True)
class Chunk:
    """The figures of one stretch of a report's span: a whole month, a whole ISO week or a single day."""

    week: str
    """The ISO week of a week or a day ('' for a month)."""
    figures: Mapping[str | bytes, int | bytes]
    """Each field as Redis answers it (bytes; `figure_counts` reads it)."""
    volunteers: Mapping[str | bytes, int | bytes]


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def chunks(start: date, end: date, *, months: bool = True) -> Iterator[tuple[str, date, str]]:
    """The span from start to end (both included) as whole months where it can (unless `months` is False), whole
    ISO weeks where it can then, and single days: (week name or '' for a month, first day, 'month' | 'week' |
    'day')."""

    def whole_month(day: date) -> bool:
        return months and day.day == 1 and _month_end(day) <= end

    day = start
    while day <= end:
        week = [day + timedelta(days=i) for i in range(7)]
        if whole_month(day):
            yield "", day, "month"
            day = _month_end(day) + timedelta(days=1)
        elif day.isoweekday() == 1 and week[-1] <= end and not any(whole_month(d) for d in week[1:]):
            yield week_of(day), day, "week"
            day += timedelta(days=7)
        else:
            yield week_of(day), day, "day"
            day += timedelta(days=1)


class RollupStore:
    """Writes and reads the report rollups; days are local to `timezone`."""

    def __init__(self, client: redis.Redis, keys: Keys, *, timezone: str = "UTC") -> None:
        self.r = client
        self.keys = keys
        self.timezone = timezone

    def period(self, stamp: str) -> dict[str, str]:
        """The local day and ISO week of a stored UTC time, as the scripts take them."""
        day = local_date(parse(stamp), self.timezone)
        return {"day": day.isoformat(), "week": week_of(day)}

    def queue_received(self, pipeline: Any, need: Need) -> None:
        """In the transaction that stores the need: count it received and mark its cell on it (drills are not
        counted)."""
        if need.drill:
            return
        period = self.period(need.created_at)
        where = cell(need.grid, need.kind)
        pipeline.hset(
            self.keys.need(need.id),
            mapping={"report_day": period["day"], "report_week": period["week"], "report_cell": where},
        )
        self.queue_add(pipeline, day=period["day"], week=period["week"], figures={f"{where}|received": 1})

    def queue_add(self, pipeline: Any, *, day: str, week: str, figures: dict[str, int]) -> None:
        """Add to figures ('<grid>|<kind>|<figure>': amount) of a day, its week and its month, in a pipeline."""
        for key in (self.keys.rollup_day(day), self.keys.rollup_week(week), self.keys.rollup_month(day[:7])):
            for name, amount in figures.items():
                if amount:
                    pipeline.hincrby(key, name, amount)

    def queue_add_volunteers(self, pipeline: Any, *, day: str, week: str, figures: dict[str, int]) -> None:
        """Add to volunteers' figures ('<volunteer id>|service_s' or '|tasks': amount), in a pipeline."""
        volunteers = (
            self.keys.rollup_volunteers_day,
            self.keys.rollup_volunteers_week,
            self.keys.rollup_volunteers_month,
        )
        for key in (volunteers[0](day), volunteers[1](week), volunteers[2](day[:7])):
            for name, amount in figures.items():
                if amount:
                    pipeline.hincrby(key, name, amount)

    def count_visit(
        self, *, day: date, grid: str | None, attention_level: str, status: str, pipeline: Any = None
    ) -> None:
        """Count one household visit becoming due, done or overdue on a local day. Pass the pipeline (a
        transaction) that records the visit's change, so the count is made exactly when the change is."""
        if attention_level not in ATTENTION_LEVELS:
            raise ValueError(f"attention_level: not one of {', '.join(ATTENTION_LEVELS)}")
        if status not in VISIT_STATUSES:
            raise ValueError(f"status: not one of {', '.join(VISIT_STATUSES)}")
        pipe = pipeline if pipeline is not None else self.r.pipeline(transaction=True)
        name = f"{cell(grid, NeedKind.COMPANIONSHIP_VISIT)}|visits:{attention_level}:{status}"
        self.queue_add(pipe, day=day.isoformat(), week=week_of(day), figures={name: 1})
        if pipeline is None:
            pipe.execute()

    def read(self, start: date, end: date, *, volunteers: bool = False, by_week: bool = False) -> list[Chunk]:
        """The figures from start to end (local days, both included), one chunk per whole month, whole week or
        single day (weeks and days only `by_week`), and the volunteers' when asked: one round trip however long
        the span."""
        parts = list(chunks(start, end, months=not by_week))
        k = self.keys
        figure_keys = {"month": k.rollup_month, "week": k.rollup_week, "day": k.rollup_day}
        volunteer_keys = {
            "month": k.rollup_volunteers_month,
            "week": k.rollup_volunteers_week,
            "day": k.rollup_volunteers_day,
        }
        pipe = self.r.pipeline(transaction=False)
        for week, day, span in parts:
            name = day.isoformat()[:7] if span == "month" else week if span == "week" else day.isoformat()
            pipe.hgetall(figure_keys[span](name))
            if volunteers:
                pipe.hgetall(volunteer_keys[span](name))
        replies = iter(pipe.execute())
        return [
            Chunk(week=week, figures=next(replies), volunteers=next(replies) if volunteers else {})
            for week, _, _ in parts
        ]


def figure_counts(raw: Mapping[str | bytes, int | bytes]) -> dict[str, int]:
    """A rollup hash as names and counts."""
    return {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
