"""The numbers managers read: needs received and resolved, rates, times, visits and service hours over a span.

Figures come from the rollups kept as events happen (service/store/rollups.py), never from scanning needs: a
need counts in the local day it was received (so a rate is of the same needs: of those received in the span,
the share resolved), a volunteer's service on the day it ended. Rates are fractions from 0 to 1, None when
nothing was there to count; times are the median and 90th percentile read from log-spaced buckets, within
about 9 % of the exact value.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from service import access, clock, messages
from service.deps import Deps
from service.exceptions import InvalidInput
from service.models import Principal, ReportGroup, Role
from service.store.rollups import (
    ATTENTION_LEVELS,
    VISIT_STATUSES,
    Chunk,
    bucket_bounds,
    figure_counts,
    split_field,
)

MAX_DAYS = 3 * 366
"""The longest span one report covers (three years)."""

DEFAULT_DAYS = 30
"""A report without `from` covers this many days up to `to`."""

DURATIONS = {"to_offer": "first_offer", "to_accept": "acceptance", "to_done": "done"}
"""The durations from intake a report gives: the rollup's name, the report's."""

CSV_COLUMNS = [
    "received",
    "resolved",
    "resolution_rate",
    "on_time",
    "on_time_rate",
    "rated",
    "satisfaction",
    "mean_rating",
    "reopened",
    "escalated",
    "deferred",
    *(f"{name}_{q}_s" for name in DURATIONS.values() for q in ("median", "p90")),
    *(f"visits_{level}_{status}" for level in ATTENTION_LEVELS for status in VISIT_STATUSES),
    "service_hours",
    "tasks",
]
"""The figures of a CSV line, after the group and its name."""


def quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (nearest rank) of durations counted in buckets: the geometric middle of the bucket that
    holds it (0.5 s for the bucket below one second); None when nothing was counted."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            low, high = bucket_bounds(bucket)
            return math.sqrt(low * high) if bucket > 0 else 0.5
    return None  # pragma: no cover - the ranks always reach the total


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def figures(counts: Mapping[str, int], *, of_needs: bool = True) -> dict[str, Any]:
    """A report row from merged rollup counts. Rows of volunteers and teams have their service only (the need
    figures are None: needs are not counted per volunteer)."""
    out: dict[str, Any] = {}
    if of_needs:
        received, resolved, rated = counts.get("received", 0), counts.get("resolved", 0), counts.get("rated", 0)
        out.update(
            received=received,
            resolved=resolved,
            resolution_rate=rate(resolved, received),
            on_time=counts.get("on_time", 0),
            on_time_rate=rate(counts.get("on_time", 0), counts.get("timed", 0)),
            rated=rated,
            satisfaction=rate(counts.get("rated_good", 0), rated),
            mean_rating=round(counts.get("rating_sum", 0) / rated, 2) if rated else None,
            reopened=counts.get("reopened", 0),
            escalated=counts.get("escalated", 0),
            deferred=counts.get("deferred", 0),
        )
        for stored, name in DURATIONS.items():
            histogram = {
                int(figure.partition(":")[2]): n for figure, n in counts.items() if figure.startswith(stored + ":")
            }
            out[f"seconds_to_{name}"] = {
                "count": sum(histogram.values()),
                "median": _seconds(quantile(histogram, 0.5)),
                "p90": _seconds(quantile(histogram, 0.9)),
            }
        out["visits"] = {
            level: {status: counts.get(f"visits:{level}:{status}", 0) for status in VISIT_STATUSES}
            for level in ATTENTION_LEVELS
        }
    else:
        out.update({name: None for name in ("received", "resolved", "resolution_rate", "on_time", "on_time_rate")})
        out.update({name: None for name in ("rated", "satisfaction", "mean_rating", "reopened", "escalated")})
        out.update({"deferred": None, "visits": None, **{f"seconds_to_{n}": None for n in DURATIONS.values()}})
    out["service_hours"] = round(counts.get("service_s", 0) / 3600, 2)
    out["tasks"] = counts.get("tasks", 0)
    return out


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class Report:
    date_from: date
    date_to: date
    group_by: ReportGroup | None
    timezone: str
    totals: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)


EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
"""The days a report may name."""


def span_problem(date_from: date | None, date_to: date | None, *, blame: str = "to") -> tuple[str, str] | None:
    """What is wrong with a report's span, as (field, message); None when it is fine. `blame` is the field
    named when the span as a whole is wrong (the one the caller sent, when only one was)."""
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and not EARLIEST <= day <= LATEST:
            return name, f"Must be between {EARLIEST} and {LATEST}."
    if date_from is not None and date_to is not None:
        if date_to < date_from:
            return blame, "Must not be before from." if blame == "to" else "Must not be after to (today)."
        if (date_to - date_from).days + 1 > MAX_DAYS:
            return blame, f"A report covers at most {MAX_DAYS} days."
    return None


def summary(
    *,
    deps: Deps,
    principal: Principal,
    date_from: date | None = None,
    date_to: date | None = None,
    group_by: ReportGroup | None = None,
    locale: str = "en",
) -> Report:
    """The figures from date_from to date_to (local days in AIDLINE_TIMEZONE, both included; unless given, `to`
    is today and `from` makes a span of 30 days), in total and one row per group."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    end = date_to or clock.local_date(deps.clock.now(), deps.settings.timezone)
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    problem = span_problem(date_from, date_to) or span_problem(
        start, end, blame="from" if date_to is None and date_from is not None else "to"
    )
    if problem is not None:
        name, message = problem
        raise InvalidInput(f"{name}: {message}", errors={"query": {name: [message]}})
    group = ReportGroup(group_by) if group_by else None
    chunks = deps.store.rollups.read(
        start,
        end,
        volunteers=group in (ReportGroup.VOLUNTEER, ReportGroup.TEAM),
        by_week=group is ReportGroup.WEEK,
    )
    totals, rows = merge(chunks, group)
    report = Report(
        date_from=start, date_to=end, group_by=group, timezone=deps.settings.timezone, totals=figures(totals)
    )
    if group is None:
        return report
    of_needs = group not in (ReportGroup.VOLUNTEER, ReportGroup.TEAM)
    if group is ReportGroup.TEAM:
        rows = by_team(deps, rows)
    labels = names(deps, group, list(rows), locale)
    if of_needs:  # by name (weeks in order), the group without a grid last
        ordered = sorted(rows, key=lambda k: (k is None, k or ""))
    else:  # most service first
        ordered = sorted(rows, key=lambda k: (k is None, -rows[k].get("service_s", 0), k or ""))
    report.groups = [
        {"key": key, "label": labels.get(key, key), **figures(rows[key], of_needs=of_needs)} for key in ordered
    ]
    return report


