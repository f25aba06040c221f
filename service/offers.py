"""Offers: reserving a volunteer for a need, and every answer to an offer.

Reserve, accept, decline, expire, release and withdraw offers, a dispatcher's direct
assignment, and answers by SMS code. Each change is one atomic store step; this module maps
the store's refusals to the errors people see.
"""

from __future__ import annotations

from typing import Any

from service import access, clock, jobs, lifecycle
from service.backlog import NOTIFY, announce, enqueue_drain, schedule_expiry, wait_for_match
from service.deps import Deps
from service.exceptions import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from service.ids import new_id
from service.lifecycle import Action
from service.matching import distance_km, fits, role_for
from service.models import (
    Event,
    EventType,
    Need,
    NeedRole,
    NeedStatus,
    Offer,
    OfferStatus,
    Principal,
    Role,
    Skill,
    Topic,
)
from service.needs import load_need
from service.store import Refusal, Refused
from service.store.offers import Assignment

LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
"""Histogram buckets in seconds for time from intake to first offer and to acceptance."""

ENDED_EVENTS = {
    OfferStatus.DECLINED: EventType.OFFER_DECLINED,
    OfferStatus.EXPIRED: EventType.OFFER_EXPIRED,
    OfferStatus.WITHDRAWN: EventType.OFFER_WITHDRAWN,
}

_REFUSAL_MESSAGES = {
    Refusal.AT_CAPACITY: "the volunteer is already at capacity",
    Refusal.NEED_FULL: "the need already has all the volunteers it asked for",
    Refusal.ROLE_FILLED: "this role of the need already has all the volunteers it asks for",
    Refusal.ALREADY_OFFERED: "the volunteer already holds an offer or assignment on this need",
    Refusal.STAFFED: "the need has all the offers it asked for",
}


def refusal_error(refused: Refused, *, doing: str, need: Need | None = None) -> Exception:
    """The error people see for a store refusal: 404 for what is gone, else 409 naming the current status.

    `doing` is the verb ("accept", "decline", "assign"); `need` gives the current status where
    the refusal itself does not carry one.
    """
    reason, detail = refused.reason, refused.detail or ""
    if reason is Refusal.NO_OFFER:
        return NotFound("offer not found")
    if reason is Refusal.NO_NEED:
        return NotFound("need not found")
    if reason is Refusal.NO_VOLUNTEER:
        return NotFound("volunteer not found")
    if reason is Refusal.OFFER_STATUS:
        return InvalidTransition(f"cannot {doing} an offer that is {detail}", current=detail)
    if reason is Refusal.NEED_STATUS:
        if doing == "assign":
            return lifecycle.refusal(Action.ASSIGN, detail)
        return InvalidTransition(f"cannot {doing} an offer on a need that is {detail}", current=detail)
    if reason is Refusal.ROLE_FILLED:
        current = need.status.value if need else "unknown"
        return InvalidTransition(f"{_REFUSAL_MESSAGES[reason]} (role {detail})", current=current)
    current = detail or (need.status.value if need else "unknown")
    message = _REFUSAL_MESSAGES.get(reason, f"cannot {doing}: {reason.value.replace('_', ' ')}")
    return InvalidTransition(message, current=current)


def new_offer_id() -> str:
    return new_id("off")


def since_intake(deps: Deps, need: Need) -> float:
    return max((deps.clock.now() - clock.parse(need.created_at)).total_seconds(), 0.0)


def observe_once(deps: Deps, name: str, need: Need) -> None:
    """Record the time since intake for the first such moment of a need only."""
    if deps.store.stats.set_once(f"{name}:{need.id}", "1", ttl_seconds=30 * 86400):
        deps.store.stats.observe(name, since_intake(deps, need), LATENCY_BUCKETS)


