"""Matching needs to volunteers, escalation, rematch and deadlines: what the match jobs do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from service import access, clock, jobs, lifecycle
from service.catalog import kind_spec
from service.deps import Deps
from service.exceptions import InvalidTransition
from service.lifecycle import Action
from service.matching import Candidate, Requirement, choose_volunteers, distance_km, search_rings
from service.models import Event, EventType, Location, Need, NeedStatus, Principal, Role, Skill, Topic
from service.needs import change_status, load_need
from service.notify import announce
from service.offers import LOST_TO_ANOTHER_WORKER, reserve_volunteer, withdraw_pending
from service.store import Refused, Transition


@dataclass
class MatchOutcome:
    """What one match run did: offers made, and whether it escalated."""

    need_id: str
    offered: list[str] = field(default_factory=list)
    escalated: str | None = None
    skipped: str | None = None


def max_radius_km(deps: Deps, need: Need) -> float:
    return min(kind_spec(need.kind).radius_km, deps.settings.max_radius_km)


def search_skill(pool_sizes: dict[Skill, int]) -> Skill:
    """The required skill with the fewest available volunteers: the smallest GEO set to search."""
    if not pool_sizes:
        return Skill.GENERAL
    return min(pool_sizes, key=lambda skill: pool_sizes[skill])


def load_candidates(deps: Deps, ids: list[str]) -> list[Candidate]:
    candidates = []
    for vid, row in zip(ids, deps.store.volunteers.candidate_rows(ids), strict=True):
        lat, lon, skills, on_duty, load, capacity, idle_since = row
        if lat is None or lon is None or capacity is None:
            continue  # deleted meanwhile
        candidates.append(
            Candidate(
                volunteer_id=vid,
                location=Location(float(lat), float(lon)),
                skills=frozenset((skills or "").split(",")),
                on_duty=on_duty == "1",
                load=int(load or 0),
                capacity=int(capacity),
                idle_since=float(idle_since or 0),
            )
        )
    return candidates


def match_need(*, deps: Deps, need_id: str) -> MatchOutcome:
    """Offer the need to the nearest eligible volunteers, ring by ring; escalate when nobody fits.

    Safe to run any number of times, concurrently too: each reservation re-checks the need
    and the volunteer inside one Lua step, so a need never gets more live offers than it
    asked for and a volunteer never goes above capacity.
    """
    outcome = MatchOutcome(need_id=need_id)
    need = deps.store.needs.get(need_id)
    if need is None:
        outcome.skipped = "no such need"
        return outcome
    if need.status not in lifecycle.MATCHABLE:
        outcome.skipped = f"need is {need.status.value}"
        return outcome
    moment = deps.clock.now()
    start = None
    if need.status is NeedStatus.QUEUED:
        start = Transition(
            allowed=lifecycle.allowed_from(Action.START_MATCHING),
            to=lifecycle.target(Action.START_MATCHING),
            now_iso=clock.iso(moment),
            now_epoch=clock.epoch(moment),
            event=Event(at=clock.iso(moment), type=EventType.MATCHING_STARTED, actor="system"),
        )
    begun = deps.store.needs.begin_matching(need_id, need.skills, start=start)
    missing = need.volunteers_needed - need.active
    if missing <= 0:
        outcome.skipped = "enough offers are out"
        return outcome
    if need.offers_made >= deps.settings.max_offers:
        outcome.escalated = f"{need.offers_made} offers made without enough acceptances"
        escalate(deps=deps, need=need, reason=outcome.escalated)
        return outcome

    radius_max = max_radius_km(deps, need)
    skill = search_skill(begun.pool_sizes)
    tried = begun.tried
    stop = False
    for radius in search_rings(deps.settings.rings_km, radius_max):
        missing, stop = offer_within(
            deps=deps, need=need, radius=radius, skill=skill, tried=tried, missing=missing, outcome=outcome
        )
        if stop or missing <= 0:
            break
    if missing > 0 and not stop:
        wanted = ", ".join(s.value for s in need.skills) or "any skill"
        reason = f"no available volunteer with {wanted} within {radius_max:g} km"
        if escalate(deps=deps, need=load_need(deps=deps, need_id=need_id), reason=reason, unless_staffed=True):
            outcome.escalated = reason
    return outcome


def offer_within(
    *, deps: Deps, need: Need, radius: float, skill: Skill, tried: set[str], missing: int, outcome: MatchOutcome
) -> tuple[int, bool]:
    """Offer to the nearest eligible volunteers within one ring; returns (still missing, stop matching).

    A volunteer lost to another worker between choosing and reserving is skipped and the ring
    is searched again; `tried` grows each time, so this ends.
    """
    requirement = Requirement(location=need.location, skills=frozenset(s.value for s in need.skills), radius_km=radius)
    count = 0
    while missing > 0:
        count = max(count, missing + len(tried) + deps.settings.ring_count)
        hits = deps.store.volunteers.available_near(
            skill=skill, lat=need.location.lat, lon=need.location.lon, radius_km=radius, count=count
        )
        choices = choose_volunteers(
            requirement, load_candidates(deps, [vid for vid, _ in hits]), exclude=tried, count=missing
        )
        lost = False
        for choice in choices:
            tried.add(choice.volunteer_id)
            try:
                offer_id = reserve_volunteer(
                    deps=deps, need=need, volunteer_id=choice.volunteer_id, distance=choice.distance_km
                )
            except Refused as refused:
                if refused.reason in LOST_TO_ANOTHER_WORKER:
                    lost = True
                    continue
                return missing, True  # filled, closed or gone meanwhile
            outcome.offered.append(offer_id)
            missing -= 1
        if lost:
            continue
        if len(hits) < count:
            break  # this ring holds no more
        count *= 4
    return missing, False


def escalate(*, deps: Deps, need: Need, reason: str, unless_staffed: bool = False) -> bool:
    """Hand the need to dispatchers; nothing happens if it is already escalated.

    With unless_staffed, Redis refuses the change when the need has meanwhile got all the
    offers it asked for (another worker matched it).
    """
    if need.status is NeedStatus.ESCALATED:
        return False
    try:
        change_status(
            unless_staffed=unless_staffed,
            deps=deps,
            need_id=need.id,
            action=Action.ESCALATE,
            actor="system",
            event_type=EventType.ESCALATED,
            detail={"reason": reason},
            fields={"status_reason": reason},
        )
    except InvalidTransition:
        return False
    deps.store.stats.incr("escalations")
    announce(deps, Topic.ESCALATED, need.id)
    return True


def rematch_need(*, deps: Deps, need_id: str, principal: Principal) -> Need:
    """Search again. Before assignment: pending offers are withdrawn and everyone may be offered again.
    Once assigned: the assigned volunteers are released and the next nearest are offered instead."""
    access.require_role(principal, Role.DISPATCHER)
    need = load_need(deps=deps, need_id=need_id)
    lifecycle.check(Action.REMATCH, need.status)
    replacing_team = need.status is NeedStatus.ASSIGNED
    if not replacing_team:
        withdraw_pending(deps=deps, need_id=need_id, actor=principal.actor, reason="dispatcher rematch")
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.REMATCH,
        actor=principal.actor,
        event_type=EventType.REMATCH,
        detail={"reason": "dispatcher rematch"},
        release_offers=replacing_team,
        clear_tried=not replacing_team,
        fields={"committed_deadline": ""} if replacing_team else None,
    )
    deps.jobs.enqueue(jobs.MATCH_NEED, queue=jobs.queue_for(need), need_id=need.id)
    return need


def auto_close(*, deps: Deps, need_id: str) -> bool:
    """Close a done need nobody rated once the quiet period has passed."""
    need = deps.store.needs.get(need_id)
    if need is None or need.status is not NeedStatus.DONE:
        return False
    done_at = deps.store.needs.field(need_id, "done_at")
    quiet = timedelta(seconds=deps.settings.auto_close_seconds)
    if done_at and clock.parse(done_at) + quiet > deps.clock.now() + timedelta(seconds=1):
        return False
    try:
        change_status(
            deps=deps,
            need_id=need_id,
            action=Action.CLOSE,
            actor="system",
            event_type=EventType.CLOSED,
            detail={"reason": "no feedback within the quiet period"},
        )
    except InvalidTransition:
        return False
    return True


def rematch_escalated_near(*, deps: Deps, volunteer_id: str) -> list[str]:
    """A volunteer became available: re-run matching for escalated needs they could take."""
    volunteer = deps.store.volunteers.get(volunteer_id)
    if volunteer is None or not volunteer.on_duty or volunteer.load >= volunteer.capacity:
        return []
    ids = deps.store.needs.ids_near(
        lat=volunteer.location.lat,
        lon=volunteer.location.lon,
        radius_km=deps.settings.max_radius_km,
        escalated_only=True,
    )
    queued = []
    for need in deps.store.needs.get_many(ids):
        if need is None or need.status is not NeedStatus.ESCALATED:
            continue
        if not set(need.skills) <= set(volunteer.skills):
            continue
        if distance_km(need.location, volunteer.location) > max_radius_km(deps, need):
            continue
        if need.volunteers_needed - need.active <= 0:
            continue
        deps.jobs.enqueue(jobs.MATCH_NEED, queue=jobs.queue_for(need), need_id=need.id)
        queued.append(need.id)
    return queued


def check_deadlines(*, deps: Deps) -> list[str]:
    """Escalate needs whose deadline is at risk; report needs past their committed deadline once."""
    moment = deps.clock.now()
    ratio = deps.settings.deadline_risk_ratio
    touched = []
    waiting = [
        *deps.store.needs.ids_with_status(NeedStatus.QUEUED),
        *deps.store.needs.ids_with_status(NeedStatus.MATCHING),
        *deps.store.needs.ids_with_status(NeedStatus.OFFERED),
    ]
    for need in deps.store.needs.get_many(waiting):
        if need is None:
            continue
        created, deadline = clock.parse(need.created_at), clock.parse(need.deadline)
        if moment >= created + (deadline - created) * ratio:
            if escalate(deps=deps, need=need, reason="deadline at risk: still not assigned"):
                touched.append(need.id)
    for need in deps.store.needs.get_many(deps.store.needs.overdue_ids(now_epoch=clock.epoch(moment))):
        if need is None or need.status not in lifecycle.IN_PROGRESS:
            continue
        if deps.store.stats.set_once(f"overdue:{need.id}:{need.committed_deadline}", "1", ttl_seconds=30 * 86400):
            deps.store.needs.add_event(
                need.id,
                Event(
                    at=clock.iso(moment),
                    type=EventType.OVERDUE,
                    actor="system",
                    detail={"committed_deadline": need.committed_deadline},
                ),
            )
            escalate(deps=deps, need=need, reason="past the committed completion deadline")
            announce(deps, Topic.OVERDUE, need.id)
            touched.append(need.id)
    return touched
