"""Choosing volunteers for a need: a pure function over candidates, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from geopy.distance import great_circle

from service.models import Location

TIE_KM = 0.1
"""Distances within the same 100 m are a tie, broken by lower load, then longest idle."""


@dataclass(frozen=True)
class Requirement:
    location: Location
    skills: frozenset[str]
    radius_km: float


@dataclass(frozen=True)
class Candidate:
    volunteer_id: str
    location: Location
    skills: frozenset[str]
    on_duty: bool
    load: int
    capacity: int
    idle_since: float


@dataclass(frozen=True)
class Choice:
    volunteer_id: str
    distance_km: float


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance in kilometres."""
    return float(great_circle((a.lat, a.lon), (b.lat, b.lon)).km)


def is_eligible(requirement: Requirement, candidate: Candidate) -> bool:
    """On duty, every required skill, and spare capacity."""
    return candidate.on_duty and requirement.skills <= candidate.skills and candidate.load < candidate.capacity


def choose_volunteers(
    requirement: Requirement,
    candidates: list[Candidate],
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
    count: int = 1,
) -> list[Choice]:
    """The `count` best distinct eligible candidates: nearest first, then lower load, then idle longest."""
    ranked: list[tuple[float, int, float, str, float]] = []
    seen: set[str] = set()
    for c in candidates:
        if c.volunteer_id in exclude or c.volunteer_id in seen or not is_eligible(requirement, c):
            continue
        km = distance_km(requirement.location, c.location)
        if km > requirement.radius_km:
            continue
        seen.add(c.volunteer_id)
        ranked.append((round(km / TIE_KM), c.load, c.idle_since, c.volunteer_id, km))
    ranked.sort()
    return [Choice(volunteer_id=vid, distance_km=km) for _, _, _, vid, km in ranked[: max(count, 0)]]
