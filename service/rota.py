"""Who of a grid's captains is on call: the rota's rules, pure (no Redis, no clock of its own).

A rota has weekly shifts (a weekday, a start and an end in local time, "24:00" for midnight at the end
of the day) and dated overrides (local "YYYY-MM-DDTHH:MM" from and to); an override wins over the
shifts while it lasts. Local times are in the configured time zone (AIDLINE_TIMEZONE): a shift is the
same wall-clock hours every week, whatever the zone's offset that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.models import Override, Rota, Shift, Weekday

WEEKDAYS = list(Weekday)
"""Monday first, as datetime.weekday() counts."""

HORIZON = timedelta(days=8)
"""How far ahead the end of someone's cover is looked for: past a full week nothing new can happen
except overrides, which are looked at wherever they are."""


@dataclass(frozen=True)
class OnCall:
    """Who is on call at a moment, and until when (UTC); `volunteer_id` None when nobody is: `until` is then
    when somebody next is. `until` None: no change in sight (the same person all week, or nobody at all)."""

    volunteer_id: str | None
    until: datetime | None
    source: str | None = None
    """'shift' or 'override': what puts them on call."""


# ---- reading and checking a rota --------------------------------------------------------------------


def minutes_of(text: str) -> int:
    """'HH:MM' as minutes after midnight; '24:00' is 1440. ValueError for anything else."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("Not a time as HH:MM.")
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return 1440
    if h > 23 or m > 59:
        raise ValueError("Not a time of day (00:00 to 24:00).")
    return h * 60 + m


def local_moment(text: str, zone: ZoneInfo) -> datetime:
    """A local 'YYYY-MM-DDTHH:MM' (or with seconds, or with an offset or Z) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def check_rota(rota_in: dict[str, Any], zone: ZoneInfo) -> dict[str, list[str]]:
    """Every rule a rota breaks, by field ('shifts.0.start': [...]); empty when it is sound.

    Shifts end after they start and do not overlap on a weekday; overrides end after they start and do
    not overlap each other. (Whether each volunteer may be on call is the caller's to check.)
    """
    problems: dict[str, list[str]] = {}
    spans: dict[str, list[tuple[int, int, int]]] = {}
    for i, shift in enumerate(rota_in.get("shifts", [])):
        try:
            start = minutes_of(shift["start"])
        except ValueError as bad:
            problems[f"shifts.{i}.start"] = [str(bad)]
            continue
        try:
            end = minutes_of(shift["end"])
        except ValueError as bad:
            problems[f"shifts.{i}.end"] = [str(bad)]
            continue
        if start >= 1440:
            problems[f"shifts.{i}.start"] = ["A shift starts before 24:00."]
        elif end <= start:
            problems[f"shifts.{i}.end"] = ["A shift ends after it starts (split a night: 22:00-24:00 and 00:00-06:00)."]
        else:
            spans.setdefault(str(shift["weekday"]), []).append((start, end, i))
    for day_spans in spans.values():
        day_spans.sort()
        for (_, end, _), (start, _, j) in zip(day_spans, day_spans[1:], strict=False):
            if start < end:
                problems.setdefault(f"shifts.{j}.start", []).append("Overlaps another shift on the same weekday.")
    periods = []
    for i, override in enumerate(rota_in.get("overrides", [])):
        moments = []
        for name in ("from", "to"):
            try:
                moments.append(local_moment(override[name], zone))
            except ValueError:
                problems[f"overrides.{i}.{name}"] = ["Not a date and time (YYYY-MM-DDTHH:MM)."]
        if len(moments) < 2:
            continue
        begin, finish = moments
        if finish <= begin:
            problems[f"overrides.{i}.to"] = ["An override ends after it starts."]
        else:
            periods.append((begin, finish, i))
    periods.sort()
    for (_, finish, _), (begin, _, j) in zip(periods, periods[1:], strict=False):
        if begin < finish:
            problems.setdefault(f"overrides.{j}.from", []).append("Overlaps another override.")
    return problems


def build_rota(grid: str, rota_in: dict[str, Any]) -> Rota:
    """A rota from checked input (see check_rota)."""
    return Rota(
        grid=grid,
        shifts=[
            Shift(weekday=Weekday(s["weekday"]), start=s["start"], end=s["end"], volunteer_id=s["volunteer_id"])
            for s in rota_in.get("shifts", [])
        ],
        overrides=[
            Override(start=o["from"], end=o["to"], volunteer_id=o["volunteer_id"]) for o in rota_in.get("overrides", [])
        ],
    )


# ---- who is on call -------------------------------------------------------------------------------


def at_local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The moment `minutes` after the local midnight starting `day` (1440: the next midnight)."""
    return datetime.combine(day + timedelta(days=minutes // 1440), time(minutes % 1440 // 60, minutes % 60), zone)


def shift_spans(rota: Rota, around: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime, str]]:
    """Every shift of the rota as (start, end, volunteer) from the day before `around` to HORIZON after it."""
    first = around.astimezone(zone).date() - timedelta(days=1)
    spans = []
    for offset in range((HORIZON.days) + 2):
        day = first + timedelta(days=offset)
        weekday = WEEKDAYS[day.weekday()]
        for shift in rota.shifts:
            if shift.weekday is weekday:
                spans.append(
                    (
                        at_local(day, minutes_of(shift.start), zone),
                        at_local(day, minutes_of(shift.end), zone),
                        shift.volunteer_id,
                    )
                )
    return spans


def override_spans(rota: Rota, zone: ZoneInfo) -> list[tuple[datetime, datetime, str]]:
    return [(local_moment(o.start, zone), local_moment(o.end, zone), o.volunteer_id) for o in rota.overrides]


def who_at(
    moment: datetime, shifts: list[tuple[datetime, datetime, str]], overrides: list[tuple[datetime, datetime, str]]
) -> tuple[str | None, str | None]:
    """(volunteer, source) on call at the moment: an override first, then a shift."""
    for start, end, volunteer_id in overrides:
        if start <= moment < end:
            return volunteer_id, "override"
    for start, end, volunteer_id in shifts:
        if start <= moment < end:
            return volunteer_id, "shift"
    return None, None


def on_call(rota: Rota | None, moment: datetime, zone: ZoneInfo) -> OnCall:
    """Who is on call at `moment` and until when: the first later moment someone else (or nobody) is.

    Cover that continues across a boundary (22:00-24:00 then 00:00-06:00 by the same captain, or an
    override followed by the same captain's shift) counts as one stretch.
    """
    if rota is None or not (rota.shifts or rota.overrides):
        return OnCall(None, None)
    shifts = shift_spans(rota, moment, zone)
    overrides = override_spans(rota, zone)
    current, source = who_at(moment, shifts, overrides)
    limit = moment + HORIZON
    boundaries = sorted(
        {edge for start, end, _ in shifts + overrides for edge in (start, end) if moment < edge <= limit}
    )
    for edge in boundaries:
        if who_at(edge, shifts, overrides)[0] != current:
            return OnCall(current, edge.astimezone(UTC), source)
    return OnCall(current, None, source)
