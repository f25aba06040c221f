"""Shaping records for an audience: what each caller may see of a need, volunteer or offer."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from service import access
from service.incidents import Report, circle
from service.models import (
    Event,
    Household,
    Incident,
    Need,
    Offer,
    OfferStatus,
    Principal,
    Role,
    TeamMember,
    Visit,
    Volunteer,
)
from service.privacy import first_name, mask_channel

__all__ = ["first_name", "mask_channel"]

LIVE_OFFERS = (OfferStatus.PENDING, OfferStatus.ACCEPTED, OfferStatus.COMPLETED)
"""Offers shown as a need's assignments: live ones, and the work that was done."""


def volunteer_view(v: Volunteer) -> dict[str, Any]:
    data = asdict(v)
    data["channels"] = [mask_channel(c) for c in v.channels]
    data.pop("idle_since")
    return data


def need_view(
    need: Need, offers: list[Offer], principal: Principal, *, team: list[TeamMember] | None = None
) -> dict[str, Any]:
    """A need as this caller may see it: private details only for dispatchers and accepted volunteers, and the
    team (when given: service.needs.team_of decides who sees it)."""
    accepted = {o.volunteer_id for o in offers if o.status is OfferStatus.ACCEPTED}
    private = access.sees_private_details(principal, accepted=accepted, grid=need.grid)
    data = asdict(need)
    data.pop("created_by")
    data.pop("accepted")
    data.pop("active")
    completed = Counter(o.role for o in offers if o.status is OfferStatus.COMPLETED)
    # a role's live acceptances, and once the work is done the volunteers who did it
    data["roles"] = [
        {"skills": r.skills, "count": r.count, "filled": r.accepted + completed[index]}
        for index, r in enumerate(need.roles)
    ]
    if team is not None:
        data["team"] = [asdict(member) for member in team]
    data["assignments"] = [
        {
            "volunteer_id": o.volunteer_id,
            "status": o.status,
            "offer_id": o.id,
            "distance_km": o.distance_km,
            "role": o.role,
        }
        for o in offers
        if o.status in LIVE_OFFERS
    ]
    if not private:
        data["address"] = None
        data["requester"] = {"name": need.requester.name, "phone": None}
        data["location"] = {"lat": round(need.location.lat, 2), "lon": round(need.location.lon, 2)}
    if not (
        principal.role is Role.DISPATCHER or (principal.role is Role.INTAKE and need.created_by == principal.token_id)
    ):
        data.pop("tracking_code")
    return data


def offer_view(offer: Offer, need: Need | None) -> dict[str, Any]:
    data = asdict(offer)
    if need is not None:
        data["need"] = {
            "kind": need.kind,
            "priority": need.priority,
            "status": need.status,
            "description": need.description,
            "vulnerability": need.vulnerability,
            "deadline": need.deadline,
            "location": {"lat": round(need.location.lat, 2), "lon": round(need.location.lon, 2)},
            "skills": need.roles[offer.role].skills if offer.role < len(need.roles) else need.skills,
        }
    return data


def incident_view(incident: Incident, report: Report) -> dict[str, Any]:
    return {
        "id": incident.id,
        "family": incident.family,
        "status": incident.status,
        "need_ids": incident.need_ids,
        "counts": report.counts,
        "vulnerable": report.vulnerable,
        "area": circle(incident.centre, incident.radius_km),
        "centre": {"lat": incident.centre.lat, "lon": incident.centre.lon},
        "radius_km": incident.radius_km,
        "opened_at": incident.opened_at,
        "closed_at": incident.closed_at,
        "note": incident.note,
        "declared_by": incident.declared_by,
    }


def event_view(event: Event) -> dict[str, Any]:
    return asdict(event)


def public_event(event: Event) -> dict[str, Any]:
    """A timeline entry for the requester: who acted by role only, no ids or contact details."""
    role = event.actor.split(":", 1)[0]
    detail = {k: v for k, v in event.detail.items() if k in ("reason", "note", "rating", "comment", "distance_km")}
    return {"at": event.at, "type": event.type, "actor": role, "detail": detail}


def household_view(household: Household, principal: Principal) -> dict[str, Any]:
    """A household as this caller may see it: the contact's phone, the exact address and place, and the notes
    only for those in charge of it (access.sees_household_private); others see the place rounded to about 1 km."""
    data = asdict(household)
    data.pop("open_visit")
    if not access.sees_household_private(principal, household):
        data["address"] = None
        data["notes"] = None
        data["contact"] = {"name": household.contact.name, "phone": None}
        data["location"] = {"lat": round(household.location.lat, 2), "lon": round(household.location.lon, 2)}
    return data


def visit_view(visit: Visit) -> dict[str, Any]:
    return asdict(visit)
