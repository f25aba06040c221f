"""Reports: quantiles from log-spaced buckets, rollups merged by group, and figures counted exactly as real needs
go through their lifecycle against a real Redis."""

from __future__ import annotations

import csv
import io
import math
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from service import clock, dispatch, needs, offers, reports, volunteers
from service.bootstrap import bootstrap
from service.config import Settings
from service.exceptions import Forbidden, InvalidInput
from service.models import NeedStatus, Principal, ReportGroup, Role
from service.store.rollups import Chunk, bucket_bounds, chunks, duration_bucket, figure_counts, week_of

DISPATCHER = Principal(role=Role.DISPATCHER, token_id="tok_reports")
HERE = {"lat": 46.34, "lon": 132.25}
RESOLUTION = 2 ** (1 / 8)
"""A quantile read from the buckets is within this factor of the exact one."""


# ---- pure: buckets and quantiles -----------------------------------------------------------------


def test_each_duration_falls_in_the_bucket_whose_bounds_hold_it() -> None:
    for seconds in [0.0, 0.4, 1.0, 1.1, 59.0, 60.0, 61.5, 3600.0, 86_400.0 * 365]:
        low, high = bucket_bounds(duration_bucket(seconds))
        assert low <= seconds < high * (1 + 1e-12)


def test_buckets_are_four_to_a_doubling() -> None:
    assert duration_bucket(60) + 4 == duration_bucket(120)
    assert duration_bucket(0.9) == 0
    assert duration_bucket(1) == 1


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_quantiles_from_buckets_are_within_the_bucket_resolution_of_the_exact_ones(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [math.exp(rng.uniform(0, 12)) for _ in range(rng.randint(1, 2000))]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[duration_bucket(v)] = histogram.get(duration_bucket(v), 0) + 1

    estimate = reports.quantile(histogram, q)

    assert estimate is not None
    assert 1 / RESOLUTION <= estimate / exact(values, q) <= RESOLUTION


def test_no_durations_have_no_quantile() -> None:
    assert reports.quantile({}, 0.5) is None


def test_durations_under_a_second_read_as_half_a_second() -> None:
    assert reports.quantile({0: 3}, 0.9) == 0.5


def test_rates_are_fractions_and_null_without_a_denominator() -> None:
    row = reports.figures({"received": 4, "resolved": 3, "rated": 2, "rated_good": 1, "rating_sum": 7})

    assert row["resolution_rate"] == 0.75
    assert row["satisfaction"] == 0.5
    assert row["mean_rating"] == 3.5
    assert row["on_time_rate"] is None
    assert row["seconds_to_done"] == {"count": 0, "median": None, "p90": None}


def test_a_span_is_read_as_whole_iso_weeks_with_single_days_at_its_edges() -> None:
    # 2026-11-25 is a Wednesday; 2026-11-30 a Monday
    parts = list(chunks(date(2026, 11, 25), date(2026, 12, 15)))

    assert [(d.isoformat(), span) for _, d, span in parts] == [
        ("2026-11-25", "day"),
        ("2026-11-26", "day"),
        ("2026-11-27", "day"),
        ("2026-11-28", "day"),
        ("2026-11-29", "day"),
        ("2026-11-30", "week"),
        ("2026-12-07", "week"),
        ("2026-12-14", "day"),
        ("2026-12-15", "day"),
    ]
    assert [w for w, _, _ in parts][4:6] == ["2026-W48", "2026-W49"]


def test_a_long_span_is_read_as_whole_months_then_weeks_then_days() -> None:
    parts = [(d.isoformat(), span) for _, d, span in chunks(date(2026, 1, 20), date(2026, 4, 12))]

    assert parts == [
        ("2026-01-20", "day"),  # a Tuesday
        *[(f"2026-01-{d}", "day") for d in range(21, 26)],
        ("2026-01-26", "day"),  # a Monday, but its week holds 1 February, which starts a whole month
        *[(f"2026-01-{d}", "day") for d in range(27, 32)],
        ("2026-02-01", "month"),
        ("2026-03-01", "month"),
        ("2026-04-01", "day"),  # April is not whole: weeks and days
        *[(f"2026-04-0{d}", "day") for d in range(2, 6)],
        ("2026-04-06", "week"),
    ]
    spans = [(d, span) for _, d, span in chunks(date(2026, 1, 20), date(2026, 4, 12), months=False)]
    assert {span for _, span in spans} == {"week", "day"}


def test_every_day_of_a_span_is_read_exactly_once() -> None:
    rng = random.Random(7)
    for _ in range(200):
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 900))
        end = start + timedelta(days=rng.randint(0, 500))
        for months in (True, False):
            covered = []
            for _, first, span in chunks(start, end, months=months):
                length = {"day": 1, "week": 7}.get(span) or (
                    (first.replace(month=first.month % 12 + 1, year=first.year + first.month // 12) - first).days
                )
                covered += [first + timedelta(days=i) for i in range(length)]
            assert covered == [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_merging_sums_the_cells_by_group() -> None:
    chunk_a = Chunk(
        week="2026-W48",
        figures={"g1|errand_shopping|received": 2, "g2|errand_shopping|received": 1, "|transport|received": 1},
        volunteers={},
    )
    chunk_b = Chunk(week="2026-W49", figures={"g1|transport|received": 5, "g1|transport|to_done:12": 1}, volunteers={})

    totals, by_grid = reports.merge([chunk_a, chunk_b], ReportGroup.GRID)
    _, by_week = reports.merge([chunk_a, chunk_b], ReportGroup.WEEK)
    _, by_kind = reports.merge([chunk_a, chunk_b], ReportGroup.KIND)

    assert totals["received"] == 9
    assert {k: v["received"] for k, v in by_grid.items()} == {"g1": 7, "g2": 1, None: 1}
    assert by_grid["g1"]["to_done:12"] == 1
    assert {k: v["received"] for k, v in by_week.items()} == {"2026-W48": 4, "2026-W49": 5}
    assert {k: v["received"] for k, v in by_kind.items()} == {"errand_shopping": 3, "transport": 6}


def test_a_grid_name_with_the_separator_is_read_back_whole() -> None:
    _, rows = reports.merge([Chunk("2026-W48", {"a|b|errand_shopping|received": 1}, {})], ReportGroup.GRID)
    assert rows["a|b"]["received"] == 1


# ---- against Redis: real needs through their lifecycle ---------------------------------------------


@pytest.fixture(autouse=True)
def morning(clock: Any) -> None:
    """Every test starts at 08:00 UTC (16:00 in Beijing): a need served within hours stays on the day it came,
    whenever the suite runs."""
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


@pytest.fixture
def volunteer(deps: Any) -> Any:
    def _make(n: int, **extra: Any) -> str:
        body = {
            "name": f"李志愿{n}",
            "phone": f"+86138{n:08d}",
            "skills": ["general", "driving"],
            "location": HERE,
            "capacity": 3,
            "on_duty": True,
            "channels": [],
            "locale": "zh",
            "team": "pioneer",
            **extra,
        }
        return volunteers.register_volunteer(deps=deps, volunteer_in=body).id

    return _make


def submit(deps: Any, **extra: Any) -> Any:
    body = {"kind": "errand_shopping", "location": HERE, "priority": "normal", "grid": "g1", **extra}
    return needs.submit_need(deps=deps, need_in=body, principal=DISPATCHER)


def as_volunteer(volunteer_id: str) -> Principal:
    return Principal(role=Role.VOLUNTEER, token_id=f"tok_{volunteer_id}", volunteer_id=volunteer_id)


def serve(deps: Any, need: Any, *, offer_after: float, accept_after: float, done_after: float) -> str:
    """Offer, accept and finish a need, the clock moving between steps; the volunteer who served it."""
    deps.clock.advance(offer_after)
    [offer_id] = dispatch.match_need(deps=deps, need_id=need.id).offered
    offer = deps.store.offers.get(offer_id)
    deps.clock.advance(accept_after)
    offers.accept_offer(deps=deps, offer_id=offer_id, principal=as_volunteer(offer.volunteer_id))
    deps.clock.advance(done_after)
    needs.report_progress(
        deps=deps, need_id=need.id, status=NeedStatus.DONE, note=None, principal=as_volunteer(offer.volunteer_id)
    )
    return offer.volunteer_id


def today(deps: Any) -> date:
    return clock.local_date(deps.clock.now(), deps.settings.timezone)


def summary(deps: Any, group_by: ReportGroup | None = None, **kw: Any) -> reports.Report:
    return reports.summary(
        deps=deps, principal=DISPATCHER, date_from=today(deps), date_to=today(deps), group_by=group_by, **kw
    )


def test_a_need_served_and_rated_counts_once_in_every_figure(deps: Any, volunteer: Any) -> None:
    deps.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    served_by = volunteer(1)
    need = submit(deps)
    serve(deps, need, offer_after=60, accept_after=240, done_after=3600)
    needs.give_feedback(deps=deps, code=need.tracking_code, rating=5, comment="谢谢", fixed=True)

    totals = summary(deps).totals

    assert totals["received"] == 1
    assert totals["resolved"] == 1
    assert totals["resolution_rate"] == 1.0
    assert (totals["on_time"], totals["on_time_rate"]) == (1, 1.0)
    assert (totals["rated"], totals["satisfaction"], totals["mean_rating"]) == (1, 1.0, 5.0)
    assert (totals["reopened"], totals["escalated"], totals["deferred"]) == (0, 0, 0)
    for name, seconds in [("first_offer", 60), ("acceptance", 300), ("done", 3900)]:
        times = totals[f"seconds_to_{name}"]
        assert times["count"] == 1
        assert 1 / RESOLUTION <= times["median"] / seconds <= RESOLUTION
        assert times["p90"] == times["median"]
    assert totals["service_hours"] == 1.0
    assert totals["tasks"] == 1
    [row] = summary(deps, ReportGroup.VOLUNTEER).groups
    assert (row["key"], row["label"], row["service_hours"], row["tasks"]) == (served_by, "李志愿1", 1.0, 1)
    assert row["received"] is None


def test_the_scripts_bucket_durations_as_the_python_function_does(deps: Any, volunteer: Any) -> None:
    volunteer(1)
    need = submit(deps)
    serve(deps, need, offer_after=61.5, accept_after=10, done_after=10)

    fields = figure_counts(deps.store.rollups.read(today(deps), today(deps))[0].figures)

    assert fields[f"g1|errand_shopping|to_offer:{duration_bucket(61.5)}"] == 1


def test_done_after_the_committed_deadline_is_not_on_time(deps: Any, volunteer: Any) -> None:
    volunteer(1)
    need = submit(deps, deadline=deps.clock.now() + timedelta(hours=1))
    serve(deps, need, offer_after=10, accept_after=10, done_after=7200)

    totals = summary(deps).totals

    assert (totals["resolved"], totals["on_time"], totals["on_time_rate"]) == (1, 0, 0.0)


def test_reopening_a_rated_need_takes_back_its_resolution_and_rating(deps: Any, volunteer: Any) -> None:
    volunteer(1)
    need = submit(deps)
    serve(deps, need, offer_after=10, accept_after=10, done_after=10)
    needs.give_feedback(deps=deps, code=need.tracking_code, rating=2, comment=None, fixed=True)
    assert summary(deps).totals["rated"] == 1

    needs.give_feedback(deps=deps, code=need.tracking_code, rating=2, comment=None, fixed=False)

    totals = summary(deps).totals
    assert (totals["received"], totals["resolved"], totals["reopened"]) == (1, 0, 1)
    assert (totals["rated"], totals["satisfaction"], totals["mean_rating"]) == (0, None, None)
    assert (totals["on_time"], totals["seconds_to_done"]["count"]) == (0, 1)  # the first time it was done stays


def test_served_again_after_reopening_it_counts_resolved_once_and_the_second_service_too(
    deps: Any, volunteer: Any
) -> None:
    volunteer(1)
    volunteer(2)
    need = submit(deps)
    serve(deps, need, offer_after=10, accept_after=10, done_after=1800)
    needs.reopen_need(deps=deps, need_id=need.id, reason="still leaking", actor="dispatcher:x")
    serve(deps, need, offer_after=10, accept_after=10, done_after=1800)
    needs.close_need(deps=deps, need_id=need.id, actor="system", rating=4, comment=None)

    totals = summary(deps).totals

    assert (totals["received"], totals["resolved"], totals["reopened"], totals["rated"]) == (1, 1, 1, 1)
    assert totals["satisfaction"] == 1.0
    assert (totals["tasks"], totals["service_hours"]) == (2, 1.0)


def test_escalated_deferred_and_reopened_count_needs_not_times(deps: Any) -> None:
    need = submit(deps, kind="water_delivery")  # nobody with a tanker: escalated
    dispatch.match_need(deps=deps, need_id=need.id)
    needs.defer_need(deps=deps, need_id=need.id, reason="no truck", principal=DISPATCHER)
    needs.reopen_need(deps=deps, need_id=need.id, reason=None, actor="dispatcher:x")
    dispatch.match_need(deps=deps, need_id=need.id)
    needs.defer_need(deps=deps, need_id=need.id, reason="still no truck", principal=DISPATCHER)
    needs.reopen_need(deps=deps, need_id=need.id, reason=None, actor="dispatcher:x")

    totals = summary(deps).totals

    assert (totals["received"], totals["escalated"], totals["deferred"], totals["reopened"]) == (1, 1, 1, 1)
    assert (totals["resolved"], totals["resolution_rate"]) == (0, 0.0)


def test_cancelled_needs_are_received_but_not_resolved(deps: Any) -> None:
    need = submit(deps)
    needs.cancel_need(deps=deps, need_id=need.id, reason="duplicate", principal=DISPATCHER)

    totals = summary(deps).totals

    assert (totals["received"], totals["resolved"]) == (1, 0)


def test_drill_needs_are_never_counted(deps: Any, volunteer: Any) -> None:
    volunteer(1, drill=True)
    need = submit(deps, drill=True)
    serve(deps, need, offer_after=10, accept_after=10, done_after=10)
    needs.close_need(deps=deps, need_id=need.id, actor="system", rating=5, comment=None)

    totals = summary(deps, ReportGroup.VOLUNTEER)

    assert (totals.totals["received"], totals.totals["resolved"], totals.totals["tasks"]) == (0, 0, 0)
    assert totals.groups == []
    assert not [k for k in deps.redis.keys("*rollup*")]


def test_groups_by_grid_kind_week_and_team(deps: Any, volunteer: Any) -> None:
    volunteer(1, team="pioneer")
    volunteer(2, team="youth")
    for grid, kind in [("g1", "errand_shopping"), ("g1", "transport"), ("g2", "errand_shopping"), (None, "transport")]:
        need = submit(deps, grid=grid, kind=kind)
        serve(deps, need, offer_after=10, accept_after=10, done_after=900)

    by_grid = {r["key"]: r["received"] for r in summary(deps, ReportGroup.GRID).groups}
    by_kind = {r["key"]: (r["label"], r["received"]) for r in summary(deps, ReportGroup.KIND, locale="zh").groups}
    by_week = summary(deps, ReportGroup.WEEK).groups
    by_team = {r["key"]: r["tasks"] for r in summary(deps, ReportGroup.TEAM).groups}

    assert by_grid == {"g1": 2, "g2": 1, None: 1}
    assert list(by_grid) == ["g1", "g2", None]
    assert by_kind == {"errand_shopping": ("代购", 2), "transport": ("接送", 2)}
    assert [(r["key"], r["received"]) for r in by_week] == [(week_of(today(deps)), 4)]
    assert sum(by_team.values()) == 4
    assert set(by_team) <= {"pioneer", "youth"}


def test_a_need_counts_on_its_local_day_in_the_configured_time_zone(
    settings: Settings, connection: Any, clock: Any
) -> None:
    deps = bootstrap(Settings(**{**settings.__dict__, "timezone": "Asia/Shanghai"}), connection=connection, clock=clock)
    clock.set(datetime(2026, 11, 29, 17, 0, tzinfo=UTC))  # 01:00 on the 30th in Shanghai
    submit(deps)

    on = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 11, 30), date_to=date(2026, 11, 30))
    before = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 11, 29), date_to=date(2026, 11, 29))

    assert (on.totals["received"], before.totals["received"]) == (1, 0)
    assert on.timezone == "Asia/Shanghai"


