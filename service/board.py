"""What a dispatcher looks at: the needs that need a human now, the counts, and who could take a need.

Read-only: every change goes through the functions the API calls (needs, dispatch, offers, volunteers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service import access, clock, lifecycle
from service.deps import Deps
from service.dispatch import max_radius_km
from service.matching import distance_km
from service.models import Need, NeedStatus, Principal, Priority, Role, Volunteer
from service.needs import load_need

QUEUE_LIMIT = 200
"""Most rows the queue shows; the most pressing come first."""

WAITING = (NeedStatus.QUEUED, NeedStatus.MATCHING, NeedStatus.OFFERED)
RESOLVED = (NeedStatus.DONE, NeedStatus.CLOSED, NeedStatus.CANCELLED)
PRIORITY_ORDER = {p: i for i, p in enumerate(Priority)}


class Why(StrEnum):
    """Why a need is in the queue that needs a human, most pressing first."""

    ESCALATED = "escalated"
    OVERDUE = "overdue"
    AT_RISK = "at_risk"
    FLAGGED = "flagged"
    DEFERRED = "deferred"


WHY_ORDER = {w: i for i, w in enumerate(Why)}


@dataclass(frozen=True)
class QueueRow:
    need: Need
    why: Why
    age_seconds: float
    """Since the need was received."""


@dataclass(frozen=True)
class Pick:
    """A volunteer who could take a need now, as the assign picker shows them."""

    volunteer: Volunteer
    distance_km: float


def counts(*, deps: Deps, principal: Principal) -> dict[str, int]:
    """Needs by status."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    return deps.store.needs.count_by_status()


def needs_a_human(*, deps: Deps, principal: Principal, limit: int = QUEUE_LIMIT) -> list[QueueRow]:
    """Escalated needs (with the reason), needs past their committed deadline or at risk of missing their
    deadline while unassigned, flagged needs (a notification could not be delivered) and deferred needs:
    each once, under its most pressing reason, then by priority, then oldest first."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    store, moment = deps.store, deps.clock.now()
    ratio = deps.settings.deadline_risk_ratio
    why: dict[str, Why] = {}

    def add(ids: list[str], reason: Why) -> None:
        for need_id in ids:
            why.setdefault(need_id, reason)

    add(store.needs.ids_with_status(NeedStatus.ESCALATED, limit=limit), Why.ESCALATED)
    overdue = store.needs.overdue_ids(now_epoch=clock.epoch(moment))[:limit]
    add(overdue, Why.OVERDUE)
    waiting = [i for status in WAITING for i in store.needs.ids_with_status(status, limit=limit * 5)]
    add([n.id for n in store.needs.get_many(waiting) if n is not None and at_risk(n, moment, ratio)], Why.AT_RISK)
    add(store.needs.flagged_ids(limit=limit), Why.FLAGGED)
    add(store.needs.ids_with_status(NeedStatus.DEFERRED, limit=limit), Why.DEFERRED)
    rows = []
    for need in store.needs.get_many(list(why)):
        if need is None:
            continue
        reason = why[need.id]
        if reason is Why.OVERDUE and need.status not in lifecycle.IN_PROGRESS:
            continue
        if reason is Why.FLAGGED and need.status in RESOLVED:
            continue
        if reason is not Why.ESCALATED and need.status is NeedStatus.ESCALATED:
            reason = Why.ESCALATED
        age = (moment - clock.parse(need.created_at)).total_seconds()
        rows.append(QueueRow(need=need, why=reason, age_seconds=max(age, 0.0)))
    rows.sort(key=lambda r: (WHY_ORDER[r.why], PRIORITY_ORDER[r.need.priority], -r.age_seconds))
    return rows[:limit]


def at_risk(need: Need, moment: datetime, ratio: float) -> bool:
    """Still unassigned with `ratio` of the time to its deadline gone (as the deadline check escalates it)."""
    created, deadline = clock.parse(need.created_at), clock.parse(need.deadline)
    return moment >= created + (deadline - created) * ratio


PICKS = 10
"""Volunteers the assign picker offers."""


def nearest_candidates(*, deps: Deps, need_id: str, principal: Principal, limit: int = PICKS) -> list[Pick]:
    """The nearest volunteers who could take the need now: on duty, below capacity, with every skill of the
    first role not yet filled, within the need's search radius, nearest first (then the lower load).

    One bounded GEO search of the available volunteers with one of those skills, never a scan of everyone."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    need = load_need(deps=deps, need_id=need_id)
    role = next((r for r in need.roles if not r.filled), need.roles[0])
    wanted = {s.value for s in role.skills}
    found = deps.store.volunteers.available_near(
        skills=sorted(wanted),
        lat=need.location.lat,
        lon=need.location.lon,
        radius_km=max_radius_km(deps, need),
        count=limit * 5,
    )
    picks = []
    for volunteer in deps.store.volunteers.get_many(found):
        if volunteer is None or not volunteer.on_duty or volunteer.load >= volunteer.capacity:
            continue
        if not wanted <= {s.value for s in volunteer.skills}:
            continue
        picks.append(Pick(volunteer=volunteer, distance_km=round(distance_km(need.location, volunteer.location), 2)))
    picks.sort(key=lambda p: (round(p.distance_km, 1), p.volunteer.load))
    return picks[:limit]
