"""Showing records on the console's pages: names in the reader's language, ages, and the map's GeoJSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_babel import get_locale, gettext, lazy_gettext

from service import board, incidents
from service.board import Why
from service.deps import Deps
from service.messages import FAMILY_NAMES, KIND_NAMES, PRIORITY_NAMES
from service.models import EventType, IncidentStatus, NeedStatus, OfferStatus, Principal

OPEN_STATUSES = [s for s in NeedStatus if s not in (NeedStatus.DONE, NeedStatus.CLOSED, NeedStatus.CANCELLED)]
MAP_NEEDS_PER_STATUS = 500
MAP_VOLUNTEERS = 1000
HOLDING_VOLUNTEERS = (NeedStatus.OFFERED, NeedStatus.ASSIGNED, NeedStatus.EN_ROUTE, NeedStatus.ON_SITE)
"""Needs whose offers hold volunteers: on the map too when that leaves them no room for more."""

STATUS_NAMES = {
    "queued": lazy_gettext("queued"),
    "matching": lazy_gettext("matching"),
    "offered": lazy_gettext("offered"),
    "assigned": lazy_gettext("assigned"),
    "en_route": lazy_gettext("en route"),
    "on_site": lazy_gettext("on site"),
    "done": lazy_gettext("done"),
    "closed": lazy_gettext("closed"),
    "escalated": lazy_gettext("escalated"),
    "deferred": lazy_gettext("deferred"),
    "cancelled": lazy_gettext("cancelled"),
}
WHY_NAMES = {
    Why.ESCALATED: lazy_gettext("escalated"),
    Why.OVERDUE: lazy_gettext("past its deadline"),
    Why.AT_RISK: lazy_gettext("deadline at risk"),
    Why.FLAGGED: lazy_gettext("notification failed"),
    Why.DEFERRED: lazy_gettext("deferred"),
}
SKILL_NAMES = {
    "general": lazy_gettext("general"),
    "heavy_lifting": lazy_gettext("heavy lifting"),
    "driving": lazy_gettext("driving"),
    "tanker_truck": lazy_gettext("tanker truck"),
    "plumbing": lazy_gettext("plumbing"),
    "electrical": lazy_gettext("electrical"),
    "heating": lazy_gettext("heating"),
    "cooking": lazy_gettext("cooking"),
    "medical": lazy_gettext("medical"),
    "mediation": lazy_gettext("mediation"),
    "tutoring": lazy_gettext("tutoring"),
}
VULNERABILITY_NAMES = {
    "elderly_alone": lazy_gettext("elderly alone"),
    "disabled": lazy_gettext("disabled"),
    "child": lazy_gettext("child"),
    "livestock": lazy_gettext("livestock"),
    "medical": lazy_gettext("medical"),
}

EVENT_NAMES = {
    EventType.CREATED: lazy_gettext("received"),
    EventType.MATCHING_STARTED: lazy_gettext("matching started"),
    EventType.OFFERED: lazy_gettext("offered"),
    EventType.ASSIGNED_BY_DISPATCHER: lazy_gettext("assigned by a dispatcher"),
    EventType.ACCEPTED: lazy_gettext("accepted"),
    EventType.ASSIGNED: lazy_gettext("assigned"),
    EventType.OFFER_DECLINED: lazy_gettext("offer declined"),
    EventType.OFFER_EXPIRED: lazy_gettext("offer expired"),
    EventType.OFFER_WITHDRAWN: lazy_gettext("offer withdrawn"),
    EventType.OFFER_PREEMPTED: lazy_gettext("offer given to a more urgent need"),
    EventType.ESCALATED: lazy_gettext("escalated"),
    EventType.REMATCH: lazy_gettext("rematch"),
    EventType.DEFERRED: lazy_gettext("deferred"),
    EventType.REOPENED: lazy_gettext("reopened"),
    EventType.CANCELLED: lazy_gettext("cancelled"),
    EventType.EN_ROUTE: lazy_gettext("en route"),
    EventType.ON_SITE: lazy_gettext("on site"),
    EventType.DONE: lazy_gettext("done"),
    EventType.CLOSED: lazy_gettext("closed"),
    EventType.FEEDBACK: lazy_gettext("feedback"),
    EventType.OVERDUE: lazy_gettext("past its deadline"),
    EventType.NOTIFICATION: lazy_gettext("notification"),
    EventType.NOTIFICATION_UNDELIVERABLE: lazy_gettext("notification failed"),
    EventType.INCIDENT_JOINED: lazy_gettext("joined an incident"),
    EventType.ESCALATION_STEP: lazy_gettext("escalation step"),
    EventType.ESCALATION_ACKNOWLEDGED: lazy_gettext("escalation acknowledged"),
    EventType.ESCALATION_LADDER_ENDED: lazy_gettext("escalation ladder ended"),
    EventType.VISIT_OUTCOME: lazy_gettext("visit outcome"),
    EventType.VISIT_OVERDUE: lazy_gettext("visit overdue"),
    EventType.PRIORITY_CHANGED: lazy_gettext("priority changed"),
}
"""What each step on a need's timeline is called."""
OFFER_STATUS_NAMES = {
    OfferStatus.PENDING: lazy_gettext("waiting for an answer"),
    OfferStatus.ACCEPTED: lazy_gettext("accepted"),
    OfferStatus.DECLINED: lazy_gettext("declined"),
    OfferStatus.EXPIRED: lazy_gettext("expired"),
    OfferStatus.WITHDRAWN: lazy_gettext("withdrawn"),
    OfferStatus.COMPLETED: lazy_gettext("completed"),
}
INCIDENT_STATUS_NAMES = {
    IncidentStatus.OPEN: lazy_gettext("open"),
    IncidentStatus.CLOSED: lazy_gettext("closed"),
}
ROLE_NAMES = {
    "dispatcher": lazy_gettext("dispatcher"),
    "ops": lazy_gettext("ops (read only)"),
}
"""Who is signed in, as the console's header says it."""