def test_a_long_span_reads_whole_months_weeks_and_edge_days_alike(deps: Any) -> None:
    for day in range(20):
        deps.clock.set(datetime(2026, 11, 20, 12, tzinfo=UTC) + timedelta(days=day))
        submit(deps)
    year = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 1, 1), date_to=date(2026, 12, 31))
    november = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 11, 1), date_to=date(2026, 11, 30))
    assert (year.totals["received"], november.totals["received"]) == (20, 11)

    whole = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 11, 20), date_to=date(2026, 12, 9))
    middle = reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 11, 22), date_to=date(2026, 12, 8))
    weeks = reports.summary(
        deps=deps,
        principal=DISPATCHER,
        date_from=date(2026, 11, 20),
        date_to=date(2026, 12, 9),
        group_by=ReportGroup.WEEK,
    )

    assert whole.totals["received"] == 20
    assert middle.totals["received"] == 17
    assert [(r["key"], r["received"]) for r in weeks.groups] == [
        ("2026-W47", 3),
        ("2026-W48", 7),
        ("2026-W49", 7),
        ("2026-W50", 3),
    ]


def test_visits_are_counted_by_attention_level_and_status(deps: Any) -> None:
    day = today(deps)
    for level, status in [("red", "due"), ("red", "due"), ("red", "done"), ("green", "overdue")]:
        deps.store.rollups.count_visit(day=day, grid="g1", attention_level=level, status=status)
    pipe = deps.redis.pipeline(transaction=True)
    deps.store.rollups.count_visit(day=day, grid="g2", attention_level="orange", status="due", pipeline=pipe)
    pipe.execute()

    report = summary(deps, ReportGroup.GRID)

    assert report.totals["visits"]["red"] == {"due": 2, "done": 1, "overdue": 0}
    assert report.totals["visits"]["green"] == {"due": 0, "done": 0, "overdue": 1}
    assert {r["key"]: r["visits"]["orange"]["due"] for r in report.groups} == {"g1": 0, "g2": 1}
    with pytest.raises(ValueError, match="attention_level"):
        deps.store.rollups.count_visit(day=day, grid="g1", attention_level="blue", status="due")


