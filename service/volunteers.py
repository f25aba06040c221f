"""Registering volunteers and keeping their position and availability current."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service import clock, jobs, paging
from service.backlog import wait_for_match
from service.deps import Deps
from service.exceptions import NotFound
from service.ids import new_id
from service.models import Locale, Location, Skill, Volunteer
from service.privacy import mask_channel
from service.store import Refusal, Refused, volunteer_fields


def build_volunteer(*, volunteer_in: dict[str, Any], now: datetime, volunteer_id: str | None = None) -> Volunteer:
    """A new volunteer record from validated input; off duty unless it says otherwise."""
    moment = now
    stamp = clock.iso(moment)
    home = Location(**volunteer_in["location"])
    return Volunteer(
        id=volunteer_id or new_id("vol"),
        name=volunteer_in["name"],
        phone=volunteer_in["phone"],
        skills=_skills(volunteer_in["skills"]),
        home=home,
        location=home,
        capacity=volunteer_in.get("capacity", 1),
        load=0,
        on_duty=volunteer_in.get("on_duty", False),
        channels=list(volunteer_in.get("channels", [])),
        locale=Locale(volunteer_in.get("locale", Locale.ZH)),
        team=volunteer_in.get("team"),
        grid=volunteer_in.get("grid"),
        created_at=stamp,
        updated_at=stamp,
        location_at=stamp,
        idle_since=clock.epoch(moment),
        drill=volunteer_in.get("drill", False),
    )


def register_volunteer(*, deps: Deps, volunteer_in: dict[str, Any]) -> Volunteer:
    """Store a new volunteer. Every volunteer has 'general'."""
    volunteer = build_volunteer(volunteer_in=volunteer_in, now=deps.clock.now())
    deps.store.volunteers.save(
        volunteer.id,
        volunteer_fields(volunteer),
        create=True,
        now_iso=volunteer.created_at,
        now_epoch=volunteer.idle_since,
    )
    if volunteer.on_duty:
        deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=volunteer.id)
    return volunteer


def get_volunteer(*, deps: Deps, volunteer_id: str) -> Volunteer:
    volunteer = deps.store.volunteers.get(volunteer_id)
    if volunteer is None:
        raise NotFound(f"volunteer {volunteer_id} not found")
    return volunteer


def update_volunteer(*, deps: Deps, volunteer_id: str, changes: dict[str, Any]) -> Volunteer:
    """Change profile fields; a new home location also moves the live position."""
    before = get_volunteer(deps=deps, volunteer_id=volunteer_id)
    fields: dict[str, Any] = {}
    for name in ("name", "phone", "capacity", "locale", "team", "grid"):
        if name in changes:
            fields[name] = changes[name]
    if "channels" in changes:
        fields["channels"] = keep_secrets(changes["channels"], before.channels)
    if "skills" in changes:
        fields["skills"] = ",".join(s.value for s in _skills(changes["skills"]))
    if "location" in changes:
        home = changes["location"]
        fields.update(home_lat=home["lat"], home_lon=home["lon"], lat=home["lat"], lon=home["lon"])
    if "on_duty" in changes:
        fields["on_duty"] = changes["on_duty"]
    return _save(deps=deps, volunteer_id=volunteer_id, fields=fields, before=before)


def set_location(*, deps: Deps, volunteer_id: str, lat: float, lon: float) -> Volunteer:
    """Record the live position a phone reports."""
    before = get_volunteer(deps=deps, volunteer_id=volunteer_id)
    fields = {"lat": lat, "lon": lon, "location_at": clock.iso(deps.clock.now())}
    return _save(deps=deps, volunteer_id=volunteer_id, fields=fields, before=before)


def set_availability(*, deps: Deps, volunteer_id: str, on_duty: bool) -> Volunteer:
    """Go on or off duty; going off duty withdraws pending offers and re-matches their needs."""
    before = get_volunteer(deps=deps, volunteer_id=volunteer_id)
    return _save(deps=deps, volunteer_id=volunteer_id, fields={"on_duty": on_duty}, before=before)


def _save(*, deps: Deps, volunteer_id: str, fields: dict[str, Any], before: Volunteer) -> Volunteer:
    moment = deps.clock.now()
    stamp = clock.iso(moment)
    fields["updated_at"] = stamp
    try:
        touched = deps.store.volunteers.save(
            volunteer_id, fields, create=False, now_iso=stamp, now_epoch=clock.epoch(moment)
        )
    except Refused as refused:
        if refused.reason is Refusal.NO_VOLUNTEER:
            raise NotFound(f"volunteer {volunteer_id} not found") from None
        raise
    for need_id in dict.fromkeys(touched):
        need = deps.store.needs.get(need_id)
        if need is not None:
            wait_for_match(deps, need)
    after = get_volunteer(deps=deps, volunteer_id=volunteer_id)
    if after.on_duty and after.load < after.capacity:
        gained = (not before.on_duty) or before.capacity < after.capacity or set(after.skills) - set(before.skills)
        moved = before.location != after.location
        if gained or (moved and deps.store.stats.set_once(f"rematch-near:{volunteer_id}", "1", ttl_seconds=60)):
            deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=volunteer_id)
    return after


def keep_secrets(channels: list[str], current: list[str]) -> list[str]:
    """A channel sent back as shown (secrets masked) keeps its real URL instead of the mask."""
    originals = {mask_channel(url): url for url in current}
    return [originals.get(url, url) for url in channels]


def _skills(values: list[str]) -> list[Skill]:
    """Known skills in catalog order, always including 'general'."""
    wanted = {Skill(v) for v in values} | {Skill.GENERAL}
    return [s for s in Skill if s in wanted]


SCAN_BUDGET = 5000
"""At most this many records are read to fill one filtered page; the cursor continues from there."""


def list_volunteers(
    *,
    deps: Deps,
    skill: Skill | None = None,
    on_duty: bool | None = None,
    grid: str | None = None,
    near: Location | None = None,
    radius_km: float = 10.0,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Volunteer], str | None]:
    """Volunteers matching the filters: nearest first with `near`, otherwise in order of registration."""

    def keep(v: Volunteer | None) -> bool:
        return (
            v is not None
            and (skill is None or skill in v.skills)
            and (on_duty is None or v.on_duty == on_duty)
            and (grid is None or v.grid == grid)
        )

    offset = paging.decode_offset(cursor)
    if near is not None:
        nearby = [vid for vid, _ in deps.store.volunteers.near(lat=near.lat, lon=near.lon, radius_km=radius_km)]
        total = len(nearby)

        def ids_from(start: int, count: int) -> list[str]:
            return nearby[start : start + count]
    else:
        total = deps.store.volunteers.count()

        def ids_from(start: int, count: int) -> list[str]:
            return deps.store.volunteers.ids_range(start=start, count=count)

    found: list[Volunteer] = []
    position = offset
    while len(found) < limit and position < total and position - offset < SCAN_BUDGET:
        chunk = ids_from(position, limit)
        if not chunk:
            break
        for v in deps.store.volunteers.get_many(chunk):
            position += 1
            if v is not None and keep(v):
                found.append(v)
                if len(found) == limit:
                    break
    return found, paging.encode_offset(position) if position < total else None
