"""The care register: households watched at an attention level (red, orange, yellow, green) and visited at its
cadence (service.visits). Contact phones and exact places are for those in charge of a household only."""

from __future__ import annotations

from typing import Any

from service import access, clock, needs, paging, visits
from service.backlog import announce
from service.deps import Deps
from service.exceptions import Conflict, InvalidInput, InvalidTransition, NotFound
from service.ids import new_id
from service.lifecycle import Action
from service.models import (
    AttentionLevel,
    Contact,
    EventType,
    Household,
    Location,
    OfferStatus,
    Principal,
    Role,
    Topic,
    VisitStatus,
    Vulnerability,
)
from service.store import Refusal, Refused
from service.store.codec import household_fields

CHANGED_FIELDS = {
    "address": ("address",),
    "location": ("lat", "lon"),
    "grid": ("grid",),
    "vulnerability": ("vulnerability",),
    "contact": ("contact_name", "contact_phone"),
    "attention_level": ("attention_level",),
    "preferred_volunteers": ("preferred_volunteers",),
    "notes": ("notes",),
}
"""The record's fields each change writes (only those, so two changes of different fields both stand)."""


def _check_volunteers(deps: Deps, volunteer_ids: list[str]) -> list[str]:
    """The preferred volunteers, each once in the order given; 422 naming the field when one is unknown."""
    ordered = list(dict.fromkeys(volunteer_ids))
    unknown = [vid for vid, v in zip(ordered, deps.store.volunteers.get_many(ordered), strict=True) if v is None]
    if unknown:
        raise InvalidInput(
            f"unknown volunteers: {', '.join(unknown)}",
            errors={"json": {"preferred_volunteers": [f"No volunteer {vid}." for vid in unknown]}},
        )
    return ordered


def _place(deps: Deps, household_in: dict[str, Any]) -> Location:
    if "location" in household_in:
        return Location(**household_in["location"])
    return deps.geocoder.locate(household_in["address"])


def _save(
    deps: Deps, household: Household, *, create: bool, changed: set[str], previous: Household | None = None
) -> Household:
    fields = household_fields(household)
    if not create:
        fields = {name: fields[name] for change in changed for name in CHANGED_FIELDS.get(change, ())} | {
            "updated_at": household.updated_at
        }
    replan = create or "attention_level" in changed
    moment = deps.clock.now()
    level = household.attention_level
    try:
        saved = deps.store.households.save(
            household.id,
            fields,
            create=create,
            phone=household.contact.phone,
            level=level.value,
            now_iso=clock.iso(moment),
            plan=visits.plan_for(deps, household.id, level, after=moment) if replan else None,
            cadence_seconds=visits.cadence_days(deps.settings.visit_cadence, level) * 86400,
        )
    except Refused as refused:
        if refused.reason is Refusal.NO_HOUSEHOLD:
            raise NotFound(f"household {household.id} not found") from None
        if refused.reason is Refusal.PHONE_TAKEN:
            raise Conflict(
                f"household {refused.detail} has this contact phone",
                errors={"json": {"contact": {"phone": [f"Household {refused.detail} has this contact phone."]}}},
            ) from None
        raise
    if saved.cancelled:
        was_level = previous.attention_level if previous else level
        visits.visit_changed(deps, saved.cancelled, level=was_level, was=VisitStatus.PLANNED, now=VisitStatus.CANCELLED)
    if saved.planned:
        visits.visit_changed(deps, saved.planned, level=level, was=None, now=VisitStatus.PLANNED)
    stored = deps.store.households.get(household.id)
    if stored is None:
        raise NotFound(f"household {household.id} not found")
    return stored


def create_household(*, deps: Deps, household_in: dict[str, Any], principal: Principal) -> Household:
    """Register a household and plan its first visit at its level's cadence.

    household_in: address, location {lat, lon} (else the address is geocoded), grid, vulnerability,
    contact {name, phone}, attention_level, preferred_volunteers, notes. 409 when another household has the
    contact phone (find_household_by_phone finds it, to update it instead). Dispatchers, or a captain for a
    household of their grids (403 otherwise)."""
    access.require_role(principal, Role.DISPATCHER, Role.CAPTAIN)
    now = clock.iso(deps.clock.now())
    contact = household_in["contact"]
    household = Household(
        id=new_id("hh"),
        address=household_in["address"],
        location=_place(deps, household_in),
        grid=household_in.get("grid"),
        vulnerability=sorted({Vulnerability(v) for v in household_in.get("vulnerability", [])}, key=lambda v: v.value),
        contact=Contact(name=contact["name"], phone=contact["phone"]),
        attention_level=AttentionLevel(household_in["attention_level"]),
        preferred_volunteers=_check_volunteers(deps, list(household_in.get("preferred_volunteers") or [])),
        notes=household_in.get("notes"),
        created_at=now,
        updated_at=now,
    )
    access.require_in_charge_of_household(principal, household)
    return _save(deps, household, create=True, changed=set(CHANGED_FIELDS))


