"""Taking in needs and moving them through their lifecycle on behalf of people."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from service import access, clock, jobs, lifecycle, paging
from service.bootstrap import Deps
from service.catalog import kind_spec
from service.exceptions import Forbidden, InvalidInput, InvalidTransition, NotFound
from service.lifecycle import Action
from service.models import (
    Event,
    Location,
    Need,
    NeedStatus,
    Offer,
    OfferStatus,
    Principal,
    Priority,
    Requester,
    Role,
)
from service.notify import announce
from service.store import new_id


def submit_need(*, deps: Deps, need_in: dict[str, Any], principal: Principal) -> Need:
    """Record a need from any channel and queue it for matching."""
    moment = clock.now()
    spec = kind_spec(need_in["kind"])
    priority = Priority(need_in.get("priority", Priority.NORMAL.value))
    address = need_in.get("address")
    if "location" in need_in:
        location = Location(**need_in["location"])
    elif address:
        location = deps.geocoder.locate(address)
    else:
        raise InvalidInput(
            "location is required: send location as {'lat': ..., 'lon': ...} or an address",
            errors={"json": {"location": ["Missing data for required field."]}},
        )
    if need_in.get("deadline") is not None:
        deadline = need_in["deadline"]
        if deadline <= moment:
            raise InvalidInput(
                "deadline must be in the future", errors={"json": {"deadline": ["Must be in the future."]}}
            )
    else:
        deadline = moment + timedelta(seconds=spec.deadlines[priority])
    requester = need_in.get("requester") or {}
    skills = need_in.get("skills")
    need = Need(
        id=new_id("need"),
        kind=spec.name.value,
        status=NeedStatus.QUEUED.value,
        priority=priority.value,
        skills=sorted(set(skills)) if skills is not None else [s.value for s in spec.skills],
        location=location,
        address=address,
        vulnerability=sorted(set(need_in.get("vulnerability", []))),
        volunteers_needed=need_in.get("volunteers_needed", 1),
        description=need_in.get("description"),
        requester=Requester(name=requester.get("name"), phone=requester.get("phone")),
        tracking_code=secrets.token_urlsafe(12),
        created_at=clock.iso(moment),
        updated_at=clock.iso(moment),
        deadline=clock.iso(deadline),
        created_by=principal.token_id,
        grid=need_in.get("grid"),
        requester_locale=requester.get("locale"),
    )
    deps.store.create_need(
        need,
        Event(
            at=need.created_at,
            type="created",
            actor=principal.actor,
            detail={"kind": need.kind, "priority": need.priority, "channel": principal.role.value},
        ),
    )
    deps.jobs.enqueue(jobs.MATCH_NEED, need.id, queue=jobs.queue_for(need))
    announce(deps, "received", need.id)
    return need


def load_need(*, deps: Deps, need_id: str) -> Need:
    need = deps.store.get_need(need_id)
    if need is None:
        raise NotFound(f"need {need_id} not found")
    return need


def volunteers_on(offers: list[Offer], *statuses: OfferStatus) -> set[str]:
    wanted = {s.value for s in statuses}
    return {o.volunteer_id for o in offers if o.status in wanted}


def read_need(*, deps: Deps, need_id: str, principal: Principal) -> tuple[Need, list[Offer]]:
    """A need and its offers, if this principal may read it (otherwise 404, not revealing it exists)."""
    need = load_need(deps=deps, need_id=need_id)
    offers = deps.store.need_offers(need_id)
    involved = {o.volunteer_id for o in offers}
    if not access.can_read_need(principal, need, assigned=involved):
        raise NotFound(f"need {need_id} not found")
    return need, offers


def list_needs(
    *,
    deps: Deps,
    principal: Principal,
    status: str | None = None,
    kind: str | None = None,
    priority: str | None = None,
    near: Location | None = None,
    radius_km: float = 10.0,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Need], str | None]:
    """Needs newest first, filtered; intake tokens see only the needs they created."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS, Role.INTAKE)
    created_by = principal.token_id if principal.role is Role.INTAKE else None

    def keep(n: Need | None) -> bool:
        return (
            n is not None
            and (status is None or n.status == status)
            and (kind is None or n.kind == kind)
            and (priority is None or n.priority == priority)
            and (created_by is None or n.created_by == created_by)
        )

    before = paging.decode_after(cursor)
    nearby: set[str] | None = None
    if near is not None:
        nearby = set(deps.store.needs_near(lat=near.lat, lon=near.lon, radius_km=radius_km))
    found: list[Need] = []
    scanned = 0
    while len(found) < limit and scanned < 5000:
        if nearby is not None:
            ids = sorted((i for i in nearby if before is None or i < before), reverse=True)[:limit]
        else:
            ids = deps.store.need_ids_page(status=status, created_by=created_by, before=before, limit=limit)
        if not ids:
            return found, None
        for nid, n in zip(ids, deps.store.get_needs(ids), strict=True):
            before = nid
            scanned += 1
            if keep(n):
                found.append(n)  # type: ignore[arg-type]
                if len(found) == limit:
                    break
    return found, paging.encode_after(before) if before else None


