"""Records to Redis hash fields and back."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

from service.models import (
    AttentionLevel,
    Contact,
    Event,
    EventType,
    Family,
    Household,
    Incident,
    IncidentStatus,
    Locale,
    Location,
    Need,
    NeedKind,
    NeedRole,
    NeedStatus,
    Offer,
    OfferStatus,
    Priority,
    Requester,
    Skill,
    Visit,
    VisitOutcome,
    VisitStatus,
    Volunteer,
    Vulnerability,
)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def encode(value: Any) -> str:
    """A Python value as a hash field: booleans 1/0, None empty (deleted), lists and dicts as JSON."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def encode_fields(fields: dict[str, Any]) -> dict[str, str]:
    return {name: encode(value) for name, value in fields.items()}


def decode_hash(data: dict[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in data.items()}


def json_list(raw: str | None) -> list[Any]:
    return json.loads(raw) if raw else []


def _opt(value: str | None) -> str | None:
    return value if value else None


def _csv(raw: str | None) -> list[str]:
    return [s for s in (raw or "").split(",") if s]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def event_json(event: Event) -> str:
    return json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":"))


def event_from_json(raw: bytes | str) -> Event:
    data = json.loads(raw)
    return Event(at=data["at"], type=EventType(data["type"]), actor=data["actor"], detail=data.get("detail") or {})


def volunteer_fields(v: Volunteer) -> dict[str, Any]:
    """The hash fields of a volunteer record (its id is in the key)."""
    return {
        "name": v.name,
        "phone": v.phone,
        "skills": ",".join(s.value for s in v.skills),
        "home_lat": round(v.home.lat, 6),
        "home_lon": round(v.home.lon, 6),
        "lat": round(v.location.lat, 6),
        "lon": round(v.location.lon, 6),
        "capacity": v.capacity,
        "load": v.load,
        "on_duty": v.on_duty,
        "channels": v.channels or None,
        "locale": v.locale.value,
        "team": v.team,
        "grid": v.grid,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "location_at": v.location_at,
        "idle_since": round(v.idle_since, 1),
        "drill": True if v.drill else None,  # kept only when set: most volunteers are not from a drill
    }


def volunteer_from_hash(volunteer_id: str, raw: dict[Any, Any]) -> Volunteer:
    d = decode_hash(raw)
    return Volunteer(
        id=volunteer_id,
        name=d["name"],
        phone=d["phone"],
        skills=[Skill(s) for s in _csv(d.get("skills"))],
        home=Location(float(d["home_lat"]), float(d["home_lon"])),
        location=Location(float(d["lat"]), float(d["lon"])),
        capacity=int(d["capacity"]),
        load=int(d.get("load", "0")),
        on_duty=d.get("on_duty") == "1",
        channels=json_list(d.get("channels")),
        locale=Locale(d.get("locale") or Locale.ZH.value),
        team=_opt(d.get("team")),
        grid=_opt(d.get("grid")),
        created_at=d["created_at"],
        updated_at=d.get("updated_at", d["created_at"]),
        location_at=d.get("location_at", d["created_at"]),
        idle_since=float(d.get("idle_since") or 0),
        drill=d.get("drill") == "1",
    )


def need_fields(n: Need) -> dict[str, str]:
    """The hash fields of a new need."""
    return encode_fields(
        {
            "id": n.id,
            "kind": n.kind,
            "status": n.status,
            "priority": n.priority,
            "skills": ",".join(s.value for s in n.skills),
            "lat": n.location.lat,
            "lon": n.location.lon,
            "address": n.address,
            "vulnerability": ",".join(v.value for v in n.vulnerability),
            "volunteers_needed": n.volunteers_needed,
            "description": n.description,
            "requester_name": n.requester.name,
            "requester_phone": n.requester.phone,
            "requester_locale": n.requester_locale,
            "tracking_code": n.tracking_code,
            "created_at": n.created_at,
            "created_epoch": repr(_epoch(n.created_at)),
            "updated_at": n.updated_at,
            "status_at": n.created_at,
            "deadline": n.deadline,
            "created_by": n.created_by,
            "grid": n.grid,
            "radius_km": n.radius_km,
            "accept_seconds": n.accept_seconds,
            "arrive_by": n.arrive_by,
            "arrive_by_epoch": repr(_epoch(n.arrive_by)) if n.arrive_by else None,
            "incident_id": n.incident_id,
            "drill": True if n.drill else None,
            "household_id": n.household_id,
            "visit_id": n.visit_id,
            "favoured": ",".join(n.favoured) or None,
            "roles": [{"skills": [s.value for s in r.skills], "count": r.count} for r in n.roles],
            "offers_made": 0,
            "accepted": 0,
            "active": 0,
        }
    )


def roles_from_hash(d: dict[str, str]) -> list[NeedRole]:
    """A need's roles with their counters (lib.lua's need_roles and role_counts): a need with one role counts its
    totals, and a need recorded before roles has one, from its skills and volunteers_needed."""
    listed = json_list(d.get("roles")) or [{"skills": _csv(d.get("skills")), "count": int(d["volunteers_needed"])}]
    if len(listed) == 1:
        counters = [(int(d.get("active") or 0), int(d.get("accepted") or 0))]
    else:
        counters = [
            (int(d.get(f"role:{i}:active") or 0), int(d.get(f"role:{i}:accepted") or 0)) for i in range(len(listed))
        ]
    return [
        NeedRole(skills=[Skill(s) for s in r["skills"]], count=int(r["count"]), active=active, accepted=accepted)
        for r, (active, accepted) in zip(listed, counters, strict=True)
    ]


