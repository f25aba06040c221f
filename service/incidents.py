"""Incidents: needs of one family close together in place and time, handled and told as one.

A grid "blows the whistle": needs of one family (water, heat, ...) that arrive close together form
an incident by themselves (by default 5 needs within 2 km within 30 minutes; per family in
AIDLINE_INCIDENT_RULES), and dispatchers declare others. Placing a need is one atomic step in
Redis (incident.lua), so a need is never in two incidents and two needs arriving at once on two
processes never open two. Dispatchers and the grids of its needs are told once when an incident
opens, when half of its needs are resolved and when all are, never once per need.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from service import access, clock, lifecycle, paging
from service.backlog import announce_incident
from service.catalog import KINDS, family_of
from service.config import SettingError, Settings
from service.deps import Deps
from service.exceptions import Conflict, NotFound
from service.ids import new_id
from service.messages import tracking_text
from service.models import (
    Family,
    Incident,
    IncidentRule,
    IncidentStatus,
    Location,
    Milestone,
    Need,
    Principal,
    Role,
    Topic,
)
from service.store import Refusal, Refused
from service.store.incidents import Outcome, Placement, PlaceRequest

DEFAULT_RULE = IncidentRule(count=5, radius_km=2.0, minutes=30.0)
"""For every family not named in AIDLINE_INCIDENT_RULES (unless it names `default`)."""

MARGIN_RATIO = 0.1
"""An incident's area reaches this share of the rule's distance beyond its furthest need."""

MAX_DECLARED_RADIUS_KM = 50.0
"""The widest area a dispatcher may declare."""

EARTH_KM = 6372.797560856
"""The earth's radius as Redis's GEO commands measure it."""

POLYGON_SIDES = 32
"""Corners of the polygon drawn for an incident's circle."""


# ---- the rules (pure) ---------------------------------------------------------------------------


def parse_rules(raw: str) -> dict[str, IncidentRule]:
    """Parse 'water=5/2/30;heat=3/1/60' (family=count/km/minutes; `default=` for unnamed families).

    Raises SettingError (a ValueError) naming the part that is wrong.
    """
    rules: dict[str, IncidentRule] = {}
    names = {f.value for f in Family} | {"default"}
    for part in raw.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, numbers = part.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise SettingError(
                f"AIDLINE_INCIDENT_RULES: '{part}' must be family=count/km/minutes, family one of {sorted(names)}"
            )
        pieces = numbers.split("/")
        try:
            count, km, minutes = int(pieces[0]), float(pieces[1]), float(pieces[2])
        except (IndexError, ValueError):
            raise SettingError(
                f"AIDLINE_INCIDENT_RULES: '{part}' must be family=count/km/minutes, e.g. water=5/2/30"
            ) from None
        if len(pieces) != 3 or count < 2 or not 0 < km <= 100 or not 0 < minutes <= 7 * 24 * 60:
            raise SettingError(
                f"AIDLINE_INCIDENT_RULES: '{part}': count at least 2, km within (0, 100], minutes within (0, 10080]"
            )
        rules[name] = IncidentRule(count=count, radius_km=km, minutes=minutes)
    return rules


@cache
def _rules(raw: str) -> dict[str, IncidentRule]:
    return parse_rules(raw)


def rule_for(settings: Settings, family: Family) -> IncidentRule:
    """The rule of one family: its own, else the configured default, else DEFAULT_RULE."""
    rules = _rules(settings.incident_rules)
    return rules.get(family.value) or rules.get("default") or DEFAULT_RULE


def search_km(settings: Settings) -> float:
    """How far from a need any open incident's centre can be and still reach it."""
    widest = max([DEFAULT_RULE.radius_km, *(r.radius_km for r in _rules(settings.incident_rules).values())])
    return max(MAX_DECLARED_RADIUS_KM, 3 * widest)


def km_between(a: Location, b: Location) -> float:
    """Great-circle distance, as Redis measures it."""
    s1 = math.sin(math.radians(b.lat - a.lat) / 2)
    s2 = math.sin(math.radians(b.lon - a.lon) / 2)
    h = s1 * s1 + math.cos(math.radians(a.lat)) * math.cos(math.radians(b.lat)) * s2 * s2
    return 2 * EARTH_KM * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class Recent:
    """A need of the family not in an incident, arrived at `epoch`."""

    id: str
    location: Location
    epoch: float


@dataclass(frozen=True)
class Area:
    """An open incident's area: it takes needs up to `reach_km` from its centre."""

    id: str
    centre: Location
    radius_km: float
    reach_km: float


