"""Choosing volunteers for a need: a pure function over candidates, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geopy.distance import great_circle

from service.models import Location, NeedRole, Skill

TIE_KM = 0.1
"""Distances within the same 100 m are a tie, broken by lower load, then longest idle."""


@dataclass(frozen=True)
class FairLoad:
    """Who counts as nearly as near as the nearest, among whom fewer recent tasks go first.

    Nearly as near: no further than the nearest eligible volunteer plus the tie band plus the
    slack, which is `ratio` of the nearest's distance but never more than `max_km`; at most the
    first `pool` of them (in the nearest-first order), so a crowded town costs no more to search.
    """

    ratio: float = 0.10
    max_km: float = 0.5
    pool: int = 8

    def reach_km(self, nearest_km: float) -> float:
        return nearest_km + TIE_KM + min(self.ratio * nearest_km, self.max_km)


NEAREST_ONLY = FairLoad(ratio=0.0, max_km=0.0, pool=0)
"""No fair-load preference: nearest first, ties by load, then idle time."""


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
    recent_tasks: int = 0
    """Tasks accepted in the last days (the fair-load window)."""


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
    fair: FairLoad = NEAREST_ONLY,
    favoured: Sequence[str] = (),
) -> list[Choice]:
    """The `count` best distinct eligible candidates.

    Nearest first (in 100 m steps), then lower load, then idle longest; but those nearly as near
    as the nearest (`fair`) come first, fewest recent tasks first, so the nearest volunteer is
    not sent every time. Before all of them, the `favoured` (a household's previous visitor, then
    its preferred volunteers: continuity) who are nearly as near as the nearest (fair.reach_km,
    whatever the pool), in the order given.
    """
    ranked: list[tuple[float, int, float, str, float, int]] = []
    seen: set[str] = set()
    for c in candidates:
        if c.volunteer_id in exclude or c.volunteer_id in seen or not is_eligible(requirement, c):
            continue
        km = distance_km(requirement.location, c.location)
        if km > requirement.radius_km:
            continue
        seen.add(c.volunteer_id)
        ranked.append((round(km / TIE_KM), c.load, c.idle_since, c.volunteer_id, km, c.recent_tasks))
    ranked.sort()
    reach = fair.reach_km(ranked[0][4]) if ranked else 0.0
    if ranked and fair.pool > 0:
        near = [row for row in ranked if row[4] <= reach][: fair.pool]
        near.sort(key=lambda row: (row[5], *row[:4]))
        ranked = near + [row for row in ranked if row not in near]
    if ranked and favoured:
        place = {vid: i for i, vid in reversed(list(enumerate(favoured)))}
        first = sorted((row for row in ranked if row[3] in place and row[4] <= reach), key=lambda row: place[row[3]])
        ranked = first + [row for row in ranked if row not in first]
    return [Choice(volunteer_id=row[3], distance_km=row[4]) for row in ranked[: max(count, 0)]]


def choose_team(
    roles: list[tuple[Requirement, int]],
    candidates: list[Candidate],
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
    fair: FairLoad = NEAREST_ONLY,
    favoured: Sequence[str] = (),
) -> list[list[Choice]]:
    """Each role's volunteers, role by role in order, each as choose_volunteers chooses them for its
    requirement and count; nobody is chosen for two roles (those chosen for an earlier role are excluded)."""
    taken = set(exclude)
    team: list[list[Choice]] = []
    for requirement, count in roles:
        chosen = choose_volunteers(requirement, candidates, exclude=taken, count=count, fair=fair, favoured=favoured)
        taken.update(c.volunteer_id for c in chosen)
        team.append(chosen)
    return team


def fits(role: NeedRole, skills: Iterable[str]) -> bool:
    """Whether a volunteer with these skills has every skill of the role ('general': everyone)."""
    return set(role.skills) <= {*skills, Skill.GENERAL}


def role_for(roles: list[NeedRole], skills: Iterable[str]) -> int | None:
    """The role a volunteer a dispatcher assigns takes: the first role not yet filled whose skills they have,
    one with a free place (fewer live offers than its count) first. None when no open role fits them."""
    own = list(skills)
    fitting = [(i, r) for i, r in enumerate(roles) if not r.filled and fits(r, own)]
    for free_only in (True, False):
        for i, r in fitting:
            if not free_only or r.active < r.count:
                return i
    return None