def assign_directly(
    *, deps: Deps, need: Need, volunteer_id: str, actor: str, role: int = 0, override: bool = False
) -> str:
    """Reserve one volunteer for a role of the need as an accepted offer (a dispatcher's choice); the offer id.

    One atomic store step re-checks the need and the volunteer (on duty, the role's skills, unless the
    dispatcher overrides; capacity always); raises Refused when they no longer allow it.
    """
    moment = deps.clock.now()
    volunteer = deps.store.volunteers.get(volunteer_id)
    distance = distance_km(need.location, volunteer.location) if volunteer else 0.0
    offer_id = new_offer_id()
    committed = clock.parse(need.deadline)
    deps.store.offers.assign(
        Assignment(
            need_id=need.id,
            volunteer_id=volunteer_id,
            offer_id=offer_id,
            role=role,
            now_iso=clock.iso(moment),
            now_epoch=clock.epoch(moment),
            distance_km=distance,
            event=Event(
                at=clock.iso(moment),
                type=EventType.ASSIGNED_BY_DISPATCHER,
                actor=actor,
                detail={
                    "offer_id": offer_id,
                    "volunteer_id": volunteer_id,
                    "distance_km": round(distance, 2),
                    "role": role,
                    **({"override": True} if override else {}),
                },
            ),
            committed_iso=clock.iso(committed),
            committed_epoch=clock.epoch(committed),
            since_intake=since_intake(deps, need),
            latency_buckets=LATENCY_BUCKETS,
            override=override,
        )
    )
    return offer_id


def offer_for(deps: Deps, offer_id: str, principal: Principal) -> Offer:
    """The offer, if this principal may answer it (a volunteer's own, or any for a dispatcher)."""
    offer = deps.store.offers.get(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id} not found")
    if principal.role is Role.DISPATCHER:
        return offer
    if access.acts_as_volunteer(principal, offer.volunteer_id):
        return offer
    if principal.role in (Role.VOLUNTEER, Role.CAPTAIN):
        raise NotFound(f"offer {offer_id} not found")
    raise Forbidden(f"the {principal.role.value} role may not answer offers")


def read_offer(*, deps: Deps, offer_id: str, principal: Principal) -> Offer:
    """One offer, for the volunteer it was made to (the link in their message) or a dispatcher; 404 otherwise."""
    return offer_for(deps, offer_id, principal)


def accept_offer(*, deps: Deps, offer_id: str, principal: Principal, actor: str | None = None) -> Offer:
    """The volunteer takes the offer; the need is assigned once enough volunteers accepted."""
    offer = offer_for(deps, offer_id, principal)
    need = load_need(deps=deps, need_id=offer.need_id)
    moment = deps.clock.now()
    committed = clock.parse(need.deadline)
    try:
        assigned, arm_notify = deps.store.offers.accept(
            offer_id=offer_id,
            now_iso=clock.iso(moment),
            now_epoch=clock.epoch(moment),
            committed_iso=clock.iso(committed),
            committed_epoch=clock.epoch(committed),
            event=Event(
                at=clock.iso(moment),
                type=EventType.ACCEPTED,
                actor=actor or principal.actor,
                detail={"offer_id": offer_id, "volunteer_id": offer.volunteer_id},
            ),
            assigned_event=Event(
                at=clock.iso(moment),
                type=EventType.ASSIGNED,
                actor="system",
                detail={"committed_deadline": clock.iso(committed)},
            ),
        )
    except Refused as refused:
        raise refusal_error(refused, doing="accept", need=need) from None
    observe_once(deps, "intake_to_acceptance", need)
    if arm_notify:
        enqueue_drain(deps, NOTIFY)  # the volunteers whose offers were withdrawn hear it was taken
    if assigned:
        announce(deps, Topic.ASSIGNED, offer.need_id)
    return deps.store.offers.get(offer_id) or offer


def decline_offer(
    *, deps: Deps, offer_id: str, principal: Principal, reason: str | None, actor: str | None = None
) -> Offer:
    """The volunteer says no; the reservation is released and the next nearest is offered."""
    offer = offer_for(deps, offer_id, principal)
    try:
        release_offer(
            deps=deps,
            offer_id=offer_id,
            status=OfferStatus.DECLINED,
            actor=actor or principal.actor,
            reason=reason or "",
        )
    except Refused as refused:
        raise refusal_error(refused, doing="decline") from None
    return deps.store.offers.get(offer_id) or offer