def need_from_hash(raw: dict[Any, Any]) -> Need:
    d = decode_hash(raw)
    return Need(
        id=d["id"],
        kind=NeedKind(d["kind"]),
        status=NeedStatus(d["status"]),
        priority=Priority(d["priority"]),
        skills=[Skill(s) for s in _csv(d.get("skills"))],
        location=Location(float(d["lat"]), float(d["lon"])),
        address=_opt(d.get("address")),
        vulnerability=[Vulnerability(v) for v in _csv(d.get("vulnerability"))],
        volunteers_needed=int(d["volunteers_needed"]),
        description=_opt(d.get("description")),
        requester=Requester(name=_opt(d.get("requester_name")), phone=_opt(d.get("requester_phone"))),
        tracking_code=d["tracking_code"],
        created_at=d["created_at"],
        updated_at=d.get("updated_at", d["created_at"]),
        deadline=d["deadline"],
        created_by=_opt(d.get("created_by")),
        grid=_opt(d.get("grid")),
        committed_deadline=_opt(d.get("committed_deadline")),
        offers_made=int(d.get("offers_made") or 0),
        accepted=int(d.get("accepted") or 0),
        active=int(d.get("active") or 0),
        status_reason=_opt(d.get("status_reason")),
        rating=int(d["rating"]) if d.get("rating") else None,
        feedback_comment=_opt(d.get("feedback_comment")),
        flagged=d.get("flagged") == "1",
        requester_locale=Locale(d["requester_locale"]) if d.get("requester_locale") else None,
        radius_km=float(d["radius_km"]) if d.get("radius_km") else None,
        accept_seconds=int(d["accept_seconds"]) if d.get("accept_seconds") else None,
        arrive_by=_opt(d.get("arrive_by")),
        incident_id=_opt(d.get("incident_id")),
        drill=d.get("drill") == "1",
        household_id=_opt(d.get("household_id")),
        visit_id=_opt(d.get("visit_id")),
        favoured=_csv(d.get("favoured")),
        roles=roles_from_hash(d),
    )


def incident_from_hash(raw: dict[Any, Any], need_ids: list[str]) -> Incident:
    d = decode_hash(raw)
    return Incident(
        id=d["id"],
        family=Family(d["family"]),
        status=IncidentStatus(d["status"]),
        centre=Location(float(d["lat"]), float(d["lon"])),
        radius_km=float(d["radius_km"]),
        reach_km=float(d.get("reach_km") or d["radius_km"]),
        opened_at=d["opened_at"],
        need_ids=need_ids,
        closed_at=_opt(d.get("closed_at")),
        note=_opt(d.get("note")),
        declared_by=_opt(d.get("declared_by")),
    )


def offer_from_hash(raw: dict[Any, Any]) -> Offer:
    d = decode_hash(raw)
    return Offer(
        id=d["id"],
        need_id=d["need_id"],
        volunteer_id=d["volunteer_id"],
        status=OfferStatus(d["status"]),
        created_at=d["created_at"],
        expires_at=d["expires_at"],
        distance_km=float(d.get("distance_km") or 0),
        code=d.get("code", ""),
        reason=_opt(d.get("reason")),
        decided_at=_opt(d.get("decided_at")),
        role=int(d.get("role") or 0),
    )


def household_fields(h: Household) -> dict[str, Any]:
    """The hash fields of a household record (None deletes a field)."""
    return {
        "id": h.id,
        "address": h.address,
        "lat": round(h.location.lat, 6),
        "lon": round(h.location.lon, 6),
        "grid": h.grid,
        "vulnerability": ",".join(v.value for v in h.vulnerability) or None,
        "contact_name": h.contact.name,
        "contact_phone": h.contact.phone,
        "attention_level": h.attention_level.value,
        "preferred_volunteers": ",".join(h.preferred_volunteers) or None,
        "notes": h.notes,
        "created_at": h.created_at,
        "updated_at": h.updated_at,
    }


def household_from_hash(raw: dict[Any, Any]) -> Household:
    d = decode_hash(raw)
    return Household(
        id=d["id"],
        address=d.get("address", ""),
        location=Location(float(d["lat"]), float(d["lon"])),
        grid=_opt(d.get("grid")),
        vulnerability=[Vulnerability(v) for v in _csv(d.get("vulnerability"))],
        contact=Contact(name=d.get("contact_name", ""), phone=d.get("contact_phone", "")),
        attention_level=AttentionLevel(d["attention_level"]),
        preferred_volunteers=_csv(d.get("preferred_volunteers")),
        notes=_opt(d.get("notes")),
        created_at=d["created_at"],
        updated_at=d.get("updated_at", d["created_at"]),
        open_visit=_opt(d.get("open_visit")),
        last_visitor=_opt(d.get("last_visitor")),
    )


def visit_from_hash(raw: dict[Any, Any]) -> Visit:
    d = decode_hash(raw)
    return Visit(
        id=d["id"],
        household_id=d["household_id"],
        attention_level=AttentionLevel(d["attention_level"]),
        status=VisitStatus(d["status"]),
        due_at=d["due_at"],
        period_end=d["period_end"],
        created_at=d["created_at"],
        need_id=_opt(d.get("need_id")),
        outcome=VisitOutcome(d["outcome"]) if d.get("outcome") else None,
        help_kind=NeedKind(d["help_kind"]) if d.get("help_kind") else None,
        note=_opt(d.get("note")),
        help_need_id=_opt(d.get("help_need_id")),
        visitor_id=_opt(d.get("visitor_id")),
        closed_at=_opt(d.get("closed_at")),
    )