def need_events(*, deps: Deps, need_id: str, principal: Principal) -> list[Event]:
    read_need(deps=deps, need_id=need_id, principal=principal)
    return deps.store.events(need_id)


def change_status(
    *,
    deps: Deps,
    need_id: str,
    action: Action,
    actor: str,
    event_type: str,
    detail: dict[str, Any] | None = None,
    release_offers: bool = False,
    clear_tried: bool = False,
    unless_staffed: bool = False,
    fields: dict[str, Any] | None = None,
) -> Need:
    """Apply one lifecycle action atomically; 409 naming the current status if it is not allowed."""
    need = load_need(deps=deps, need_id=need_id)
    lifecycle.check(action, need.status)
    freed = (
        volunteers_on(deps.store.need_offers(need_id), OfferStatus.PENDING, OfferStatus.ACCEPTED)
        if release_offers
        else set()
    )
    moment = clock.now()
    result = deps.store.transition(
        need_id,
        allowed_from=lifecycle.csv(lifecycle.allowed_from(action)),
        to=lifecycle.target(action).value,
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
        event=Event(at=clock.iso(moment), type=event_type, actor=actor, detail=detail or {}),
        release_offers=release_offers,
        release_reason=(detail or {}).get("reason", event_type),
        clear_tried=clear_tried,
        unless_staffed=unless_staffed,
        fields=fields,
    )
    if result == "staffed":
        raise InvalidTransition("the need has all the offers it asked for", current=need.status)
    if result == "no_need":
        raise NotFound(f"need {need_id} not found")
    if result.startswith("need_status:"):
        current = result.split(":", 1)[1]
        raise InvalidTransition(f"cannot {action.value.replace('_', ' ')} a need that is {current}", current=current)
    for volunteer_id in sorted(freed):
        # capacity came free: escalated needs nearby may now have a volunteer
        deps.jobs.enqueue(jobs.REMATCH_NEAR, volunteer_id, queue=jobs.DEFAULT)
    return load_need(deps=deps, need_id=need_id)


def cancel_need(*, deps: Deps, need_id: str, reason: str, principal: Principal) -> Need:
    """Cancel a need; its volunteers are released and told."""
    need, offers = read_need(deps=deps, need_id=need_id, principal=principal)
    access.require_role(principal, Role.DISPATCHER, Role.INTAKE)
    involved = volunteers_on(offers, OfferStatus.PENDING, OfferStatus.ACCEPTED)
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.CANCEL,
        actor=principal.actor,
        event_type="cancelled",
        detail={"reason": reason},
        release_offers=True,
        fields={"status_reason": reason},
    )
    for volunteer_id in sorted(involved):
        announce(deps, "cancelled", need_id, volunteer_id=volunteer_id)
    return need


def defer_need(*, deps: Deps, need_id: str, reason: str, principal: Principal) -> Need:
    """Park a need that cannot be done yet, with the reason the requester will see."""
    access.require_role(principal, Role.DISPATCHER)
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.DEFER,
        actor=principal.actor,
        event_type="deferred",
        detail={"reason": reason},
        release_offers=True,
        fields={"status_reason": reason},
    )
    announce(deps, "deferred", need_id)
    return need


def reopen_need(*, deps: Deps, need_id: str, reason: str | None, actor: str) -> Need:
    """Put a need back in the queue for a fresh match."""
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.REOPEN,
        actor=actor,
        event_type="reopened",
        detail={"reason": reason} if reason else {},
        release_offers=True,
        clear_tried=True,
        fields={"status_reason": reason or "", "rating": "", "feedback_comment": ""},
    )
    deps.jobs.enqueue(jobs.MATCH_NEED, need.id, queue=jobs.queue_for(need))
    return need