def test_a_span_ending_before_it_starts_or_over_three_years_is_refused(deps: Any) -> None:
    with pytest.raises(InvalidInput) as backwards:
        reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2026, 2, 1), date_to=date(2026, 1, 1))
    with pytest.raises(InvalidInput):
        reports.summary(deps=deps, principal=DISPATCHER, date_from=date(2020, 1, 1), date_to=date(2026, 1, 1))

    assert backwards.value.errors == {"query": {"to": ["Must not be before from."]}}


def test_without_dates_a_report_covers_the_last_thirty_days(deps: Any) -> None:
    report = reports.summary(deps=deps, principal=DISPATCHER)

    assert report.date_to == today(deps)
    assert (report.date_to - report.date_from).days == 29


def test_only_dispatchers_and_ops_read_reports(deps: Any) -> None:
    reports.summary(deps=deps, principal=Principal(role=Role.OPS, token_id="t"))
    for role in (Role.INTAKE, Role.VOLUNTEER):
        with pytest.raises(Forbidden):
            reports.summary(deps=deps, principal=Principal(role=role, token_id="t", volunteer_id="v"))


def test_csv_has_a_bom_a_header_a_line_per_group_and_a_total(deps: Any, volunteer: Any) -> None:
    volunteer(1)
    serve(deps, submit(deps), offer_after=10, accept_after=10, done_after=10)

    text = reports.to_csv(summary(deps, ReportGroup.KIND, locale="zh"), locale="zh")

    assert text.startswith("\ufeff")
    lines = text[1:].splitlines()
    assert lines[0].startswith("分组,名称,受理数,办结数,办结率")
    assert lines[1].startswith("errand_shopping,代购,1,1,1.0")
    assert lines[2].startswith("合计,合计,1,1,1.0")