def decide(
    rule: IncidentRule, *, need: Recent, recent: list[Recent], areas: list[Area]
) -> tuple[Outcome, str | None, list[str]]:
    """What incident.lua does with a new need (its specification): join the nearest open incident that
    reaches it; else open one with every recent need within the rule's distance of it (the new one
    included, those older than the window left out) when there are at least the rule's count; else wait.
    Answers (outcome, the incident joined, the needs of the new incident)."""
    reaching = sorted((km_between(need.location, a.centre), a.id) for a in areas)
    for distance, area_id in reaching:
        area = next(a for a in areas if a.id == area_id)
        if distance <= area.reach_km:
            return Outcome.JOINED, area.id, [need.id]
    window_start = need.epoch - rule.minutes * 60
    around = [
        r.id
        for r in [*recent, need]
        if r.epoch >= window_start and km_between(need.location, r.location) <= rule.radius_km
    ]
    if len(around) >= rule.count:
        return Outcome.OPENED, None, sorted(around)
    return Outcome.WAITING, None, []


def opening_area(rule: IncidentRule, members: list[Location]) -> tuple[Location, float, float]:
    """Centre (the members' mean), radius (max of the rule's distance and the furthest member plus a
    margin) and reach (twice the rule's distance, or the radius if wider) of an incident opening."""
    centre = Location(sum(m.lat for m in members) / len(members), sum(m.lon for m in members) / len(members))
    furthest = max(km_between(centre, m) for m in members)
    radius = max(rule.radius_km, furthest + rule.radius_km * MARGIN_RATIO)
    return centre, radius, max(2 * rule.radius_km, radius)


def circle(centre: Location, radius_km: float, sides: int = POLYGON_SIDES) -> dict[str, Any]:
    """A GeoJSON Polygon approximating the circle, counter-clockwise, closed, [lon, lat] pairs."""
    lat1, lon1 = math.radians(centre.lat), math.radians(centre.lon)
    angular = radius_km / EARTH_KM
    ring = []
    for i in range(sides):
        bearing = 2 * math.pi * (sides - i) / sides  # counter-clockwise, as GeoJSON wants exterior rings
        lat2 = math.asin(math.sin(lat1) * math.cos(angular) + math.cos(lat1) * math.sin(angular) * math.cos(bearing))
        lon2 = lon1 + math.atan2(
            math.sin(bearing) * math.sin(angular) * math.cos(lat1),
            math.cos(angular) - math.sin(lat1) * math.sin(lat2),
        )
        lon = (math.degrees(lon2) + 540) % 360 - 180
        ring.append([round(lon, 6), round(math.degrees(lat2), 6)])
    ring.append(list(ring[0]))
    return {"type": "Polygon", "coordinates": [ring]}


# ---- placing needs --------------------------------------------------------------------------------


def queue_placements(deps: Deps, requests: list[tuple[Need, PlaceRequest]]) -> Callable[[Any], None]:
    """Put each need just taken in into an incident of its family, or open one with it: one atomic step
    each (incident.lua), queued in the transaction that stores them (after their writes); read each
    reply with store.incidents.placement() and hand it to after_placement()."""

    def queue(pipe: Any) -> None:
        for need, request in requests:
            deps.store.incidents.queue_place(pipe, need.id, request)

    return queue


def placement_request(deps: Deps, need: Need) -> PlaceRequest:
    """What incident.lua needs to place one need: its family's rule, a new incident id, the time."""
    family = family_of(need.kind)
    rule = rule_for(deps.settings, family)
    moment = deps.clock.now()
    return PlaceRequest(
        family=family,
        lat=need.location.lat,
        lon=need.location.lon,
        rule=rule,
        margin_km=rule.radius_km * MARGIN_RATIO,
        search_km=search_km(deps.settings),
        new_id=new_id("inc"),
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
    )


def after_placement(deps: Deps, need: Need, placed: Placement) -> str | None:
    """The incident a need was placed in; an incident its placement opened is counted and told."""
    if placed.outcome is Outcome.OPENED and placed.incident_id:
        opened(deps, placed.incident_id, family_of(need.kind), declared=False)
    return placed.incident_id


def opened(deps: Deps, incident_id: str, family: Family, *, declared: bool) -> None:
    deps.store.stats.incr(f"incidents_opened:{family.value}:{'declared' if declared else 'automatic'}")
    announce_incident(deps, Topic.INCIDENT_OPENED, incident_id)


def need_resolved(*, deps: Deps, need_id: str) -> None:
    """A need became done, closed or cancelled: tell its incident's milestones, each exactly once.

    One read for a need in no incident. Each milestone is recorded with HSETNX, so when two needs
    resolve at once on two workers, whichever sees the milestone reached first tells it, and only it.
    """
    incident_id = deps.store.needs.field(need_id, "incident_id")
    if not incident_id:
        return
    incident = deps.store.incidents.get(incident_id)
    if incident is None or not incident.need_ids:
        return
    statuses = [n.status for n in deps.store.needs.get_many(incident.need_ids) if n is not None]
    resolved = sum(s in lifecycle.RESOLVED for s in statuses)
    at = clock.iso(deps.clock.now())
    store = deps.store.incidents
    if resolved == len(incident.need_ids):
        store.mark_milestone(incident_id, Milestone.HALF, at=at)  # all at once: "all" says it
        if store.mark_milestone(incident_id, Milestone.ALL, at=at):
            announce_incident(deps, Topic.INCIDENT_MILESTONE, incident_id, reason=Milestone.ALL.value)
    elif 2 * resolved >= len(incident.need_ids) and store.mark_milestone(incident_id, Milestone.HALF, at=at):
        announce_incident(deps, Topic.INCIDENT_MILESTONE, incident_id, reason=Milestone.HALF.value)