def rematch_need(*, deps: Deps, need_id: str, principal: Principal) -> Need:
    """Search again. Before assignment: pending offers are withdrawn and everyone may be offered again.
    Once assigned: the assigned volunteers are released and the next nearest are offered instead."""
    access.require_role(principal, Role.DISPATCHER)
    need = load_need(deps=deps, need_id=need_id)
    lifecycle.check(Action.REMATCH, need.status)
    replacing_team = need.status == NeedStatus.ASSIGNED.value
    if not replacing_team:
        withdraw_pending(deps=deps, need_id=need_id, actor=principal.actor, reason="dispatcher rematch")
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.REMATCH,
        actor=principal.actor,
        event_type="rematch",
        detail={"reason": "dispatcher rematch"},
        release_offers=replacing_team,
        clear_tried=not replacing_team,
        fields={"committed_deadline": ""} if replacing_team else None,
    )
    deps.jobs.enqueue(jobs.MATCH_NEED, need.id, queue=jobs.queue_for(need))
    return need


def withdraw_pending(
    *, deps: Deps, need_id: str, actor: str, reason: str, sparing: str | None = None, most: int | None = None
) -> int:
    """Withdraw pending offers on a need (all, or at most `most`) and tell their volunteers."""
    withdrawn = 0
    for offer in deps.store.need_offers(need_id):
        if offer.status != OfferStatus.PENDING.value or offer.volunteer_id == sparing:
            continue
        if most is not None and withdrawn >= most:
            break
        result = release_offer(
            deps=deps, offer_id=offer.id, status=OfferStatus.WITHDRAWN, actor=actor, reason=reason, rematch=False
        )
        if result == "ok":
            announce(deps, "cancelled", need_id, volunteer_id=offer.volunteer_id)
            withdrawn += 1
    return withdrawn


def release_offer(
    *,
    deps: Deps,
    offer_id: str,
    status: OfferStatus,
    actor: str,
    reason: str,
    only_if_due: bool = False,
    rematch: bool = True,
) -> str:
    """End a pending offer (declined, expired, withdrawn), free the volunteer, and offer the next one."""
    offer = deps.store.get_offer(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id} not found")
    moment = clock.now()
    event_type = {
        OfferStatus.DECLINED: "offer_declined",
        OfferStatus.EXPIRED: "offer_expired",
        OfferStatus.WITHDRAWN: "offer_withdrawn",
    }[status]
    detail: dict[str, Any] = {"offer_id": offer_id, "volunteer_id": offer.volunteer_id}
    if reason:
        detail["reason"] = reason
    result = deps.store.release_offer(
        offer_id=offer_id,
        status=status,
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
        reason=reason,
        event=Event(at=clock.iso(moment), type=event_type, actor=actor, detail=detail),
        only_if_due=only_if_due,
    )
    if result == "ok":
        deps.store.incr_stat(f"offers_{status.value}")
    if result == "ok" and rematch:
        need = deps.store.get_need(offer.need_id)
        if need is not None:
            deps.jobs.enqueue(jobs.MATCH_NEED, need.id, queue=jobs.queue_for(need))
    if result == "ok":
        volunteer = deps.store.get_volunteer(offer.volunteer_id)
        if volunteer is not None and volunteer.on_duty:
            deps.jobs.enqueue(jobs.REMATCH_NEAR, volunteer.id, queue=jobs.DEFAULT)
    return result


def assign_volunteer(*, deps: Deps, need_id: str, volunteer_id: str, principal: Principal) -> Need:
    """A dispatcher's direct assignment: no offer round, but never beyond the volunteer's capacity."""
    from service.dispatch import reserve_volunteer  # avoid an import cycle

    access.require_role(principal, Role.DISPATCHER)
    need = load_need(deps=deps, need_id=need_id)
    lifecycle.check(Action.ASSIGN, need.status)
    volunteer = deps.store.get_volunteer(volunteer_id)
    if volunteer is None:
        raise NotFound(f"volunteer {volunteer_id} not found")
    if need.active >= need.volunteers_needed:
        # the dispatcher's choice takes the place of an offer still waiting for an answer
        withdraw_pending(
            deps=deps,
            need_id=need_id,
            actor=principal.actor,
            reason="dispatcher assigned another volunteer",
            sparing=volunteer_id,
            most=1,
        )
        need = load_need(deps=deps, need_id=need_id)
    result = reserve_volunteer(deps=deps, need=need, volunteer_id=volunteer_id, direct=True, actor=principal.actor)
    if not result.startswith("ok:"):
        raise _reserve_conflict(result, need)
    announce(deps, "assigned_by_dispatcher", need_id, volunteer_id=volunteer_id)
    after = load_need(deps=deps, need_id=need_id)
    if after.status == NeedStatus.ASSIGNED.value:
        announce(deps, "assigned", need_id)
    return after