def answer_by_code(*, deps: Deps, code: str, sender: str, accept: bool) -> Offer:
    """A volunteer's SMS reply: 'YES 4821' accepts, 'NO 4821' declines; the sender must be their phone."""
    offer_id = deps.store.offers.id_for_code(code)
    offer = deps.store.offers.get(offer_id) if offer_id else None
    volunteer = deps.store.volunteers.get(offer.volunteer_id) if offer else None
    if offer is None or volunteer is None:
        raise NotFound(f"no offer with code {code}")
    if volunteer.phone != sender:
        raise NotFound(f"no offer with code {code} for this phone")
    principal = Principal(role=Role.VOLUNTEER, token_id="sms", volunteer_id=volunteer.id)
    actor = f"volunteer:{volunteer.id} (sms)"
    if accept:
        return accept_offer(deps=deps, offer_id=offer.id, principal=principal, actor=actor)
    return decline_offer(deps=deps, offer_id=offer.id, principal=principal, reason="declined by SMS", actor=actor)


def expire_offer(*, deps: Deps, offer_id: str) -> bool:
    """Expire a pending offer whose accept-by time has passed; False (a no-op) otherwise."""
    if deps.store.offers.get(offer_id) is None:
        return False
    try:
        release_offer(
            deps=deps,
            offer_id=offer_id,
            status=OfferStatus.EXPIRED,
            actor="system",
            reason="not answered in time",
            only_if_due=True,
        )
    except Refused:
        return False
    return True


def expire_due_offers(*, deps: Deps, limit: int = 1000) -> int:
    """Expire every pending offer past its accept-by time, then re-arm the timer for the next one."""
    expired = 0
    for offer_id in deps.store.offers.due_ids(now_epoch=clock.epoch(deps.clock.now()), limit=limit):
        if expire_offer(deps=deps, offer_id=offer_id):
            expired += 1
    earliest = deps.store.offers.arm_next_expiry()
    if earliest is not None:
        schedule_expiry(deps, earliest)
    return expired


def release_offer(
    *,
    deps: Deps,
    offer_id: str,
    status: OfferStatus,
    actor: str,
    reason: str,
    only_if_due: bool = False,
    rematch: bool = True,
) -> Offer:
    """End a pending offer (declined, expired, withdrawn), free the volunteer, and offer the next one.

    Raises Refused when the offer is no longer pending (or, with only_if_due, not yet due).
    """
    offer = deps.store.offers.get(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id} not found")
    moment = deps.clock.now()
    detail: dict[str, Any] = {"offer_id": offer_id, "volunteer_id": offer.volunteer_id}
    if reason:
        detail["reason"] = reason
    deps.store.offers.release(
        offer_id=offer_id,
        status=status,
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
        reason=reason,
        event=Event(at=clock.iso(moment), type=ENDED_EVENTS[status], actor=actor, detail=detail),
        only_if_due=only_if_due,
    )
    deps.store.stats.incr(f"offers_{status.value}")
    if rematch:
        need = deps.store.needs.get(offer.need_id)
        if need is not None:
            wait_for_match(deps, need)
    volunteer = deps.store.volunteers.get(offer.volunteer_id)
    if volunteer is not None and volunteer.on_duty:
        deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=volunteer.id)
    return offer


def withdraw_pending(
    *,
    deps: Deps,
    need_id: str,
    actor: str,
    reason: str,
    sparing: str | None = None,
    most: int | None = None,
    role: int | None = None,
) -> int:
    """Withdraw pending offers on a need (all, or at most `most`; of one role, or of all) and tell their volunteers."""
    withdrawn = 0
    for offer in deps.store.offers.of_need(need_id):
        if offer.status is not OfferStatus.PENDING or offer.volunteer_id == sparing:
            continue
        if role is not None and offer.role != role:
            continue
        if most is not None and withdrawn >= most:
            break
        try:
            release_offer(
                deps=deps, offer_id=offer.id, status=OfferStatus.WITHDRAWN, actor=actor, reason=reason, rematch=False
            )
        except Refused:
            continue  # answered or expired meanwhile
        announce(deps, Topic.CANCELLED, need_id, volunteer_id=offer.volunteer_id)
        withdrawn += 1
    return withdrawn


