"""Matching needs to volunteers and running the offer round: what the match jobs do."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from service import clock, jobs, lifecycle
from service.bootstrap import Deps
from service.catalog import kind_spec
from service.exceptions import Forbidden, InvalidTransition, NotFound
from service.lifecycle import Action
from service.matching import Candidate, Requirement, choose_volunteers, distance_km, search_rings
from service.models import Event, Location, Need, NeedStatus, Offer, OfferStatus, Principal, Priority, Role
from service.needs import change_status, load_need, release_offer
from service.notify import announce


@dataclass
class MatchOutcome:
    """What one match run did: offers made, and whether it escalated."""

    need_id: str
    offered: list[str] = field(default_factory=list)
    escalated: str | None = None
    skipped: str | None = None


def max_radius_km(deps: Deps, need: Need) -> float:
    return min(kind_spec(need.kind).radius_km, deps.settings.max_radius_km)


def search_skill(pool_sizes: dict[str, int]) -> str:
    """The required skill with the fewest available volunteers: the smallest GEO set to search."""
    if not pool_sizes:
        return "general"
    return min(pool_sizes, key=lambda skill: pool_sizes[skill])


def load_candidates(deps: Deps, ids: list[str]) -> list[Candidate]:
    candidates = []
    for vid, row in zip(ids, deps.store.candidate_rows(ids), strict=True):
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
    need = deps.store.get_need(need_id)
    if need is None:
        outcome.skipped = "no such need"
        return outcome
    if NeedStatus(need.status) not in lifecycle.MATCHABLE:
        outcome.skipped = f"need is {need.status}"
        return outcome
    moment = clock.now()
    start = None
    if need.status == NeedStatus.QUEUED.value:
        start = Event(at=clock.iso(moment), type="matching_started", actor="system")
    tried, pool_sizes = deps.store.begin_matching(need_id, need.skills, start=start, now_epoch=clock.epoch(moment))
    missing = need.volunteers_needed - need.active
    if missing <= 0:
        outcome.skipped = "enough offers are out"
        return outcome
    if need.offers_made >= deps.settings.max_offers:
        outcome.escalated = f"{need.offers_made} offers made without enough acceptances"
        escalate(deps=deps, need=need, reason=outcome.escalated)
        return outcome

    radius_max = max_radius_km(deps, need)
    skill = search_skill(pool_sizes)
    stop = False
    for radius in search_rings(deps.settings.rings_km, radius_max):
        missing, stop = offer_within(
            deps=deps, need=need, radius=radius, skill=skill, tried=tried, missing=missing, outcome=outcome
        )
        if stop or missing <= 0:
            break
    if missing > 0 and not stop:
        reason = f"no available volunteer with {', '.join(need.skills) or 'any skill'} within {radius_max:g} km"
        if escalate(deps=deps, need=load_need(deps=deps, need_id=need_id), reason=reason, unless_staffed=True):
            outcome.escalated = reason
    return outcome


def offer_within(
    *, deps: Deps, need: Need, radius: float, skill: str, tried: set[str], missing: int, outcome: MatchOutcome
) -> tuple[int, bool]:
    """Offer to the nearest eligible volunteers within one ring; returns (still missing, stop matching).

    A volunteer lost to another worker between choosing and reserving is skipped and the ring
    is searched again; `tried` grows each time, so this ends.
    """
    requirement = Requirement(location=need.location, skills=frozenset(need.skills), radius_km=radius)
    count = 0
    while missing > 0:
        count = max(count, missing + len(tried) + deps.settings.ring_count)
        hits = deps.store.available_near(
            skill=skill, lat=need.location.lat, lon=need.location.lon, radius_km=radius, count=count
        )
        choices = choose_volunteers(
            requirement, load_candidates(deps, [vid for vid, _ in hits]), exclude=tried, count=missing
        )
        lost = False
        for choice in choices:
            tried.add(choice.volunteer_id)
            result = reserve_volunteer(
                deps=deps, need=need, volunteer_id=choice.volunteer_id, distance=choice.distance_km
            )
            if result.startswith("ok:"):
                outcome.offered.append(result[3:])
                missing -= 1
            elif result == "need_full" or result.startswith("need_status:"):
                return missing, True  # filled or closed by someone else meanwhile
            else:
                lost = True
        if lost:
            continue
        if len(hits) < count:
            break  # this ring holds no more
        count *= 4
    return missing, False


LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
"""Histogram buckets in seconds for time from intake to first offer and to acceptance."""


def observe_once(deps: Deps, name: str, need: Need) -> None:
    """Record the time since intake for the first such moment of a need only."""
    if deps.store.set_once(f"{name}:{need.id}", "1", ttl_seconds=30 * 86400):
        seconds = max((clock.now() - clock.parse(need.created_at)).total_seconds(), 0.0)
        deps.store.observe(name, seconds, LATENCY_BUCKETS)


def reserve_volunteer(
    *,
    deps: Deps,
    need: Need,
    volunteer_id: str,
    distance: float | None = None,
    direct: bool = False,
    actor: str = "system",
) -> str:
    """Reserve one volunteer atomically: a pending offer, or a direct assignment. Returns 'ok:<offer id>'."""
    moment = clock.now()
    priority = Priority(need.priority)
    accept_seconds = kind_spec(need.kind).accept_seconds[priority]
    expires = moment + timedelta(seconds=accept_seconds)
    if distance is None:
        volunteer = deps.store.get_volunteer(volunteer_id)
        distance = distance_km(need.location, volunteer.location) if volunteer else 0.0
    offer_id = new_offer_id()
    detail = {"offer_id": offer_id, "volunteer_id": volunteer_id, "distance_km": round(distance, 2)}
    event = Event(
        at=clock.iso(moment),
        type="assigned_by_dispatcher" if direct else "offered",
        actor=actor,
        detail=detail if direct else {**detail, "expires_at": clock.iso(expires)},
    )
    committed = clock.parse(need.deadline)
    for code in [""] if direct else offer_codes():
        result = deps.store.reserve(
            need_id=need.id,
            volunteer_id=volunteer_id,
            offer_id=offer_id,
            now_iso=clock.iso(moment),
            now_ms=int(clock.epoch(moment) * 1000),
            expires_iso=clock.iso(expires),
            expires_epoch=clock.epoch(expires),
            distance_km=distance,
            required_skills=need.skills,
            code=code,
            code_ttl=accept_seconds + 86400,
            event=event,
            direct_assignment=direct,
            committed_iso=clock.iso(committed),
            committed_epoch=clock.epoch(committed),
            since_intake=max((moment - clock.parse(need.created_at)).total_seconds(), 0.0),
            latency_buckets=LATENCY_BUCKETS,
        )
        if result != "code_taken":
            break
    if result not in ("ok", "ok:first"):
        return result
    if not direct:
        with jobs.batch(deps.jobs):
            deps.jobs.enqueue(jobs.EXPIRE_OFFER, offer_id, queue=jobs.URGENT, at=expires + timedelta(seconds=1))
            announce(deps, "offer", need.id, volunteer_id=volunteer_id, offer_id=offer_id)
    return f"ok:{offer_id}"


def new_offer_id() -> str:
    from service.store import new_id

    return new_id("off")


def offer_codes() -> Iterator[str]:
    """Candidate short codes for SMS replies ('YES 4821'); the reservation takes the first free one."""
    for digits in (4, 4, 4, 4, 4, 6, 6, 6, 6, 6):
        yield "".join(secrets.choice("0123456789") for _ in range(digits))
    raise RuntimeError("could not find a free offer code")


def escalate(*, deps: Deps, need: Need, reason: str, unless_staffed: bool = False) -> bool:
    """Hand the need to dispatchers; nothing happens if it is already escalated.

    With unless_staffed, Redis refuses the change when the need has meanwhile got all the
    offers it asked for (another worker matched it).
    """
    if need.status == NeedStatus.ESCALATED.value:
        return False
    try:
        change_status(
            unless_staffed=unless_staffed,
            deps=deps,
            need_id=need.id,
            action=Action.ESCALATE,
            actor="system",
            event_type="escalated",
            detail={"reason": reason},
            fields={"status_reason": reason},
        )
    except InvalidTransition:
        return False
    deps.store.incr_stat("escalations")
    announce(deps, "escalated", need.id)
    return True


def _offer_for(deps: Deps, offer_id: str, principal: Principal) -> Offer:
    offer = deps.store.get_offer(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id} not found")
    if principal.role is Role.DISPATCHER:
        return offer
    if principal.role is Role.VOLUNTEER and principal.volunteer_id == offer.volunteer_id:
        return offer
    if principal.role is Role.VOLUNTEER:
        raise NotFound(f"offer {offer_id} not found")
    raise Forbidden(f"the {principal.role.value} role may not answer offers")


def _conflict(result: str, what: str) -> InvalidTransition:
    reason, _, current = result.partition(":")
    if reason == "offer_status":
        return InvalidTransition(f"cannot {what} an offer that is {current}", current=current)
    return InvalidTransition(f"cannot {what} an offer on a need that is {current}", current=current)


def accept_offer(*, deps: Deps, offer_id: str, principal: Principal, actor: str | None = None) -> Offer:
    """The volunteer takes the offer; the need is assigned once enough volunteers accepted."""
    offer = _offer_for(deps, offer_id, principal)
    need = load_need(deps=deps, need_id=offer.need_id)
    moment = clock.now()
    committed = clock.parse(need.deadline)
    who = actor or principal.actor
    result = deps.store.accept_offer(
        offer_id=offer_id,
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
        committed_iso=clock.iso(committed),
        committed_epoch=clock.epoch(committed),
        event=Event(
            at=clock.iso(moment),
            type="accepted",
            actor=who,
            detail={"offer_id": offer_id, "volunteer_id": offer.volunteer_id},
        ),
        assigned_event=Event(
            at=clock.iso(moment),
            type="assigned",
            actor="system",
            detail={"committed_deadline": clock.iso(committed)},
        ),
    )
    if result == "no_offer":
        raise NotFound(f"offer {offer_id} not found")
    if result != "ok":
        raise _conflict(result, "accept")
    observe_once(deps, "intake_to_acceptance", need)
    if load_need(deps=deps, need_id=offer.need_id).status == NeedStatus.ASSIGNED.value:
        announce(deps, "assigned", offer.need_id)
    return deps.store.get_offer(offer_id) or offer


def decline_offer(
    *, deps: Deps, offer_id: str, principal: Principal, reason: str | None, actor: str | None = None
) -> Offer:
    """The volunteer says no; the reservation is released and the next nearest is offered."""
    offer = _offer_for(deps, offer_id, principal)
    result = release_offer(
        deps=deps,
        offer_id=offer_id,
        status=OfferStatus.DECLINED,
        actor=actor or principal.actor,
        reason=reason or "",
    )
    if result != "ok":
        raise _conflict(result, "decline")
    return deps.store.get_offer(offer_id) or offer


def expire_offer(*, deps: Deps, offer_id: str) -> str:
    """Expire a pending offer whose accept-by time has passed; a no-op otherwise."""
    if deps.store.get_offer(offer_id) is None:
        return "no_offer"
    return release_offer(
        deps=deps,
        offer_id=offer_id,
        status=OfferStatus.EXPIRED,
        actor="system",
        reason="not answered in time",
        only_if_due=True,
    )


def auto_close(*, deps: Deps, need_id: str) -> bool:
    """Close a done need nobody rated once the quiet period has passed."""
    need = deps.store.get_need(need_id)
    if need is None or need.status != NeedStatus.DONE.value:
        return False
    done_at = deps.store.need_field(need_id, "done_at")
    quiet = timedelta(seconds=deps.settings.auto_close_seconds)
    if done_at and clock.parse(done_at) + quiet > clock.now() + timedelta(seconds=1):
        return False
    try:
        change_status(
            deps=deps,
            need_id=need_id,
            action=Action.CLOSE,
            actor="system",
            event_type="closed",
            detail={"reason": "no feedback within the quiet period"},
        )
    except InvalidTransition:
        return False
    return True


def rematch_escalated_near(*, deps: Deps, volunteer_id: str) -> list[str]:
    """A volunteer became available: re-run matching for escalated needs they could take."""
    volunteer = deps.store.get_volunteer(volunteer_id)
    if volunteer is None or not volunteer.on_duty or volunteer.load >= volunteer.capacity:
        return []
    ids = deps.store.needs_near(
        lat=volunteer.location.lat,
        lon=volunteer.location.lon,
        radius_km=deps.settings.max_radius_km,
        escalated_only=True,
    )
    queued = []
    for need in deps.store.get_needs(ids):
        if need is None or need.status != NeedStatus.ESCALATED.value:
            continue
        if not set(need.skills) <= set(volunteer.skills):
            continue
        if distance_km(need.location, volunteer.location) > max_radius_km(deps, need):
            continue
        if need.volunteers_needed - need.active <= 0:
            continue
        deps.jobs.enqueue(jobs.MATCH_NEED, need.id, queue=jobs.queue_for(need))
        queued.append(need.id)
    return queued


def check_deadlines(*, deps: Deps) -> list[str]:
    """Escalate needs whose deadline is at risk; report needs past their committed deadline once."""
    moment = clock.now()
    ratio = deps.settings.deadline_risk_ratio
    touched = []
    waiting = [
        *deps.store.need_ids_with_status(NeedStatus.QUEUED.value),
        *deps.store.need_ids_with_status(NeedStatus.MATCHING.value),
        *deps.store.need_ids_with_status(NeedStatus.OFFERED.value),
    ]
    for need in deps.store.get_needs(waiting):
        if need is None:
            continue
        created, deadline = clock.parse(need.created_at), clock.parse(need.deadline)
        if moment >= created + (deadline - created) * ratio:
            if escalate(deps=deps, need=need, reason="deadline at risk: still not assigned"):
                touched.append(need.id)
    for need in deps.store.get_needs(deps.store.overdue_need_ids(now_epoch=clock.epoch(moment))):
        if need is None or NeedStatus(need.status) not in lifecycle.IN_PROGRESS:
            continue
        if deps.store.set_once(f"overdue:{need.id}:{need.committed_deadline}", "1", ttl_seconds=30 * 86400):
            deps.store.add_event(
                need.id,
                Event(
                    at=clock.iso(moment),
                    type="overdue",
                    actor="system",
                    detail={"committed_deadline": need.committed_deadline},
                ),
            )
            escalate(deps=deps, need=need, reason="past the committed completion deadline")
            announce(deps, "overdue", need.id)
            touched.append(need.id)
    return touched
