"""Recurring visits of the care register's households: planning, making them due, outcomes, overdue checks.

Each household has one open visit at a time. It is planned ahead on the household's own rhythm: every
`cadence` days of its attention level (AIDLINE_VISIT_CADENCE), on a day of the cycle and at a time between
09:00 and 17:00 local time (AIDLINE_TIMEZONE) that both come from a hash of the household's id, so a grid's
visits are spread over the period instead of all falling due at once. The visit's period runs from its due
time for one cadence.

A planned visit becomes a `companionship_visit` need only when it falls due (the sweeper does it), with the
end of its period as the need's deadline: a need is offered as soon as it is recorded and its offers are
answered in minutes, so a need recorded weeks ahead would be offered weeks ahead. From then on it is matched
like any need, preferring the household's previous visitor (then its preferred volunteers) when nearly as
near as the nearest. The visit is closed with an outcome (all_well, or needs_help with a kind, which records a
linked need); a visit not closed by the end of its period is overdue and the grid's captain is told. Closing
a visit, done or overdue, plans the next one in the same atomic step (store/lua/care.lua).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service import access, clock, lifecycle, needs, paging
from service.backlog import NOTIFY, announce, enqueue_drain
from service.deps import Deps
from service.exceptions import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from service.ids import new_id
from service.lifecycle import Action
from service.models import (
    AttentionLevel,
    Event,
    EventType,
    Household,
    Need,
    NeedKind,
    NeedStatus,
    OfferStatus,
    Principal,
    Priority,
    Role,
    Topic,
    Visit,
    VisitOutcome,
    VisitStatus,
)
from service.store import Refusal, Refused, VisitPlan

log = logging.getLogger("aidline.visits")

VISIT_HOURS = (9, 17)
"""Visits fall due between these hours, local time (AIDLINE_TIMEZONE)."""

ORIGIN = date(2024, 1, 1)
"""Day 0 of every household's rhythm (a Monday)."""

PLANNER = Principal(role=Role.DISPATCHER, token_id="visits")
"""Who records the needs of visits: the visit planner, on behalf of the dispatchers."""

VISIT_PRIORITY = {
    AttentionLevel.RED: Priority.NORMAL,
    AttentionLevel.ORANGE: Priority.NORMAL,
    AttentionLevel.YELLOW: Priority.LOW,
    AttentionLevel.GREEN: Priority.LOW,
}
"""A visit need's priority by level: never urgent, so a routine visit never takes a volunteer from trouble."""

OWED_LOCK_SECONDS = 60
"""Who writes an owed need holds it this long; a writer that died leaves it to the next sweep after that."""

MAX_LATE_DAYS = 1
"""A visit need whose period has already ended when it is written (the sweeper was down) gets this long."""


# ---- the plan: pure ---------------------------------------------------------------------------------------


def cadence_days(cadence: dict[str, int], level: AttentionLevel) -> int:
    """Days between visits at this attention level."""
    return int(cadence[level.value])


def spread(household_id: str, cadence: int) -> tuple[int, int]:
    """The household's day of the cycle (0 to cadence - 1) and minute of the day (within VISIT_HOURS): from a
    hash of its id, so visits are spread evenly and a household keeps its rhythm."""
    digest = hashlib.sha256(household_id.encode()).digest()
    start, end = VISIT_HOURS
    day = int.from_bytes(digest[:8], "big") % cadence
    minute = start * 60 + int.from_bytes(digest[8:16], "big") % ((end - start) * 60)
    return day, minute


def next_due(*, household_id: str, cadence: int, after: datetime, timezone: str = "UTC") -> datetime:
    """The household's first visit time strictly after `after` (UTC): every `cadence` days from its day of the
    cycle, at its minute of the day, local time."""
    zone = ZoneInfo(timezone)
    day, minute = spread(household_id, cadence)
    local = after.astimezone(zone)
    cycle = ((local.date() - ORIGIN).days - day) // cadence
    while True:
        slot_day = ORIGIN + timedelta(days=day + cycle * cadence)
        slot = datetime.combine(slot_day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)
        if slot > after:
            return slot
        cycle += 1