def skill_list(role: NeedRole) -> str:
    return ", ".join(role.skills) or Skill.GENERAL


def unfit(volunteer_id: str, message: str) -> Conflict:
    """A volunteer a dispatcher may not assign as they are (off duty, without the skills): 409 on the field."""
    return Conflict(message, errors={"json": {"volunteer_id": [message]}})


def assign_volunteer(
    *,
    deps: Deps,
    need_id: str,
    volunteer_id: str,
    principal: Principal,
    role: int | None = None,
    override: bool = False,
) -> Need:
    """A dispatcher's direct assignment: no offer round, but never beyond the volunteer's capacity.

    The volunteer, on duty, takes `role` (an index of the need's roles) when they have its skills, or else
    the first role not yet filled whose skills they have (service.matching.role_for); 409 on `volunteer_id`
    otherwise."""
    need = load_need(deps=deps, need_id=need_id)
    access.require_grid(principal, need.grid)
    lifecycle.check(Action.ASSIGN, need.status)
    volunteer = deps.store.volunteers.get(volunteer_id)
    if volunteer is None:
        # the need in the path exists: a volunteer named in the body that does not is bad input
        raise InvalidInput(
            f"no volunteer {volunteer_id}", errors={"json": {"volunteer_id": ["No volunteer with this id."]}}
        )
    if role is not None and role >= len(need.roles):
        last = len(need.roles) - 1
        raise InvalidInput(
            f"the need has no role {role}: it has roles 0..{last}",
            errors={"json": {"role": [f"The need has roles 0..{last}."]}},
        )
    if not volunteer.on_duty and not override:
        raise unfit(volunteer_id, f"{volunteer_id} is off duty")
    open_roles = [r for r in need.roles if not r.filled]
    if role is not None:
        if not override and not fits(need.roles[role], volunteer.skills):
            raise unfit(volunteer_id, f"{volunteer_id} lacks the skills of role {role}: {skill_list(need.roles[role])}")
        index = role
    elif not open_roles:
        raise InvalidTransition(_REFUSAL_MESSAGES[Refusal.NEED_FULL], current=need.status.value)
    else:
        found = role_for(need.roles, volunteer.skills)
        if found is None and override:
            found = next(i for i, r in enumerate(need.roles) if not r.filled)
        if found is None:
            wanted = " / ".join(skill_list(r) for r in open_roles)
            raise unfit(volunteer_id, f"{volunteer_id} lacks the skills of every open role: {wanted}")
        index = found
    taken = need.roles[index]
    if taken.filled:
        raise InvalidTransition(_REFUSAL_MESSAGES[Refusal.ROLE_FILLED], current=need.status.value)
    if taken.active >= taken.count:
        # the dispatcher's choice takes the place of offers of the role still waiting for an answer
        withdraw_pending(
            deps=deps,
            need_id=need_id,
            actor=principal.actor,
            reason="dispatcher assigned another volunteer",
            sparing=volunteer_id,
            most=taken.active - taken.count + 1,
            role=index,
        )
        need = load_need(deps=deps, need_id=need_id)
    try:
        assign_directly(
            deps=deps, need=need, volunteer_id=volunteer_id, actor=principal.actor, role=index, override=override
        )
    except Refused as refused:
        # the same checks again, in the atomic step: the volunteer may have changed meanwhile
        if refused.reason is Refusal.OFF_DUTY:
            raise unfit(volunteer_id, f"{volunteer_id} is off duty") from None
        if refused.reason is Refusal.LACKS_SKILLS:
            raise unfit(volunteer_id, f"{volunteer_id} lacks the skills of role {index}: {skill_list(taken)}") from None
        raise refusal_error(refused, doing="assign", need=need) from None
    announce(deps, Topic.ASSIGNED_BY_DISPATCHER, need_id, volunteer_id=volunteer_id)
    after = load_need(deps=deps, need_id=need_id)
    if after.status is NeedStatus.ASSIGNED:
        announce(deps, Topic.ASSIGNED, need_id)
    return after
