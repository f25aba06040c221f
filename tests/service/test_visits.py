"""Recurring visits: the plan (pure: cadence, spread, time of day, time zones), then what the sweep does with
it on a real Redis (due visits become needs, overdue ones are told, the next is planned), level changes
replanning, and a sweep interrupted half-way repaired by the next."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service import clock as clocks
from service import households, reports, visits
from service.config import Settings
from service.exceptions import Conflict
from service.models import NeedKind, NeedStatus, Principal, ReportGroup, Role, Topic, VisitOutcome, VisitStatus

MONDAY_MIDNIGHT = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
DISPATCHER = Principal(role=Role.DISPATCHER, token_id="tok_test")


# ---- the plan: pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cadence", [7, 30, 91, 182])
def test_the_next_visit_is_within_one_cadence_and_keeps_the_household_rhythm(cadence: int) -> None:
    after = MONDAY_MIDNIGHT
    first = visits.next_due(household_id="hh_a", cadence=cadence, after=after)
    second = visits.next_due(household_id="hh_a", cadence=cadence, after=first)

    assert after < first <= after + timedelta(days=cadence)
    assert second - first == timedelta(days=cadence)
    assert visits.next_due(household_id="hh_a", cadence=cadence, after=first - timedelta(seconds=1)) == first


def test_visits_are_spread_over_the_period_and_the_working_day_not_all_on_monday_midnight() -> None:
    dues = [
        visits.next_due(household_id=f"hh_{i}", cadence=7, after=MONDAY_MIDNIGHT - timedelta(seconds=1))
        for i in range(700)
    ]

    by_day = Counter(d.date() for d in dues)
    assert len(by_day) == 7
    assert all(60 <= n <= 140 for n in by_day.values()), by_day
    assert all(9 <= d.hour < 17 for d in dues), "between 09:00 and 17:00"
    assert len({(d.hour, d.minute) for d in dues}) > 200, "at many times of the day"


def test_times_of_day_are_local_in_the_configured_time_zone() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    for i in range(50):
        due = visits.next_due(household_id=f"hh_{i}", cadence=30, after=MONDAY_MIDNIGHT, timezone="Asia/Shanghai")
        assert due.tzinfo is UTC
        assert 9 <= due.astimezone(zone).hour < 17


def test_a_visit_closed_long_after_is_followed_by_one_visit_due_at_once_not_by_every_one_missed() -> None:
    due = visits.next_due(household_id="hh_a", cadence=7, after=MONDAY_MIDNIGHT)
    on_time = visits.plan_after_close(
        household_id="hh_a", cadence=7, due_at=due, now=due + timedelta(days=2), timezone="UTC"
    )
    months_later = due + timedelta(days=60)
    late = visits.plan_after_close(household_id="hh_a", cadence=7, due_at=due, now=months_later, timezone="UTC")

    assert clocks.parse(on_time.due_iso) == due + timedelta(days=7)
    assert months_later - timedelta(days=7) < clocks.parse(late.due_iso) <= months_later
    assert clocks.parse(late.period_end_iso) - clocks.parse(late.due_iso) == timedelta(days=7)


def test_the_cadence_is_configurable_per_level_and_a_bad_one_stops_the_start() -> None:
    assert Settings.from_env({}).visit_cadence == {"red": 7, "orange": 30, "yellow": 91, "green": 182}
    assert Settings.from_env({"AIDLINE_VISIT_CADENCE": "red=3, green=365"}).visit_cadence == {
        "red": 3,
        "orange": 30,
        "yellow": 91,
        "green": 365,
    }
    for bad in ("purple=3", "red=0", "red=often", "red"):
        with pytest.raises(ValueError, match="AIDLINE_VISIT_CADENCE"):
            Settings.from_env({"AIDLINE_VISIT_CADENCE": bad})


# ---- on Redis ---------------------------------------------------------------------------------------------


def register(deps: Any, *, level: str = "red", phone: str = "+8613900000003", **extra: Any) -> Any:
    return households.create_household(
        deps=deps,
        household_in={
            "address": "Station 2, house 14",
            "location": {"lat": 46.34, "lon": 132.25},
            "grid": "grid-2",
            "vulnerability": ["elderly_alone"],
            "contact": {"name": "Zhang Guilan", "phone": phone},
            "attention_level": level,
            **extra,
        },
        principal=DISPATCHER,
    )


def open_visit(deps: Any, household_id: str) -> Any:
    household = deps.store.households.get(household_id)
    return deps.store.visits.get(household.open_visit)


def statuses(deps: Any, household_id: str) -> list[str]:
    return [v.status.value for v in visits.household_visits(deps=deps, household_id=household_id, principal=DISPATCHER)]


def test_a_due_visit_becomes_a_companionship_visit_need_for_its_period(deps, clock) -> None:
    household = register(deps)
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at) - timedelta(minutes=1))
    assert visits.sweep_visits(deps=deps)["visits_due"] == 0, "not before its time"

    clock.advance(60)
    report = visits.sweep_visits(deps=deps)

    assert report["visits_due"] == 1
    visit = deps.store.visits.get(visit.id)
    assert visit.status is VisitStatus.DUE
    need = deps.store.needs.get(visit.need_id)
    assert need is not None and need.kind is NeedKind.COMPANIONSHIP_VISIT
    assert (need.household_id, need.visit_id, need.grid) == (household.id, visit.id, "grid-2")
    assert need.deadline == visit.period_end
    assert need.requester.phone == "+8613900000003" and need.address == household.address
    assert not need.urgent, "a routine visit never takes a volunteer from trouble"
    assert deps.store.backlog.waiting_ids() == [need.id], "matched like any need"
    assert statuses(deps, household.id) == ["due"]
    assert visits.sweep_visits(deps=deps) == {"visits_due": 0, "visit_needs_written": 0, "visits_overdue": 0}


def test_a_visit_not_done_by_the_end_of_its_period_is_overdue_told_and_the_next_is_planned(deps, clock) -> None:
    household = register(deps)
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)
    clock.set(clocks.parse(visit.period_end) + timedelta(seconds=1))

    report = visits.sweep_visits(deps=deps)

    assert report["visits_overdue"] == 1
    assert deps.store.visits.get(visit.id).status is VisitStatus.OVERDUE
    nxt = open_visit(deps, household.id)
    assert nxt.id != visit.id
    assert nxt.status is VisitStatus.DUE, "the next period began when this one ended: due at once"
    need_id = deps.store.visits.get(visit.id).need_id
    events = [e.type.value for e in deps.store.needs.events(need_id)]
    assert "visit_overdue" in events
    told = [a for a in deps.store.backlog.peek_outbox(100) if a["topic"] == Topic.VISIT_OVERDUE.value]
    assert [a["need_id"] for a in told] == [need_id]
    assert deps.store.stats.get("visits_overdue") == 1
    assert visits.sweep_visits(deps=deps)["visits_overdue"] == 0, "told once"


def test_a_visit_whose_need_was_done_without_an_outcome_counts_as_done(deps, clock) -> None:
    household = register(deps)
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)
    need_id = deps.store.visits.get(visit.id).need_id
    deps.redis.hset(deps.store.keys.need(need_id), "status", NeedStatus.DONE.value)
    clock.set(clocks.parse(visit.period_end) + timedelta(seconds=1))

    assert visits.sweep_visits(deps=deps)["visits_overdue"] == 0

    assert deps.store.visits.get(visit.id).status is VisitStatus.DONE


def test_changing_the_level_replans_the_planned_visit_at_the_new_cadence(deps, clock) -> None:
    household = register(deps, level="green")
    green = open_visit(deps, household.id)

    households.update_household(
        deps=deps, household_id=household.id, changes={"attention_level": "red"}, principal=DISPATCHER
    )

    red = open_visit(deps, household.id)
    assert red.id != green.id and red.attention_level.value == "red"
    assert deps.store.visits.get(green.id).status is VisitStatus.CANCELLED
    assert clocks.parse(red.due_at) <= clock.now() + timedelta(days=7)
    assert clocks.parse(red.period_end) - clocks.parse(red.due_at) == timedelta(days=7)
    assert sorted(statuses(deps, household.id)) == ["cancelled", "planned"]
    households.update_household(deps=deps, household_id=household.id, changes={"notes": "x"}, principal=DISPATCHER)
    assert open_visit(deps, household.id).id == red.id, "other changes leave the plan alone"


def test_changing_the_level_of_a_household_with_a_visit_due_shortens_its_period(deps, clock) -> None:
    household = register(deps, level="green")
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)

    households.update_household(
        deps=deps, household_id=household.id, changes={"attention_level": "red"}, principal=DISPATCHER
    )

    now_due = deps.store.visits.get(visit.id)
    assert now_due.status is VisitStatus.DUE, "its need is out: it keeps going"
    assert clocks.parse(now_due.period_end) == clocks.parse(visit.due_at) + timedelta(days=7)
    assert open_visit(deps, household.id).id == visit.id


def test_an_outcome_closes_the_visit_remembers_the_visitor_and_plans_the_next(deps, clock) -> None:
    household = register(deps)
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)

    done = visits.record_outcome(
        deps=deps,
        visit_id=visit.id,
        outcome=VisitOutcome.NEEDS_HELP,
        kind=NeedKind.COAL_HAULING,
        note="Coal left on the road",
        principal=DISPATCHER,
    )

    assert (done.status, done.outcome, done.help_kind) == (
        VisitStatus.DONE,
        VisitOutcome.NEEDS_HELP,
        NeedKind.COAL_HAULING,
    )
    help_need = deps.store.needs.get(done.help_need_id)
    assert help_need is not None and help_need.kind is NeedKind.COAL_HAULING
    assert (help_need.household_id, help_need.visit_id) == (household.id, visit.id)
    assert help_need.description == "Coal left on the road"
    assert deps.store.needs.get(done.need_id).status is NeedStatus.CANCELLED, "nobody had taken it up"
    nxt = open_visit(deps, household.id)
    assert nxt.status is VisitStatus.PLANNED
    assert clocks.parse(nxt.due_at) == clocks.parse(visit.due_at) + timedelta(days=7)
    assert deps.store.visits.owed() == []


def test_a_sweep_interrupted_after_making_visits_due_is_finished_by_the_next(deps, clock, monkeypatch) -> None:
    made = [register(deps, phone=f"+86139000000{i:02d}") for i in range(3)]
    latest = max(clocks.parse(open_visit(deps, h.id).due_at) for h in made)
    clock.set(latest)
    real = visits.write_owed
    calls = []

    def crash_on_second(*, deps: Any, member: str, held: bool = False) -> bool:
        calls.append(member)
        if len(calls) == 2:
            raise SystemExit("the sweeper's process died")  # holding the lock the due step gave it
        return real(deps=deps, member=member, held=held)

    monkeypatch.setattr(visits, "write_owed", crash_on_second)
    with pytest.raises(SystemExit):
        visits.sweep_visits(deps=deps)
    monkeypatch.setattr(visits, "write_owed", real)
    clock.advance(visits.OWED_LOCK_SECONDS + 1)

    visits.sweep_visits(deps=deps)
    visits.sweep_visits(deps=deps)

    due = [open_visit(deps, h.id) for h in made]
    assert [v.status for v in due] == [VisitStatus.DUE] * 3
    need_ids = [v.need_id for v in due]
    assert all(deps.store.needs.get(n) is not None for n in need_ids), "every due visit has its need"
    assert sorted(deps.store.backlog.waiting_ids()) == sorted(need_ids), "each need once"
    assert deps.store.visits.owed() == []


def test_deleting_a_household_cancels_its_due_visit_and_its_need(deps, clock) -> None:
    household = register(deps)
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)

    households.delete_household(deps=deps, household_id=household.id, principal=DISPATCHER)

    visit = deps.store.visits.get(visit.id)
    assert visit.status is VisitStatus.CANCELLED
    assert deps.store.needs.get(visit.need_id).status is NeedStatus.CANCELLED
    assert deps.store.visits.past_period_ids(now_epoch=clocks.epoch(clock.now()) + 10**9) == []


def test_a_due_visit_given_a_longer_period_by_a_new_level_is_not_overdue(deps, clock) -> None:
    household = register(deps, level="red")
    visit = open_visit(deps, household.id)
    clock.set(clocks.parse(visit.due_at))
    visits.sweep_visits(deps=deps)
    clock.set(clocks.parse(visit.period_end) + timedelta(seconds=1))
    households.update_household(
        deps=deps, household_id=household.id, changes={"attention_level": "green"}, principal=DISPATCHER
    )

    assert visits.sweep_visits(deps=deps)["visits_overdue"] == 0
    stale = deps.store.visits.get(visit.id)
    with pytest.raises(Conflict, match="period has not ended"):
        visits._close(deps, stale, to=VisitStatus.OVERDUE)
    assert deps.store.visits.get(visit.id).status is VisitStatus.DUE


def test_visits_made_due_done_and_overdue_are_counted_in_the_reports_by_level_and_grid(deps, clock) -> None:
    red = register(deps, level="red")
    green = register(deps, level="green", phone="+8613900000004", grid="grid-3")
    first, other = open_visit(deps, red.id), open_visit(deps, green.id)
    clock.set(max(clocks.parse(first.due_at), clocks.parse(other.due_at)))
    visits.sweep_visits(deps=deps)
    visits.record_outcome(
        deps=deps, visit_id=first.id, outcome=VisitOutcome.ALL_WELL, kind=None, note=None, principal=DISPATCHER
    )
    clock.set(clocks.parse(deps.store.visits.get(other.id).period_end) + timedelta(seconds=1))
    visits.sweep_visits(deps=deps)  # the green visit is overdue; the red ones since then are due and overdue too
    moments = [clocks.parse(first.due_at), clock.now()]
    days = [clocks.local_date(m, deps.settings.timezone) for m in moments]

    report = reports.summary(
        deps=deps, principal=DISPATCHER, date_from=min(days), date_to=max(days), group_by=ReportGroup.GRID
    )

    by_grid = {row["key"]: row["visits"] for row in report.groups}
    assert by_grid["grid-3"]["green"] == {"due": 2, "done": 0, "overdue": 1}, "the next period began: due at once"
    assert by_grid["grid-2"]["red"]["done"] == 1
    assert by_grid["grid-2"]["green"] == {"due": 0, "done": 0, "overdue": 0}
    for status in ("due", "done", "overdue"):
        counted = sum(levels[status] for levels in report.totals["visits"].values())
        assert counted == deps.store.stats.get(f"visits_{status}"), status
