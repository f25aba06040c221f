"""Taking in needs and moving them through their lifecycle on behalf of people."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from service import access, clock, incidents, jobs, lifecycle, paging
from service.backlog import ARRIVAL_REPLIES, announce, arrivals, arrived, wait_for_match
from service.catalog import kind_spec
from service.deps import Deps
from service.exceptions import FeedbackRefused, Forbidden, InvalidInput, InvalidTransition, NotFound
from service.ids import new_id
from service.lifecycle import Action
from service.models import (
    Event,
    EventType,
    Locale,
    Location,
    Need,
    NeedKind,
    NeedRole,
    NeedStatus,
    Offer,
    OfferStatus,
    Principal,
    Priority,
    Requester,
    Role,
    Skill,
    TeamMember,
    Topic,
    Vulnerability,
)
from service.privacy import channel_as_seen, first_name, mask_channel
from service.store import Refusal, Refused, Release, Transition

MAX_BATCH = 500
"""Most needs one batch may carry."""


def submit_need(*, deps: Deps, need_in: dict[str, Any], principal: Principal) -> Need:
    """Record a need from any channel and queue it for matching."""
    need = build_need(deps=deps, need_in=need_in, principal=principal, locate=deps.geocoder.locate)
    record_needs(deps=deps, needs=[need], principal=principal)
    return need


def submit_needs(*, deps: Deps, needs_in: list[dict[str, Any]], principal: Principal) -> list[Need]:
    """Record many needs at once (a hotline's list, a shelter's census) and queue them for matching: all or none.

    Every item is checked, and its address geocoded, before anything is stored; any bad item (a deadline in the
    past, an address not found) refuses the whole batch with a 422 naming each bad item by its index. The needs
    are then stored in one transaction and queued and announced in one step each.
    """
    if not 1 <= len(needs_in) <= MAX_BATCH:
        raise InvalidInput(
            f"send between 1 and {MAX_BATCH} needs",
            errors={"json": {"needs": [f"Length must be between 1 and {MAX_BATCH}."]}},
        )
    locate = remembering(deps.geocoder.locate)
    moment = deps.clock.now()
    built: list[Need] = []
    bad: dict[int, Any] = {}
    for index, need_in in enumerate(needs_in):
        try:
            built.append(build_need(deps=deps, need_in=need_in, principal=principal, locate=locate, moment=moment))
        except InvalidInput as refused:
            bad[index] = (refused.errors or {}).get("json") or {"_schema": [refused.message]}
    if bad:
        fields = ", ".join(f"needs.{i}.{name}" for i, errors in bad.items() for name in errors)
        raise InvalidInput(f"invalid input: {fields}; nothing was created", errors={"json": {"needs": bad}})
    record_needs(deps=deps, needs=built, principal=principal)
    return built


def remembering(locate: Callable[[str], Location]) -> Callable[[str], Location]:
    """The geocoder asked once per distinct address, its answer or refusal remembered (a batch often repeats one
    address: a building, a village)."""
    answers: dict[str, Location | InvalidInput] = {}

    def remembered(address: str) -> Location:
        if address not in answers:
            try:
                answers[address] = locate(address)
            except InvalidInput as refused:
                answers[address] = refused
        answer = answers[address]
        if isinstance(answer, InvalidInput):
            raise answer
        return answer

    return remembered


MAX_AHEAD = timedelta(days=366)
"""How far ahead a need's deadline (or arrive_by) may lie: help is asked for within a year, not for the year 9999."""


def check_horizon(field: str, when: datetime, moment: datetime) -> None:
    """A time a need is sent with must be in the future and within MAX_AHEAD of now: 422 naming the field."""
    if when <= moment:
        raise InvalidInput(f"{field} must be in the future", errors={"json": {field: ["Must be in the future."]}})
    if when > moment + MAX_AHEAD:
        raise InvalidInput(
            f"{field} must be within {MAX_AHEAD.days} days of now",
            errors={"json": {field: [f"Must be within {MAX_AHEAD.days} days of now."]}},
        )


