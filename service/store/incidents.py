"""Incidents in Redis: the record, its needs, its indexes, and placing needs in incidents as one atomic step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from service.models import Family, Incident, IncidentRule, IncidentStatus
from service.store.codec import incident_from_hash, text
from service.store.keys import Keys
from service.store.scripts import Scripts, lost, outcome


class Outcome(StrEnum):
    """What placing a need did."""

    JOINED = "joined"  # it joined an open incident (or was in one already)
    OPENED = "opened"  # an incident opened with it and the recent needs around it
    WAITING = "waiting"  # not enough needs around it yet: it waits among the recent ones


@dataclass(frozen=True)
class Placement:
    outcome: Outcome
    incident_id: str | None
    need_ids: tuple[str, ...]
    """The needs that joined in this step (every member when an incident opened)."""


@dataclass(frozen=True)
class PlaceRequest:
    """What placing one new need takes besides the need: its family's rule, where, a new incident's id, when."""

    family: Family
    lat: float
    lon: float
    rule: IncidentRule
    margin_km: float
    search_km: float
    new_id: str
    now_iso: str
    now_epoch: float


class IncidentStore:
    """Reads and writes incidents."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def _family_keys(self, family: Family) -> list[str]:
        k = self.keys
        return [
            k.recent_needs_geo(family.value),
            k.recent_needs_at(family.value),
            k.open_incidents_geo(family.value),
            k.incidents(),
            k.incidents_geo(),
            k.incidents_with_status(IncidentStatus.OPEN.value),
        ]

    def place(self, need_id: str, request: PlaceRequest) -> Placement:
        """Put a new need in an incident, or open one, or leave it waiting (incident.lua); Refused(NO_NEED)."""
        return _placement(
            outcome(
                self.scripts.call(
                    "incident", self._place_arguments(need_id, request), keys=self._family_keys(request.family)
                )
            )
        )

    def placement(self, reply: Any, need_id: str, request: PlaceRequest) -> Placement:
        """A queued place()'s reply; Refused(NO_NEED) when the need is gone. A call the server had lost the
        script of did nothing: the need is placed now, on its own."""
        if lost(reply):
            return self.place(need_id, request)
        return _placement(outcome(reply))

    def queue_place(self, pipe: Any, need_id: str, request: PlaceRequest) -> None:
        """Queue place() on a transaction (after the need's own writes), unchecked (Scripts.queue): read its
        reply with placement()."""
        self.scripts.queue(
            "incident",
            self._place_arguments(need_id, request),
            pipeline=pipe,
            keys=self._family_keys(request.family),
            checked=False,
        )

    @staticmethod
    def _place_arguments(need_id: str, request: PlaceRequest) -> dict[str, Any]:
        r = request
        return {
            "mode": "place",
            "incident_id": r.new_id,
            "family": r.family.value,
            "now_iso": r.now_iso,
            "now_epoch": repr(r.now_epoch),
            "need_id": need_id,
            "lat": r.lat,
            "lon": r.lon,
            "count": r.rule.count,
            "radius_km": r.rule.radius_km,
            "window_seconds": r.rule.minutes * 60,
            "margin_km": r.margin_km,
            "search_km": r.search_km,
        }

    def declare(
        self,
        incident_id: str,
        *,
        family: Family,
        lat: float,
        lon: float,
        radius_km: float,
        note: str | None,
        declared_by: str,
        need_ids: list[str],
        now_iso: str,
        now_epoch: float,
    ) -> Placement:
        """Open a declared incident; each of `need_ids` not resolved and not in an incident joins it."""
        detail = self.scripts.run(
            "incident",
            {
                "mode": "declare",
                "incident_id": incident_id,
                "family": family.value,
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
                "lat": lat,
                "lon": lon,
                "radius_km": radius_km,
                "note": note or "",
                "declared_by": declared_by,
                "need_ids": need_ids,
            },
            keys=self._family_keys(family),
        )
        return _placement(detail)

    def close(self, incident_id: str, *, family: Family, now_iso: str) -> None:
        """Close an open incident; Refused(NO_INCIDENT) or Refused(INCIDENT_STATUS, status)."""
        k = self.keys
        self.scripts.run(
            "incident_close",
            {"incident_id": incident_id, "now_iso": now_iso},
            keys=[
                k.open_incidents_geo(family.value),
                k.incidents_with_status(IncidentStatus.OPEN.value),
                k.incidents_with_status(IncidentStatus.CLOSED.value),
            ],
        )

    def get(self, incident_id: str) -> Incident | None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self.keys.incident(incident_id))
        pipe.zrange(self.keys.incident_needs(incident_id), 0, -1)
        data, members = pipe.execute()
        return incident_from_hash(data, [text(m) for m in members]) if data else None

    def get_many(self, incident_ids: list[str]) -> list[Incident | None]:
        pipe = self.r.pipeline(transaction=False)
        for iid in incident_ids:
            pipe.hgetall(self.keys.incident(iid))
            pipe.zrange(self.keys.incident_needs(iid), 0, -1)
        replies = pipe.execute()
        return [
            incident_from_hash(data, [text(m) for m in members]) if data else None
            for data, members in zip(replies[::2], replies[1::2], strict=True)
        ]

    def size(self, incident_id: str) -> int:
        return int(self.r.zcard(self.keys.incident_needs(incident_id)))

    def ids_page(self, *, status: IncidentStatus | None, before: str | None, limit: int) -> list[str]:
        """Incident ids newest first, starting before the cursor."""
        key = self.keys.incidents_with_status(status.value) if status else self.keys.incidents()
        high = f"({before}" if before else "+"
        return [text(x) for x in self.r.zrevrangebylex(key, high, "-", start=0, num=limit)]

    def ids_near(self, *, lat: float, lon: float, radius_km: float) -> list[str]:
        """Incidents whose centre is within the radius."""
        key = self.keys.incidents_geo()
        return [text(m) for m in self.r.geosearch(key, longitude=lon, latitude=lat, radius=radius_km, unit="km")]

    def open_count(self, family: Family) -> int:
        return int(self.r.zcard(self.keys.open_incidents_geo(family.value)))

    def mark_milestone(self, incident_id: str, milestone: str, *, at: str) -> bool:
        """Record that a milestone was reached; True only for the one call that recorded it."""
        return bool(self.r.hsetnx(self.keys.incident(incident_id), f"milestone_{milestone}", at))

    def milestones(self, incident_id: str) -> dict[str, str]:
        data = self.r.hgetall(self.keys.incident(incident_id))
        return {text(k)[len("milestone_") :]: text(v) for k, v in data.items() if text(k).startswith("milestone_")}


def _placement(detail: Any) -> Placement:
    data = json.loads(detail)
    ids = data.get("need_ids") or []
    return Placement(
        outcome=Outcome(data["outcome"]),
        incident_id=data.get("incident_id") or None,
        need_ids=tuple(ids) if isinstance(ids, list) else (),  # Lua's empty table is a JSON object
    )