def period_end(due: datetime, cadence: int) -> datetime:
    """A visit is to be done within one cadence of falling due."""
    return due + timedelta(days=cadence)


def plan(*, household_id: str, cadence: int, after: datetime, timezone: str, visit_id: str | None = None) -> VisitPlan:
    """The next visit of the household after `after`."""
    due = next_due(household_id=household_id, cadence=cadence, after=after, timezone=timezone)
    end = period_end(due, cadence)
    return VisitPlan(
        visit_id=visit_id or new_id("vis"),
        due_iso=clock.iso(due),
        due_epoch=clock.epoch(due),
        period_end_iso=clock.iso(end),
        period_end_epoch=clock.epoch(end),
    )


def plan_after_close(*, household_id: str, cadence: int, due_at: datetime, now: datetime, timezone: str) -> VisitPlan:
    """The visit after one that was due at `due_at` and is closed now: the next of the rhythm; but at most one
    cadence back from now, so a visit closed long after (the sweeper was down) is followed by one visit due at
    once, not by every visit missed meanwhile."""
    after = max(due_at, now - timedelta(days=cadence))
    return plan(household_id=household_id, cadence=cadence, after=after, timezone=timezone)


def plan_for(deps: Deps, household_id: str, level: AttentionLevel, *, after: datetime) -> VisitPlan:
    """The next visit of the household at this level after `after`, by the configured cadence and time zone."""
    return plan(
        household_id=household_id,
        cadence=cadence_days(deps.settings.visit_cadence, level),
        after=after,
        timezone=deps.settings.timezone,
    )


# ---- transitions --------------------------------------------------------------------------------------------


def visit_changed(
    deps: Deps, visit_id: str, *, level: AttentionLevel | str, was: VisitStatus | None, now: VisitStatus
) -> None:
    """Every change of a visit's status passes here once, after it is stored (planned, due, done, overdue,
    cancelled): the one place that counts visits per attention level beyond /metrics (those counters are
    kept by care.lua in the same step)."""
    log.info(
        "visit %s: %s -> %s",
        visit_id,
        was.value if was else "-",
        now.value,
        extra={"visit_id": visit_id, "attention_level": str(level)},
    )


def load_visit(*, deps: Deps, visit_id: str) -> Visit:
    visit = deps.store.visits.get(visit_id)
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    return visit


def household_visits(*, deps: Deps, household_id: str, principal: Principal) -> list[Visit]:
    """A household's visits, latest due first: the planned one, the one due, and past ones."""
    household = deps.store.households.get(household_id)
    if household is None or not access.can_read_household(principal, household):
        raise NotFound(f"household {household_id} not found")
    return [v for v in deps.store.visits.get_many(deps.store.visits.of_household(household_id)) if v is not None]