def test_the_table_has_the_csvs_columns_with_numbers_in_the_units_their_headings_name(
    deps: Any, volunteer: Any
) -> None:
    volunteer(1)
    serve(deps, submit(deps), offer_after=10, accept_after=10, done_after=7200)
    report = summary(deps, ReportGroup.GRID)

    table = reports.to_table(report, locale="en").splitlines()
    csv_lines = list(csv.reader(io.StringIO(reports.to_csv(report, locale="en")[1:])))

    header, total = (re.split(r"\s{2,}", line.strip()) for line in (table[2], table[-1]))
    assert header == ["name", *csv_lines[0][2:]], "the CSV's columns after its group"
    assert "to done, median (s)" in header and "visits red due" in header
    cells = dict(zip(header, total, strict=True))
    figures = dict(zip(csv_lines[0], csv_lines[-1], strict=True))
    assert cells["name"] == "total"
    assert cells["resolution rate"] == "100.0%"
    assert cells["to done, median (s)"] == f"{float(figures['to done, median (s)']):.0f}"  # 7220 s, from its bucket
    assert float(cells["to done, median (s)"]) == pytest.approx(7220, rel=0.2)
    assert cells["to first offer, median (s)"] == figures["to first offer, median (s)"].removesuffix(".0")
    for name in header[1:]:
        if not name.endswith("rate") and name != "satisfaction":
            assert cells[name] == "-" or float(cells[name]) == pytest.approx(float(figures[name]), abs=0.5), name