def merge(chunks: list[Chunk], group: ReportGroup | None) -> tuple[dict[str, int], dict[str | None, dict[str, int]]]:
    """Sum the chunks' counts: in total, and per group (grid, kind or week; volunteers for volunteers and teams).

    The same field recurs in every chunk: fields are summed by name first (per week when grouping by week) and
    each distinct name is split once."""
    by_period: dict[str, dict[str | bytes, int]] = defaultdict(lambda: defaultdict(int))
    for chunk in chunks:
        summed = by_period[chunk.week if group is ReportGroup.WEEK else ""]
        for name, amount in chunk.figures.items():
            summed[name] += int(amount)
    totals: dict[str, int] = defaultdict(int)
    rows: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for period, summed in by_period.items():
        for name, amount in summed.items():
            grid, kind, figure = split_field(name.decode() if isinstance(name, bytes) else name)
            totals[figure] += amount
            if group is ReportGroup.GRID:
                rows[grid or None][figure] += amount
            elif group is ReportGroup.KIND:
                rows[kind][figure] += amount
            elif group is ReportGroup.WEEK:
                rows[period][figure] += amount
    if group in (ReportGroup.VOLUNTEER, ReportGroup.TEAM):
        for chunk in chunks:
            for name, amount in figure_counts(chunk.volunteers).items():
                volunteer_id, _, figure = name.rpartition("|")
                rows[volunteer_id][figure] += amount
    return totals, rows