# ---- dispatchers --------------------------------------------------------------------------------


def declare_incident(*, deps: Deps, incident_in: dict[str, Any], principal: Principal) -> Incident:
    """A dispatcher declares an incident: every open need of the family inside it, not yet in one, joins."""
    access.require_role(principal, Role.DISPATCHER)
    family = Family(incident_in["family"])
    centre = Location(**incident_in["centre"])
    radius_km = float(incident_in["radius_km"])
    kinds = {spec.name for spec in KINDS.values() if spec.family is family}
    inside = deps.store.needs.ids_near(lat=centre.lat, lon=centre.lon, radius_km=radius_km)
    candidates = [
        n.id
        for n in deps.store.needs.get_many(sorted(inside))
        if n is not None and n.kind in kinds and n.status not in lifecycle.RESOLVED and not n.incident_id
    ]
    moment = deps.clock.now()
    placed = deps.store.incidents.declare(
        new_id("inc"),
        family=family,
        lat=centre.lat,
        lon=centre.lon,
        radius_km=radius_km,
        note=incident_in.get("note"),
        declared_by=principal.actor,
        need_ids=candidates,
        now_iso=clock.iso(moment),
        now_epoch=clock.epoch(moment),
    )
    assert placed.incident_id is not None
    opened(deps, placed.incident_id, family, declared=True)
    return load_incident(deps=deps, incident_id=placed.incident_id)


def load_incident(*, deps: Deps, incident_id: str) -> Incident:
    incident = deps.store.incidents.get(incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


def read_incident(*, deps: Deps, incident_id: str, principal: Principal) -> Incident:
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    return load_incident(deps=deps, incident_id=incident_id)


def close_incident(*, deps: Deps, incident_id: str, principal: Principal) -> Incident:
    """Close an incident: it takes no more needs (409 when it is closed already)."""
    access.require_role(principal, Role.DISPATCHER)
    incident = load_incident(deps=deps, incident_id=incident_id)
    try:
        deps.store.incidents.close(incident_id, family=incident.family, now_iso=clock.iso(deps.clock.now()))
    except Refused as refused:
        if refused.reason is Refusal.NO_INCIDENT:
            raise NotFound(f"incident {incident_id} not found") from None
        raise Conflict(
            f"the incident is {refused.detail or 'closed'} already",
            errors={"status": [f"current status is {refused.detail or 'closed'}"]},
        ) from None
    return load_incident(deps=deps, incident_id=incident_id)


def list_incidents(
    *,
    deps: Deps,
    principal: Principal,
    status: IncidentStatus | None = None,
    family: Family | None = None,
    near: Location | None = None,
    radius_km: float = 10.0,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Incident], str | None]:
    """Incidents newest first, filtered by status, family and centre near a point."""
    access.require_role(principal, Role.DISPATCHER, Role.OPS)
    nearby = None
    if near is not None:
        nearby = set(deps.store.incidents.ids_near(lat=near.lat, lon=near.lon, radius_km=radius_km))
    return paging.filtered_page(
        ids_before=lambda before, count: deps.store.incidents.ids_page(status=status, before=before, limit=count),
        get_many=deps.store.incidents.get_many,
        keep=lambda i: (status is None or i.status is status) and (family is None or i.family is family),
        nearby=nearby,
        cursor=cursor,
        limit=limit,
    )


@dataclass(frozen=True)
class Report:
    """What an incident's needs add up to."""

    counts: dict[str, int]
    vulnerable: int
    grids: list[str]


def report(*, deps: Deps, incident: Incident) -> Report:
    members = [n for n in deps.store.needs.get_many(incident.need_ids) if n is not None]
    return Report(
        counts=dict(Counter(n.status.value for n in members)),
        vulnerable=sum(1 for n in members if n.vulnerability),
        grids=sorted({n.grid for n in members if n.grid}),
    )


def for_requester(*, deps: Deps, need: Need) -> dict[str, Any] | None:
    """What the requester sees of the incident their need is part of: size, family and a sentence."""
    if not need.incident_id:
        return None
    incident = deps.store.incidents.get(need.incident_id)
    if incident is None:
        return None
    values = {"family": incident.family.value, "size": len(incident.need_ids)}
    return {
        **values,
        "message": {locale: tracking_text("incident", locale, values) for locale in ("zh", "en")},
    }