def build_need(
    *,
    deps: Deps,
    need_in: dict[str, Any],
    principal: Principal,
    locate: Callable[[str], Location],
    moment: datetime | None = None,
) -> Need:
    """A new need from checked input, not stored yet: its place (geocoded when only an address is given), its
    deadline, how far to search. InvalidInput when it breaks a rule the schema cannot check."""
    moment = moment or deps.clock.now()
    spec = kind_spec(NeedKind(need_in["kind"]))
    priority = Priority(need_in.get("priority", Priority.NORMAL.value))
    address = need_in.get("address")
    household = None
    if need_in.get("household_id"):
        household = deps.store.households.get(need_in["household_id"])
        if household is None:
            raise InvalidInput(
                f"household {need_in['household_id']} not found",
                errors={"json": {"household_id": ["No household with this id."]}},
            )
        if "location" not in need_in and not address:  # the household's place
            need_in = {**need_in, "location": {"lat": household.location.lat, "lon": household.location.lon}}
            address = household.address
    if "location" in need_in:
        location = Location(**need_in["location"])
    elif address:
        location = locate(address)
    else:
        raise InvalidInput(
            "location is required: send location as {'lat': ..., 'lon': ...} or an address",
            errors={"json": {"location": ["Missing data for required field."]}},
        )
    if need_in.get("deadline") is not None:
        deadline = need_in["deadline"]
        check_horizon("deadline", deadline, moment)
    else:
        deadline = moment + timedelta(seconds=spec.deadlines[priority])
    arrive_by = need_in.get("arrive_by")
    if arrive_by is not None:
        check_horizon("arrive_by", arrive_by, moment)
    # how far to search: the kind's radius, or what a dispatcher asked for; never past the maximum
    radius_km = min(float(need_in.get("radius_km") or spec.radius_km), deps.settings.max_radius_km)
    requester = need_in.get("requester") or (
        {"name": household.contact.name, "phone": household.contact.phone} if household else {}
    )
    roles = need_roles(need_in, default_skills=list(spec.skills))
    return Need(
        id=new_id("need"),
        kind=spec.name,
        status=NeedStatus.QUEUED,
        priority=priority,
        skills=sorted({s for r in roles for s in r.skills}, key=lambda s: s.value),
        location=location,
        address=address,
        # the household's people are who the need is for: their vulnerabilities with any given
        vulnerability=sorted(
            {Vulnerability(v) for v in need_in.get("vulnerability", [])}
            | set(household.vulnerability if household else []),
            key=lambda v: v.value,
        ),
        volunteers_needed=sum(r.count for r in roles),
        description=need_in.get("description"),
        requester=Requester(name=requester.get("name"), phone=requester.get("phone")),
        tracking_code=secrets.token_urlsafe(12),
        created_at=clock.iso(moment),
        updated_at=clock.iso(moment),
        deadline=clock.iso(deadline),
        created_by=principal.token_id,
        grid=need_in.get("grid") or (household.grid if household else None),
        requester_locale=Locale(requester["locale"]) if requester.get("locale") else None,
        radius_km=radius_km,
        accept_seconds=need_in.get("accept_seconds") or spec.accept_seconds[priority],
        arrive_by=clock.iso(arrive_by) if arrive_by is not None else None,
        drill=need_in.get("drill", False),
        roles=roles,
        household_id=household.id if household else None,
        favoured=household.favoured if household else [],
    )


def need_roles(need_in: dict[str, Any], *, default_skills: list[Skill]) -> list[NeedRole]:
    """Who a need asks for: its roles (each role's skills sorted, without repeats), or one role from its skills
    (the kind's when not given) and volunteers_needed (1 when not given). Roles, when given, stand for both."""

    def skill_set(names: list[str]) -> list[Skill]:
        return sorted({Skill(s) for s in names}, key=lambda s: s.value)

    if need_in.get("roles"):
        return [NeedRole(skills=skill_set(r["skills"]), count=int(r["count"])) for r in need_in["roles"]]
    skills = need_in.get("skills")
    return [
        NeedRole(
            skills=skill_set(skills) if skills is not None else list(default_skills),
            count=need_in.get("volunteers_needed", 1),
        )
    ]