def lang() -> str:
    return str(get_locale() or "en")


def from_table(table: dict[str, dict[str, str]], value: Any) -> str:
    key = str(getattr(value, "value", value))
    return table.get(lang(), {}).get(key) or key.replace("_", " ")


def kind_name(value: Any) -> str:
    return from_table(KIND_NAMES, value)


def family_name(value: Any) -> str:
    return from_table(FAMILY_NAMES, value)


def priority_name(value: Any) -> str:
    return from_table(PRIORITY_NAMES, value)


def named(table: dict[Any, Any]) -> Any:
    def name(value: Any) -> str:
        key = getattr(value, "value", value)
        return str(table.get(key) or table.get(value) or str(key).replace("_", " "))

    return name


def role_name(value: Any) -> str:
    return str(named(ROLE_NAMES)(value))


def age(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 4 h' (in Chinese 45 秒, 12 分钟, ...)."""
    s = int(seconds)
    if s < 60:
        return str(gettext("%(s)d s", s=s))
    if s < 3600:
        return str(gettext("%(m)d min", m=s // 60))
    if s < 86400:
        return str(gettext("%(h)d h %(m)d min", h=s // 3600, m=s % 3600 // 60))
    return str(gettext("%(d)d d %(h)d h", d=s // 86400, h=s % 86400 // 3600))


def short_time(iso: str | None) -> str:
    """'2026-11-29T15:18:02.123Z' as '11-29 15:18:02' (UTC)."""
    if not iso:
        return ""
    return f"{iso[5:10]} {iso[11:19]}"


def register(blp: Blueprint) -> None:
    """The filters and names the console's templates use."""
    filters = {
        "kind_name": kind_name,
        "family_name": family_name,
        "priority_name": priority_name,
        "status_name": named(STATUS_NAMES),
        "why_name": named(WHY_NAMES),
        "skill_name": named(SKILL_NAMES),
        "vulnerability_name": named(VULNERABILITY_NAMES),
        "event_name": named(EVENT_NAMES),
        "offer_status_name": named(OFFER_STATUS_NAMES),
        "incident_status_name": named(INCIDENT_STATUS_NAMES),
        "age": age,
        "short_time": short_time,
    }
    for name, function in filters.items():
        blp.add_app_template_filter(function, name)


def point(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": properties}


def map_features(*, deps: Deps, principal: Principal) -> dict[str, Any]:
    """Open needs (by priority and status), on-duty volunteers with their load (those with room, and those whose
    room the shown needs took), open incidents as areas, and
    each grid as the box around its needs and volunteers: one GeoJSON FeatureCollection."""
    board.counts(deps=deps, principal=principal)  # the same role rule as the board
    store = deps.store
    features: list[dict[str, Any]] = []
    boxes: dict[str, list[float]] = {}

    def widen(grid: str | None, lon: float, lat: float) -> None:
        if not grid:
            return
        box = boxes.setdefault(grid, [lon, lat, lon, lat])
        box[0], box[1], box[2], box[3] = min(box[0], lon), min(box[1], lat), max(box[2], lon), max(box[3], lat)

    ids = [i for status in OPEN_STATUSES for i in store.needs.ids_with_status(status, limit=MAP_NEEDS_PER_STATUS)]
    shown = [need for need in store.needs.get_many(ids) if need is not None]
    for need in shown:
        widen(need.grid, need.location.lon, need.location.lat)
        features.append(
            point(
                need.location.lon,
                need.location.lat,
                {
                    "layer": "need",
                    "id": need.id,
                    "priority": need.priority.value,
                    "status": need.status.value,
                    "kind": kind_name(need.kind),
                    "status_name": str(STATUS_NAMES[need.status.value]),
                },
            )
        )
    available = store.volunteers.available_near(
        skills=["general"], lat=0.0, lon=0.0, radius_km=20_038.0, count=MAP_VOLUNTEERS
    )
    working = store.offers.of_needs([need.id for need in shown if need.status in HOLDING_VOLUNTEERS])
    busy = [o.volunteer_id for o in working if o.status in (OfferStatus.PENDING, OfferStatus.ACCEPTED)]
    on_map = list(dict.fromkeys([*available, *busy]))[:MAP_VOLUNTEERS]  # those with room, then those at capacity
    for volunteer in store.volunteers.get_many(on_map):
        if volunteer is None or not volunteer.on_duty:
            continue
        widen(volunteer.grid, volunteer.location.lon, volunteer.location.lat)
        features.append(
            point(
                volunteer.location.lon,
                volunteer.location.lat,
                {
                    "layer": "volunteer",
                    "id": volunteer.id,
                    "name": volunteer.name,
                    "load": volunteer.load,
                    "capacity": volunteer.capacity,
                },
            )
        )
    open_incidents, _ = incidents.list_incidents(deps=deps, principal=principal, status=IncidentStatus.OPEN, limit=100)
    for incident in open_incidents:
        features.append(
            {
                "type": "Feature",
                "geometry": incidents.circle(incident.centre, incident.radius_km),
                "properties": {
                    "layer": "incident",
                    "id": incident.id,
                    "family": family_name(incident.family),
                    "needs": len(incident.need_ids),
                },
            }
        )
    for grid, (west, south, east, north) in sorted(boxes.items()):
        pad = 0.005
        ring = [
            [west - pad, south - pad],
            [east + pad, south - pad],
            [east + pad, north + pad],
            [west - pad, north + pad],
            [west - pad, south - pad],
        ]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"layer": "grid", "id": grid},
            }
        )
    return {"type": "FeatureCollection", "features": features}