def by_team(deps: Deps, rows: dict[str | None, dict[str, int]]) -> dict[str | None, dict[str, int]]:
    """Volunteers' rows summed by their team (as the volunteer record says now)."""
    ids = [k for k in rows if k is not None]
    teams: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for volunteer_id, volunteer in zip(ids, deps.store.volunteers.get_many(ids), strict=True):
        team = volunteer.team if volunteer is not None else None
        for figure, amount in rows[volunteer_id].items():
            teams[team or None][figure] += amount
    return teams


def names(deps: Deps, group: ReportGroup, keys: list[str | None], locale: str) -> dict[str | None, str]:
    """Each group's name as people read it: the kind in their language, the volunteer's name."""
    none = messages.REPORT_COLUMNS["none"][locale]
    labels: dict[str | None, str] = {None: none}
    if group is ReportGroup.KIND:
        labels.update({k: messages.kind_name(k, locale) for k in keys if k})
    elif group is ReportGroup.VOLUNTEER:
        ids = [k for k in keys if k]
        for volunteer_id, volunteer in zip(ids, deps.store.volunteers.get_many(ids), strict=True):
            labels[volunteer_id] = volunteer.name if volunteer is not None else volunteer_id
    else:
        labels.update({k: k for k in keys if k})
    return labels


def flat(row: Mapping[str, Any]) -> list[Any]:
    """A row's figures in CSV_COLUMNS order (empty where there is no figure)."""
    values: list[Any] = []
    for column in CSV_COLUMNS:
        if column.startswith("visits_"):
            _, level, status = column.split("_", 2)
            visits = row.get("visits")
            values.append(visits[level][status] if visits else None)
        elif column.endswith(("_median_s", "_p90_s")):
            name, _, q = column[: -len("_s")].rpartition("_")
            times = row.get(f"seconds_to_{name}")
            values.append(times[q] if times else None)
        else:
            values.append(row.get(column))
    return ["" if v is None else v for v in values]


def to_csv(report: Report, *, locale: str = "en") -> str:
    """The report as CSV: UTF-8 text starting with a byte order mark (so spreadsheet programs read Chinese
    right), a header line, one line per group and a total line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [messages.report_column("group", locale), messages.report_column("label", locale)]
        + [messages.report_column(c, locale) for c in CSV_COLUMNS]
    )
    for row in report.groups:
        writer.writerow([row["key"] or "", row["label"], *flat(row)])
    total = messages.report_column("total", locale)
    writer.writerow([total, total, *flat(report.totals)])
    return "\ufeff" + out.getvalue()


def to_table(report: Report, *, locale: str = "en") -> str:
    """The report as a text table for a terminal: the CSV's columns (CSV_COLUMNS), one line per group and a total
    line; rates in per cent, every other figure as a number in the unit its heading names (seconds, hours)."""
    header = [messages.report_column("label", locale)] + [messages.report_column(c, locale) for c in CSV_COLUMNS]
    total = messages.report_column("total", locale)
    lines = [
        [row["label"], *(_cell(c, value) for c, value in zip(CSV_COLUMNS, flat(row), strict=True))]
        for row in [*report.groups, {"label": total, **report.totals}]
    ]
    widths = [max(_width(line[i]) for line in [header, *lines]) for i in range(len(header))]
    title = f"{report.date_from} .. {report.date_to} ({report.timezone})"
    out = [title, ""]
    for line in [header, *lines]:
        out.append(
            "  ".join(_pad(text, width, left=i == 0) for i, (text, width) in enumerate(zip(line, widths, strict=True)))
        )
    return "\n".join(out) + "\n"


def _cell(column: str, value: Any) -> str:
    if value in ("", None):
        return "-"
    if column.endswith("_rate") or column == "satisfaction":
        return f"{value * 100:.1f}%"
    if column.endswith("_s"):  # seconds, as the heading says: whole ones, tenths below 100
        seconds = float(value)
        return f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.1f}".removesuffix(".0")
    return str(value)


def _width(text: str) -> int:
    """Columns a text takes on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    gap = " " * (width - _width(text))
    return text + gap if left else gap + text