def record_needs(*, deps: Deps, needs: list[Need], principal: Principal) -> None:
    """Store new needs with their first timeline event, place each in an incident, put them in the match
    backlog and tell each requester it was received: one transaction however many needs."""
    # a planned visit is routine, not trouble: it forms no incident
    placed = [
        (n, incidents.placement_request(deps, n))
        for n in needs
        if not (n.visit_id and n.kind is NeedKind.COMPANIONSHIP_VISIT)
    ]
    place = incidents.queue_placements(deps, placed)
    arrive = arrivals(deps, needs, Topic.RECEIVED)

    def also(pipe: Any) -> None:
        place(pipe)
        arrive(pipe)  # last: its replies close the transaction's

    replies = deps.store.needs.create_many(
        [
            (
                need,
                Event(
                    at=need.created_at,
                    type=EventType.CREATED,
                    actor=principal.actor,
                    detail={"kind": need.kind.value, "priority": need.priority.value, "channel": principal.role.value},
                ),
            )
            for need in needs
        ],
        also=also,
    )
    arrived(deps, replies)
    for (need, request), reply in zip(
        placed, replies[len(replies) - ARRIVAL_REPLIES - len(placed) : -ARRIVAL_REPLIES], strict=True
    ):
        placement = deps.store.incidents.placement(reply, need.id, request)
        need.incident_id = incidents.after_placement(deps, need, placement)
    # a need placed early in a batch may have been drawn into an incident a later one opened
    unplaced = [need for need in needs if need.incident_id is None]
    if len(unplaced) < len(needs):
        for need, stored in zip(unplaced, deps.store.needs.get_many([n.id for n in unplaced]), strict=True):
            need.incident_id = stored.incident_id if stored else None


def load_need(*, deps: Deps, need_id: str) -> Need:
    need = deps.store.needs.get(need_id)
    if need is None:
        raise NotFound(f"need {need_id} not found")
    return need


def volunteers_on(offers: list[Offer], *statuses: OfferStatus) -> set[str]:
    return {o.volunteer_id for o in offers if o.status in statuses}


def read_need(*, deps: Deps, need_id: str, principal: Principal) -> tuple[Need, list[Offer]]:
    """A need and its offers, if this principal may read it (otherwise 404, not revealing it exists)."""
    need = load_need(deps=deps, need_id=need_id)
    offers = deps.store.offers.of_need(need_id)
    involved = {o.volunteer_id for o in offers}
    if not access.can_read_need(principal, need, assigned=involved):
        raise NotFound(f"need {need_id} not found")
    return need, offers