def list_visits(
    *, deps: Deps, principal: Principal, status: VisitStatus, limit: int = 50, cursor: str | None = None
) -> tuple[list[Visit], str | None]:
    """Visits of one status, newest planned first, of the households this principal may read (a captain's: of
    their grids only)."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS, Role.CAPTAIN)
    households: dict[str, Household | None] = {}

    def keep(visit: Visit) -> bool:
        if visit.household_id not in households:
            households[visit.household_id] = deps.store.households.get(visit.household_id)
        household = households[visit.household_id]
        # a deleted household's visits are cancelled; those still listed are read as ops would (not by a
        # captain: they have no grid any more)
        if household is None:
            return principal.role is not Role.CAPTAIN
        return access.can_read_household(principal, household)

    return paging.filtered_page(
        ids_before=lambda before, count: deps.store.visits.ids_page(status=status, before=before, limit=count),
        get_many=deps.store.visits.get_many,
        keep=keep,
        nearby=None,
        cursor=cursor,
        limit=limit,
    )


def _close(
    deps: Deps,
    visit: Visit,
    *,
    to: VisitStatus,
    outcome: str = "",
    help_kind: str = "",
    note: str = "",
    visitor_id: str = "",
    help_need_id: str = "",
) -> VisitStatus:
    """Close a visit and plan the household's next one in one step; planned again if its level changed meanwhile.
    Returns the status before."""
    moment = deps.clock.now()
    for _ in range(5):
        household = deps.store.households.get(visit.household_id)
        level = household.attention_level if household else visit.attention_level
        cadence = cadence_days(deps.settings.visit_cadence, level)
        following = plan_after_close(
            household_id=visit.household_id,
            cadence=cadence,
            due_at=clock.parse(visit.due_at),
            now=moment,
            timezone=deps.settings.timezone,
        )
        try:
            planned, was, arm_notify = deps.store.visits.close(
                visit.id,
                to=to,
                now_iso=clock.iso(moment),
                now_epoch=clock.epoch(moment),
                level=level.value,
                plan=following,
                outcome=outcome,
                help_kind=help_kind,
                note=note,
                visitor_id=visitor_id,
                help_need_id=help_need_id,
            )
        except Refused as refused:
            if refused.reason is Refusal.BUSY:
                continue  # the level changed between reading it and closing: plan at the new level
            if refused.reason is Refusal.NO_VISIT:
                raise NotFound(f"visit {visit.id} not found") from None
            if refused.reason is Refusal.NOT_DUE:
                raise Conflict(
                    "the visit's period has not ended", errors={"status": ["current status is due"]}
                ) from None
            raise Conflict(
                f"the visit is {refused.detail}: an outcome is recorded for a due or overdue visit",
                errors={"status": [f"current status is {refused.detail}"]},
            ) from None
        if arm_notify:
            enqueue_drain(deps, NOTIFY)
        visit_changed(deps, visit.id, level=visit.attention_level, was=was, now=to)
        if planned:
            visit_changed(deps, planned, level=level, was=None, now=VisitStatus.PLANNED)
        return was
    raise Conflict("the household's attention level keeps changing; try again")


def record_outcome(
    *,
    deps: Deps,
    visit_id: str,
    outcome: VisitOutcome,
    kind: NeedKind | None,
    note: str | None,
    principal: Principal,
) -> Visit:
    """Close a due (or overdue) visit with its outcome, by the volunteer who accepted its need (a captain too),
    a captain of the household's grid, or a dispatcher.

    all_well: done. needs_help (with the kind of help): done, and a need of that kind is recorded for the
    household, carrying household_id and visit_id. The visit need is done (or, never taken up, cancelled).
    """
    visit = load_visit(deps=deps, visit_id=visit_id)
    household = deps.store.households.get(visit.household_id)
    need = deps.store.needs.get(visit.need_id) if visit.need_id else None
    offers = deps.store.offers.of_need(need.id) if need else []
    visitors = needs.volunteers_on(offers, OfferStatus.ACCEPTED, OfferStatus.COMPLETED)
    if not access.can_record_visit(principal, household, visitors=visitors):
        if principal.role in (Role.VOLUNTEER, Role.CAPTAIN) or (
            household is not None and access.can_read_household(principal, household)
        ):
            raise Forbidden(
                "a visit's outcome is recorded by the volunteer who made it, a captain of the household's grid, "
                "or a dispatcher"
            )
        raise NotFound(f"visit {visit_id} not found")
    if outcome is VisitOutcome.NEEDS_HELP and kind is None:
        raise InvalidInput(
            "kind is required when the outcome is needs_help: the kind of help the household needs",
            errors={"json": {"kind": ["Required when outcome is needs_help."]}},
        )
    if visit.status not in (VisitStatus.DUE, VisitStatus.OVERDUE):
        raise Conflict(
            f"the visit is {visit.status.value}: an outcome is recorded for a due or overdue visit",
            errors={"status": [f"current status is {visit.status.value}"]},
        )
    visitor = principal.volunteer_id if principal.volunteer_id in visitors else None
    if visitor is None and visitors:
        visitor = sorted(visitors)[0]
    help_need_id = new_id("need") if outcome is VisitOutcome.NEEDS_HELP and household is not None else ""
    _close(
        deps,
        visit,
        to=VisitStatus.DONE,
        outcome=outcome.value,
        help_kind=kind.value if kind and outcome is VisitOutcome.NEEDS_HELP else "",
        note=note or "",
        visitor_id=visitor or "",
        help_need_id=help_need_id,
    )
    if need is not None:
        detail: dict[str, Any] = {"visit_id": visit.id, "outcome": outcome.value}
        if kind and outcome is VisitOutcome.NEEDS_HELP:
            detail.update(kind=kind.value, need_id=help_need_id)
        if note:
            detail["note"] = note
        moment = clock.iso(deps.clock.now())
        deps.store.needs.add_event(
            need.id, Event(at=moment, type=EventType.VISIT_OUTCOME, actor=principal.actor, detail=detail)
        )
        _finish_visit_need(deps, need.id, principal=principal, visitors=visitors)
    if help_need_id:
        write_owed(deps=deps, member=f"help:{visit.id}")
    return load_visit(deps=deps, visit_id=visit_id)


def _finish_visit_need(deps: Deps, need_id: str, *, principal: Principal, visitors: set[str]) -> None:
    """The visit need once its outcome is recorded: done when someone had taken it, else cancelled."""
    need = deps.store.needs.get(need_id)
    if need is None:
        return
    try:
        if need.status in lifecycle.allowed_from(Action.DONE) and need.status is not NeedStatus.ESCALATED:
            own = principal.role is Role.DISPATCHER or (
                principal.volunteer_id in visitors and access.acts_as_volunteer(principal, principal.volunteer_id)
            )
            needs.report_progress(
                deps=deps, need_id=need_id, status=NeedStatus.DONE, note=None, principal=principal if own else PLANNER
            )
        elif need.status in lifecycle.allowed_from(Action.CANCEL):
            needs.change_status(
                deps=deps,
                need_id=need_id,
                action=Action.CANCEL,
                actor=principal.actor,
                event_type=EventType.CANCELLED,
                detail={"reason": "the visit's outcome was recorded without it"},
                release_offers=True,
                fields={"status_reason": "the visit's outcome was recorded without it"},
            )
            for volunteer_id in sorted(needs.volunteers_on(deps.store.offers.of_need(need_id), OfferStatus.PENDING)):
                announce(deps, Topic.CANCELLED, need_id, volunteer_id=volunteer_id)
    except InvalidTransition:
        pass  # it moved on meanwhile (done, cancelled): nothing more to do


# ---- the needs visits owe -------------------------------------------------------------------------------------


def _household_need(deps: Deps, household: Household, visit: Visit, need_in: dict[str, Any], need_id: str) -> Need:
    moment = deps.clock.now()
    need_in = {
        "location": {"lat": household.location.lat, "lon": household.location.lon},
        "address": household.address,
        "requester": {"name": household.contact.name, "phone": household.contact.phone},
        "grid": household.grid,
        **need_in,
    }
    need = needs.build_need(deps=deps, need_in=need_in, principal=PLANNER, locate=deps.geocoder.locate, moment=moment)
    need.id = need_id
    need.household_id = household.id
    need.visit_id = visit.id
    need.favoured = household.favoured
    return need


def write_owed(*, deps: Deps, member: str, held: bool = False) -> bool:
    """Write a need a visit step promised ('visit:<id>': the visit's need; 'help:<id>': its needs_help need),
    once: True when this call wrote it. `held`: the step that promised it took its lock already."""
    taken = held or deps.store.visits.take_owed(
        member, now_epoch=clock.epoch(deps.clock.now()), lock_seconds=OWED_LOCK_SECONDS
    )
    if not taken:
        return False  # another process is writing it (or died doing so: the next sweep after the lock does it)
    what, _, visit_id = member.partition(":")
    visit = deps.store.visits.get(visit_id)
    household = deps.store.households.get(visit.household_id) if visit else None
    need_id = (visit.need_id if what == "visit" else visit.help_need_id) if visit else None
    written = False
    if visit is not None and household is not None and need_id and deps.store.needs.get(need_id) is None:
        moment = deps.clock.now()
        if what == "visit":
            deadline = max(clock.parse(visit.period_end), moment + timedelta(days=MAX_LATE_DAYS))
            need_in: dict[str, Any] = {
                "kind": NeedKind.COMPANIONSHIP_VISIT.value,
                "priority": VISIT_PRIORITY[visit.attention_level].value,
                "deadline": deadline,
            }
        else:
            need_in = {
                "kind": (visit.help_kind or NeedKind.OTHER).value,
                "vulnerability": [v.value for v in household.vulnerability],
                "description": visit.note,
            }
        need = _household_need(deps, household, visit, need_in, need_id)
        needs.record_needs(deps=deps, needs=[need], principal=PLANNER)
        written = True
    deps.store.visits.written(member)
    return written


# ---- the sweep ------------------------------------------------------------------------------------------------


def make_due(*, deps: Deps) -> int:
    """Planned visits whose time has come become due, each with its companionship visit need."""
    moment = deps.clock.now()
    made = 0
    for visit in deps.store.visits.get_many(deps.store.visits.due_ids(now_epoch=clock.epoch(moment))):
        if visit is None:
            continue
        try:
            deps.store.visits.make_due(
                visit.id,
                need_id=new_id("need"),
                now_iso=clock.iso(moment),
                now_epoch=clock.epoch(moment),
                lock_seconds=OWED_LOCK_SECONDS,
            )
        except Refused:
            continue  # made due by another sweep, cancelled, or replanned later meanwhile
        visit_changed(deps, visit.id, level=visit.attention_level, was=VisitStatus.PLANNED, now=VisitStatus.DUE)
        write_owed(deps=deps, member=f"visit:{visit.id}", held=True)
        made += 1
    return made


def check_overdue(*, deps: Deps) -> int:
    """Due visits past the end of their period: done when their need was done (an outcome never came), else
    overdue (their grid's captain is told); either way the next visit is planned."""
    moment = deps.clock.now()
    overdue = 0
    for visit in deps.store.visits.get_many(deps.store.visits.past_period_ids(now_epoch=clock.epoch(moment))):
        if visit is None or visit.status is not VisitStatus.DUE:
            continue
        need = deps.store.needs.get(visit.need_id) if visit.need_id else None
        try:
            if need is not None and need.status in (NeedStatus.DONE, NeedStatus.CLOSED):
                visitors = needs.volunteers_on(deps.store.offers.of_need(need.id), OfferStatus.COMPLETED)
                _close(deps, visit, to=VisitStatus.DONE, visitor_id=sorted(visitors)[0] if visitors else "")
            else:
                _close(deps, visit, to=VisitStatus.OVERDUE)
                overdue += 1
        except (Conflict, NotFound):
            continue  # closed by someone else meanwhile
    return overdue


def sweep_visits(*, deps: Deps) -> dict[str, int]:
    """Mark visits past their period overdue (planning the next), make visits due, write the needs earlier steps
    owe: idempotent, and a crash at any point leaves what is left to the next sweep (every step is recorded in
    Redis before the next)."""
    overdue = check_overdue(deps=deps)
    made = make_due(deps=deps)
    written = sum(write_owed(deps=deps, member=member) for member in deps.store.visits.owed())
    return {"visits_due": made, "visit_needs_written": written, "visits_overdue": overdue}