def _reserve_conflict(result: str, need: Need) -> InvalidTransition:
    reason, _, value = result.partition(":")
    messages = {
        "at_capacity": "the volunteer is already at capacity",
        "need_full": "the need already has all the volunteers it asked for",
        "already_offered": "the volunteer already holds an offer or assignment on this need",
        "need_status": f"cannot assign a need that is {value}",
    }
    current = value if reason == "need_status" else need.status
    return InvalidTransition(messages.get(reason, f"cannot assign: {result}"), current=current)


PROGRESS_ACTIONS = {
    NeedStatus.EN_ROUTE.value: Action.EN_ROUTE,
    NeedStatus.ON_SITE.value: Action.ON_SITE,
    NeedStatus.DONE.value: Action.DONE,
}


def report_progress(*, deps: Deps, need_id: str, status: str, note: str | None, principal: Principal) -> Need:
    """An assigned volunteer (or a dispatcher) reports en route, on site or done."""
    need, offers = read_need(deps=deps, need_id=need_id, principal=principal)
    accepted = volunteers_on(offers, OfferStatus.ACCEPTED)
    if principal.role is not Role.DISPATCHER and not (
        principal.role is Role.VOLUNTEER and principal.volunteer_id in accepted
    ):
        raise Forbidden("only a volunteer assigned to this need, or a dispatcher, may report progress")
    action = PROGRESS_ACTIONS[status]
    detail: dict[str, Any] = {"note": note} if note else {}
    if principal.volunteer_id:
        detail["volunteer_id"] = principal.volunteer_id
    fields: dict[str, Any] = {"done_at": clock.iso(clock.now())} if action is Action.DONE else {}
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=action,
        actor=principal.actor,
        event_type=status,
        detail=detail,
        release_offers=action is Action.DONE,
        fields=fields,
    )
    if action is Action.DONE:
        at = clock.now() + timedelta(seconds=deps.settings.auto_close_seconds)
        deps.jobs.enqueue(jobs.AUTO_CLOSE, need.id, queue=jobs.LOW, at=at)
    if action in (Action.EN_ROUTE, Action.DONE):
        announce(deps, status, need_id)
    return need


def close_need(*, deps: Deps, need_id: str, actor: str, rating: int | None, comment: str | None) -> Need:
    fields: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    if rating is not None:
        fields["rating"] = rating
        detail["rating"] = rating
    if comment:
        fields["feedback_comment"] = comment
        detail["comment"] = comment
    return change_status(
        deps=deps,
        need_id=need_id,
        action=Action.CLOSE,
        actor=actor,
        event_type="closed",
        detail=detail,
        fields=fields,
    )


def need_for_tracking(*, deps: Deps, code: str) -> Need:
    need_id = deps.store.need_id_for_tracking(code)
    need = deps.store.get_need(need_id) if need_id else None
    if need is None:
        raise NotFound("no need with this tracking code")
    return need


def give_feedback(*, deps: Deps, code: str, rating: int, comment: str | None, fixed: bool) -> Need:
    """The requester confirms (closes with a rating) or says it is not fixed (reopens)."""
    need = need_for_tracking(deps=deps, code=code)
    if fixed:
        return close_need(deps=deps, need_id=need.id, actor="requester", rating=rating, comment=comment)
    if need.status not in (NeedStatus.DONE.value, NeedStatus.CLOSED.value):
        raise InvalidTransition(f"feedback is taken once the need is done; it is {need.status}", current=need.status)
    if need.status == NeedStatus.CLOSED.value:
        closed_at = deps.store.need_field(need.id, "status_at") or need.updated_at
        if clock.now() - clock.parse(closed_at) > timedelta(seconds=deps.settings.reopen_window_seconds):
            raise InvalidTransition(
                "this need was closed too long ago to reopen by feedback; please submit a new request",
                current=need.status,
            )
    deps.store.add_event(
        need.id,
        Event(
            at=clock.iso(clock.now()),
            type="feedback",
            actor="requester",
            detail={"rating": rating, "fixed": False, **({"comment": comment} if comment else {})},
        ),
    )
    return reopen_need(deps=deps, need_id=need.id, reason="requester says it is not fixed", actor="requester")