def list_needs(
    *,
    deps: Deps,
    principal: Principal,
    status: NeedStatus | None = None,
    kind: NeedKind | None = None,
    priority: Priority | None = None,
    near: Location | None = None,
    radius_km: float = 10.0,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Need], str | None]:
    """Needs newest first, filtered; intake tokens see only the needs they created, captains those of their
    grids."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS, Role.INTAKE, Role.CAPTAIN)
    status = NeedStatus(status) if status else None
    created_by = principal.token_id if principal.role is Role.INTAKE else None
    grids = set(principal.grids) if principal.role is Role.CAPTAIN else None

    def keep(n: Need) -> bool:
        return (
            (status is None or n.status == status)
            and (kind is None or n.kind == kind)
            and (priority is None or n.priority == priority)
            and (created_by is None or n.created_by == created_by)
            and (grids is None or n.grid in grids)
        )

    nearby = None
    if near is not None:
        nearby = set(deps.store.needs.ids_near(lat=near.lat, lon=near.lon, radius_km=radius_km))
    return paging.filtered_page(
        ids_before=lambda before, count: deps.store.needs.ids_page(
            status=status.value if status else None, created_by=created_by, before=before, limit=count
        ),
        get_many=deps.store.needs.get_many,
        keep=keep,
        nearby=nearby,
        cursor=cursor,
        limit=limit,
    )


def team_of(*, deps: Deps, need: Need, offers: list[Offer], principal: Principal) -> list[TeamMember] | None:
    """The volunteers who accepted the need, with first name, phone and role, for its team to reach each
    other: shown to dispatchers and to the volunteers who accepted it; None for everyone else."""
    accepted = [o for o in offers if o.status is OfferStatus.ACCEPTED]
    if not access.sees_team(principal, accepted={o.volunteer_id for o in accepted}, grid=need.grid):
        return None
    members = []
    for offer, volunteer in zip(
        accepted, deps.store.volunteers.get_many([o.volunteer_id for o in accepted]), strict=True
    ):
        if volunteer is None:
            continue
        role = need.roles[offer.role] if offer.role < len(need.roles) else need.roles[0]
        members.append(
            TeamMember(
                volunteer_id=volunteer.id,
                first_name=first_name(volunteer.name),
                phone=volunteer.phone,
                role=offer.role,
                skills=list(role.skills),
            )
        )
    return members


def need_events(*, deps: Deps, need_id: str, principal: Principal) -> list[Event]:
    need, _ = read_need(deps=deps, need_id=need_id, principal=principal)
    return events_as_seen(deps=deps, need=need, principal=principal)


def need_deliveries(*, deps: Deps, need_id: str, principal: Principal) -> list[dict[str, Any]]:
    need, _ = read_need(deps=deps, need_id=need_id, principal=principal)
    return deliveries_as_seen(deps=deps, need=need, principal=principal)


def events_as_seen(*, deps: Deps, need: Need, principal: Principal) -> list[Event]:
    """The timeline of a need this reader may read: a notification's channel whole (secrets hidden) only for
    those who handle the need as a dispatcher; for everyone else only its kind (a channel's address is a phone
    number or an e-mail address, the requester's or another volunteer's)."""
    sees_contacts = access.covers_grid(principal, need.grid)
    return [event_as_seen(e, sees_contacts=sees_contacts) for e in deps.store.needs.events(need.id)]


def event_as_seen(event: Event, *, sees_contacts: bool) -> Event:
    channel = event.detail.get("channel")
    if event.type is not EventType.NOTIFICATION or not isinstance(channel, str):
        return event
    return replace(event, detail={**event.detail, "channel": channel_as_seen(channel, sees_contacts=sees_contacts)})


def deliveries_as_seen(*, deps: Deps, need: Need, principal: Principal) -> list[dict[str, Any]]:
    """The notifications of a need this reader may read, with their attempts, each channel as the reader may see
    it (events_as_seen)."""
    sees_contacts = access.covers_grid(principal, need.grid)

    def seen(url: str | None) -> str | None:
        return channel_as_seen(url, sees_contacts=sees_contacts) if url else url

    found = []
    for d in deps.store.deliveries.of_need(need.id):
        channels = d["channels"]
        index = min(int(d["channel_index"]), max(len(channels) - 1, 0))
        delivery = {k: v for k, v in d.items() if k != "channels"}
        delivery["channel"] = seen(mask_channel(channels[index])) if channels else None
        delivery["attempts"] = [{**a, "channel": seen(a.get("channel"))} for a in d["attempts"]]
        found.append(delivery)
    return found


def change_status(
    *,
    deps: Deps,
    need_id: str,
    action: Action,
    actor: str,
    event_type: EventType,
    detail: dict[str, Any] | None = None,
    release_offers: bool = False,
    clear_tried: bool = False,
    unless_staffed: bool = False,
    fields: dict[str, Any] | None = None,
) -> Need:
    """Apply one lifecycle action atomically; 409 naming the current status if it is not allowed.

    release_offers ends every live offer (completed when the need is done, else withdrawn);
    clear_tried lets volunteers offered before be offered again; unless_staffed refuses when
    the need already has all the offers it asked for.
    """
    need = load_need(deps=deps, need_id=need_id)
    to = lifecycle.check(action, need.status)
    freed = (
        volunteers_on(deps.store.offers.of_need(need_id), OfferStatus.PENDING, OfferStatus.ACCEPTED)
        if release_offers
        else set()
    )
    moment = deps.clock.now()
    release = Release.NONE
    if release_offers:
        release = Release.COMPLETE if to is NeedStatus.DONE else Release.WITHDRAW
    try:
        deps.store.needs.transition(
            need_id,
            Transition(
                allowed=lifecycle.allowed_from(action),
                to=to,
                now_iso=clock.iso(moment),
                now_epoch=clock.epoch(moment),
                event=Event(at=clock.iso(moment), type=event_type, actor=actor, detail=detail or {}),
                release=release,
                release_reason=(detail or {}).get("reason", event_type.value),
                clear_tried=clear_tried,
                unless_staffed=unless_staffed,
                fields=fields or {},
            ),
        )
    except Refused as refused:
        if refused.reason is Refusal.NO_NEED:
            raise NotFound(f"need {need_id} not found") from None
        if refused.reason is Refusal.STAFFED:
            raise InvalidTransition("the need has all the offers it asked for", current=need.status.value) from None
        raise lifecycle.refusal(action, refused.detail or need.status) from None
    if to in lifecycle.RESOLVED:
        incidents.need_resolved(deps=deps, need_id=need_id)
    for volunteer_id in sorted(freed):
        # capacity came free: escalated needs nearby may now have a volunteer
        deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=volunteer_id)
    return load_need(deps=deps, need_id=need_id)


def cancel_need(*, deps: Deps, need_id: str, reason: str, principal: Principal) -> Need:
    """Cancel a need; its volunteers are released and told."""
    if principal.role is not Role.INTAKE:
        access.require_grid(principal, load_need(deps=deps, need_id=need_id).grid)
    need, offers = read_need(deps=deps, need_id=need_id, principal=principal)
    involved = volunteers_on(offers, OfferStatus.PENDING, OfferStatus.ACCEPTED)
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.CANCEL,
        actor=principal.actor,
        event_type=EventType.CANCELLED,
        detail={"reason": reason},
        release_offers=True,
        fields={"status_reason": reason},
    )
    for volunteer_id in sorted(involved):
        announce(deps, Topic.CANCELLED, need_id, volunteer_id=volunteer_id)
    return need


def defer_need(*, deps: Deps, need_id: str, reason: str, principal: Principal) -> Need:
    """Park a need that cannot be done yet, with the reason the requester will see."""
    access.require_grid(principal, load_need(deps=deps, need_id=need_id).grid)
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.DEFER,
        actor=principal.actor,
        event_type=EventType.DEFERRED,
        detail={"reason": reason},
        release_offers=True,
        fields={"status_reason": reason},
    )
    announce(deps, Topic.DEFERRED, need_id)
    return need


def reopen_need(*, deps: Deps, need_id: str, reason: str | None, actor: str) -> Need:
    """Put a need back in the queue for a fresh match."""
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=Action.REOPEN,
        actor=actor,
        event_type=EventType.REOPENED,
        detail={"reason": reason} if reason else {},
        release_offers=True,
        clear_tried=True,
        fields={"status_reason": reason or "", "rating": "", "feedback_comment": ""},
    )
    wait_for_match(deps, need)
    return need


def change_priority(*, deps: Deps, need_id: str, priority: Priority, principal: Principal) -> Need:
    """A dispatcher (or a captain of its grid) raises or lowers a need's priority; it counts from the next match
    on (the deadline stays).

    409 once the need is done, closed or cancelled."""
    need = load_need(deps=deps, need_id=need_id)
    access.require_grid(principal, need.grid)
    if need.status in (NeedStatus.DONE, NeedStatus.CLOSED, NeedStatus.CANCELLED):
        raise InvalidTransition(f"cannot change the priority of a {need.status.value} need", current=need.status.value)
    if need.priority is priority:
        return need
    deps.store.needs.set_fields(need_id, {"priority": priority.value})
    deps.store.needs.add_event(
        need_id,
        Event(
            at=clock.iso(deps.clock.now()),
            type=EventType.PRIORITY_CHANGED,
            actor=principal.actor,
            detail={"from": need.priority.value, "to": priority.value},
        ),
    )
    need.priority = priority
    if need.status is NeedStatus.QUEUED:
        wait_for_match(deps, need)  # its place in the backlog follows the new priority
    return need


PROGRESS_ACTIONS = {
    NeedStatus.EN_ROUTE: (Action.EN_ROUTE, EventType.EN_ROUTE, Topic.EN_ROUTE),
    NeedStatus.ON_SITE: (Action.ON_SITE, EventType.ON_SITE, None),
    NeedStatus.DONE: (Action.DONE, EventType.DONE, Topic.DONE),
}
"""Each progress report: its lifecycle action, its timeline event, and what the requester hears (if anything)."""


def report_progress(*, deps: Deps, need_id: str, status: NeedStatus, note: str | None, principal: Principal) -> Need:
    """An assigned volunteer (or a dispatcher) reports en route, on site or done.

    A volunteer who held the need (its offer is completed) and reports again gets the 409 of
    the lifecycle naming the current status; a volunteer who never held it gets 403.
    """
    need, offers = read_need(deps=deps, need_id=need_id, principal=principal)
    action, event_type, topic = PROGRESS_ACTIONS[status]
    accepted = volunteers_on(offers, OfferStatus.ACCEPTED)
    if principal.role is not Role.DISPATCHER and not (
        principal.volunteer_id in accepted and access.acts_as_volunteer(principal, principal.volunteer_id)
    ):
        completed = volunteers_on(offers, OfferStatus.COMPLETED)
        if principal.volunteer_id in completed and access.acts_as_volunteer(principal, principal.volunteer_id):
            lifecycle.check(action, need.status)
        raise Forbidden("only a volunteer assigned to this need, or a dispatcher, may report progress")
    detail: dict[str, Any] = {"note": note} if note else {}
    if principal.volunteer_id:
        detail["volunteer_id"] = principal.volunteer_id
    moment = deps.clock.now()
    fields: dict[str, Any] = {"done_at": clock.iso(moment)} if action is Action.DONE else {}
    need = change_status(
        deps=deps,
        need_id=need_id,
        action=action,
        actor=principal.actor,
        event_type=event_type,
        detail=detail,
        release_offers=action is Action.DONE,
        fields=fields,
    )
    if action is Action.DONE:
        at = moment + timedelta(seconds=deps.settings.auto_close_seconds)
        deps.jobs.enqueue(jobs.AUTO_CLOSE, queue=jobs.LOW, at=at, need_id=need.id)
    if topic is not None:
        announce(deps, topic, need_id)
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
        event_type=EventType.CLOSED,
        detail=detail,
        fields=fields,
    )


def need_for_tracking(*, deps: Deps, code: str) -> Need:
    need_id = deps.store.needs.id_for_tracking(code)
    need = deps.store.needs.get(need_id) if need_id else None
    if need is None:
        raise NotFound("no need with this tracking code")
    return need


def within_reopen_window(*, deps: Deps, need: Need) -> bool:
    """A closed need its requester may still reopen by feedback (closed less than the reopen window ago)."""
    closed_at = deps.store.needs.field(need.id, "status_at") or need.updated_at
    return deps.clock.now() - clock.parse(closed_at) <= timedelta(seconds=deps.settings.reopen_window_seconds)


def takes_feedback(*, deps: Deps, need: Need) -> bool:
    """The requester may give feedback now: the need is done, or closed within the reopen window."""
    if need.status is NeedStatus.DONE:
        return True
    return need.status is NeedStatus.CLOSED and within_reopen_window(deps=deps, need=need)


def feedback_refused(status: NeedStatus) -> FeedbackRefused:
    """Why a need in this status takes no rating: already closed, or not done (yet, or again)."""
    if status is NeedStatus.CLOSED:
        return FeedbackRefused(
            "already closed: the need is closed and its feedback taken (fixed: false reopens it within the reopen "
            "window)",
            current=status.value,
            cause="closed",
        )
    return FeedbackRefused(
        f"not done yet: the need is {status.value}; feedback is taken once it is done",
        current=status.value,
        cause="not_done",
    )


def give_feedback(*, deps: Deps, code: str, rating: int, comment: str | None, fixed: bool) -> Need:
    """The requester confirms (closes with a rating) or says it is not fixed (reopens); FeedbackRefused says why
    not: not done yet, already closed (fixed), closed too long ago (not fixed)."""
    need = need_for_tracking(deps=deps, code=code)
    if need.status not in (NeedStatus.DONE, NeedStatus.CLOSED):
        raise feedback_refused(need.status)
    if fixed:
        if need.status is NeedStatus.CLOSED:
            raise feedback_refused(need.status)
        try:
            return close_need(deps=deps, need_id=need.id, actor="requester", rating=rating, comment=comment)
        except InvalidTransition as refused:  # its status changed meanwhile
            raise feedback_refused(NeedStatus(refused.current)) from None
    moment = deps.clock.now()
    if need.status is NeedStatus.CLOSED and not within_reopen_window(deps=deps, need=need):
        raise FeedbackRefused(
            "closed too long ago to reopen by feedback; please submit a new request",
            current=need.status.value,
            cause="too_late",
        )
    deps.store.needs.add_event(
        need.id,
        Event(
            at=clock.iso(moment),
            type=EventType.FEEDBACK,
            actor="requester",
            detail={"rating": rating, "fixed": False, **({"comment": comment} if comment else {})},
        ),
    )
    return reopen_need(deps=deps, need_id=need.id, reason="requester says it is not fixed", actor="requester")