def update_household(*, deps: Deps, household_id: str, changes: dict[str, Any], principal: Principal) -> Household:
    """Change a household: only the fields sent change. A new attention level replans its open visit at once
    (a planned one is replaced; a due one keeps going, with the new level's period). A captain changes the
    households of their grids, and moves one only to another of their grids (403 otherwise)."""
    household = _load_to_change(deps, household_id, principal)
    previous = Household(**{**household.__dict__})
    if "address" in changes:
        household.address = changes["address"]
    if "location" in changes:
        household.location = Location(**changes["location"])
    if "grid" in changes:
        household.grid = changes["grid"]
    if "vulnerability" in changes:
        household.vulnerability = sorted({Vulnerability(v) for v in changes["vulnerability"]}, key=lambda v: v.value)
    if "contact" in changes:
        contact = changes["contact"]  # only its fields sent change
        household.contact = Contact(
            name=contact.get("name", household.contact.name), phone=contact.get("phone", household.contact.phone)
        )
    if "attention_level" in changes:
        household.attention_level = AttentionLevel(changes["attention_level"])
    if "preferred_volunteers" in changes:
        household.preferred_volunteers = _check_volunteers(deps, list(changes["preferred_volunteers"] or []))
    if "notes" in changes:
        household.notes = changes["notes"]
    household.updated_at = clock.iso(deps.clock.now())
    access.require_in_charge_of_household(principal, household)
    return _save(deps, household, create=False, changed=set(changes), previous=previous)


def delete_household(*, deps: Deps, household_id: str, principal: Principal) -> None:
    """Remove a household from the register; its open visit is cancelled (and its need, if one is out).
    Dispatchers, or a captain for a household of their grids (403 otherwise)."""
    household = _load_to_change(deps, household_id, principal)
    try:
        cancelled, need_id, was = deps.store.households.delete(household_id, now_iso=clock.iso(deps.clock.now()))
    except Refused:
        raise NotFound(f"household {household_id} not found") from None
    if cancelled:
        visits.visit_changed(deps, cancelled, level=household.attention_level, was=was, now=VisitStatus.CANCELLED)
    if need_id and deps.store.needs.get(need_id) is not None:
        involved = needs.volunteers_on(deps.store.offers.of_need(need_id), OfferStatus.PENDING, OfferStatus.ACCEPTED)
        reason = "the household left the care register"
        try:
            needs.change_status(
                deps=deps,
                need_id=need_id,
                action=Action.CANCEL,
                actor=principal.actor,
                event_type=EventType.CANCELLED,
                detail={"reason": reason},
                release_offers=True,
                fields={"status_reason": reason},
            )
        except InvalidTransition:
            return  # already resolved
        for volunteer_id in sorted(involved):
            announce(deps, Topic.CANCELLED, need_id, volunteer_id=volunteer_id)


def _load_to_change(deps: Deps, household_id: str, principal: Principal) -> Household:
    """A household this principal is about to change: 404 when there is none, 403 when it is not in their
    charge (a captain and a household of another grid: as with the needs of another grid)."""
    access.require_role(principal, Role.DISPATCHER, Role.CAPTAIN)
    household = deps.store.households.get(household_id)
    if household is None:
        raise NotFound(f"household {household_id} not found")
    access.require_in_charge_of_household(principal, household)
    return household


def get_household(*, deps: Deps, household_id: str, principal: Principal) -> Household:
    """A household, if this principal may read it (otherwise 404, not revealing it exists)."""
    household = deps.store.households.get(household_id)
    if household is None or not access.can_read_household(principal, household):
        raise NotFound(f"household {household_id} not found")
    return household


def find_household_by_phone(*, deps: Deps, phone: str) -> Household | None:
    """The household whose contact phone this is (contact phones are unique in the register), or None."""
    household_id = deps.store.households.id_for_phone(phone)
    return deps.store.households.get(household_id) if household_id else None


def list_households(
    *,
    deps: Deps,
    principal: Principal,
    grid: str | None = None,
    attention_level: AttentionLevel | None = None,
    near: Location | None = None,
    radius_km: float = 10.0,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Household], str | None]:
    """Households newest first, filtered by grid, attention level and nearness (a GEO search); a captain's, of
    their grids only."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS, Role.CAPTAIN)
    if principal.role is Role.CAPTAIN:
        if grid is not None and grid not in principal.grids:
            return [], None  # none of another grid's households is theirs to see
        if grid is None and len(principal.grids) == 1:
            grid = principal.grids[0]  # the grid's own index: a page is not a scan of the whole register
    level = AttentionLevel(attention_level) if attention_level else None

    def keep(h: Household) -> bool:
        return (
            (grid is None or h.grid == grid)
            and (level is None or h.attention_level == level)
            and access.can_read_household(principal, h)
        )

    nearby = None
    if near is not None:
        nearby = set(deps.store.households.ids_near(lat=near.lat, lon=near.lon, radius_km=radius_km))
    return paging.filtered_page(
        ids_before=lambda before, count: deps.store.households.ids_page(
            grid=grid, level=level.value if level else None, before=before, limit=count
        ),
        get_many=deps.store.households.get_many,
        keep=keep,
        nearby=nearby,
        cursor=cursor,
        limit=limit,
    )