def test_a_retried_auto_close_counts_the_need_once(deps: Any, volunteer: Any) -> None:
    volunteer(1)
    need = submit(deps)
    serve(deps, need, offer_after=10, accept_after=10, done_after=10)
    received_on = today(deps)
    deps.clock.advance(deps.settings.auto_close_seconds + 1)

    dispatch.auto_close(deps=deps, need_id=need.id)
    dispatch.auto_close(deps=deps, need_id=need.id)

    totals = reports.summary(deps=deps, principal=DISPATCHER, date_from=received_on).totals
    assert (totals["received"], totals["resolved"], totals["rated"]) == (1, 1, 0)


def test_a_report_from_a_day_after_today_names_from(deps: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        reports.summary(deps=deps, principal=DISPATCHER, date_from=today(deps) + timedelta(days=1))

    assert list(refused.value.errors["query"]) == ["from"]


@pytest.mark.parametrize("field", ["from", "to"])
def test_days_outside_this_century_are_refused(deps: Any, field: str) -> None:
    span = {"date_from": date(1999, 12, 31)} if field == "from" else {"date_to": date(2100, 1, 1)}
    with pytest.raises(InvalidInput) as refused:
        reports.summary(deps=deps, principal=DISPATCHER, **span)

    assert list(refused.value.errors["query"]) == [field]
