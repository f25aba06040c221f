"""What each kind of need requires by default: skills, search radius, deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.models import Family, NeedKind, Priority, Skill

MINUTE = 60
HOUR = 60 * MINUTE

ACCEPT_SECONDS = {
    Priority.CRITICAL: 2 * MINUTE,
    Priority.HIGH: 5 * MINUTE,
    Priority.NORMAL: 15 * MINUTE,
    Priority.LOW: 60 * MINUTE,
}
"""How long a volunteer has to accept an offer, by priority, unless a kind says otherwise."""


@dataclass(frozen=True)
class KindSpec:
    """Defaults for one kind: its family, required skills, search radius and completion deadlines by priority."""

    name: NeedKind
    family: Family
    skills: tuple[Skill, ...]
    radius_km: float
    deadlines: dict[Priority, int]
    accept_seconds: dict[Priority, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name.value,
            "family": self.family.value,
            "skills": [s.value for s in self.skills],
            "radius_km": self.radius_km,
            "deadlines": {p.value: seconds // MINUTE for p, seconds in self.deadlines.items()},
            "accept_minutes": {p.value: seconds / MINUTE for p, seconds in self.accept_seconds.items()},
        }


def _deadlines(critical: float, high: float, normal: float, low: float) -> dict[Priority, int]:
    """Completion deadlines given in hours."""
    return {
        Priority.CRITICAL: int(critical * HOUR),
        Priority.HIGH: int(high * HOUR),
        Priority.NORMAL: int(normal * HOUR),
        Priority.LOW: int(low * HOUR),
    }


def _kind(
    name: NeedKind, family: Family, skills: tuple[Skill, ...], radius_km: float, deadlines: dict[Priority, int]
) -> KindSpec:
    return KindSpec(name, family, skills, radius_km, deadlines, dict(ACCEPT_SECONDS))


URGENT = _deadlines(1, 3, 12, 48)
SAME_DAY = _deadlines(2, 6, 24, 72)
REPAIR = _deadlines(2, 8, 48, 168)
SCHEDULED = _deadlines(24, 48, 168, 336)

KINDS: dict[NeedKind, KindSpec] = {
    spec.name: spec
    for spec in (
        _kind(NeedKind.WATER_DELIVERY, Family.WATER, (Skill.DRIVING,), 25, URGENT),
        _kind(NeedKind.COAL_HAULING, Family.HEAT, (Skill.HEAVY_LIFTING,), 10, SAME_DAY),
        _kind(NeedKind.PLUMBING_REPAIR, Family.HOME, (Skill.PLUMBING,), 25, REPAIR),
        _kind(NeedKind.HEATING_REPAIR, Family.HEAT, (Skill.HEATING,), 25, REPAIR),
        _kind(NeedKind.ELECTRICAL_REPAIR, Family.POWER, (Skill.ELECTRICAL,), 25, REPAIR),
        _kind(NeedKind.HOME_CLEANING, Family.HOME, (Skill.GENERAL,), 10, SCHEDULED),
        _kind(NeedKind.ERRAND_SHOPPING, Family.FOOD, (Skill.GENERAL,), 10, SAME_DAY),
        _kind(NeedKind.MEDICINE_PICKUP, Family.HEALTH, (Skill.GENERAL,), 10, URGENT),
        _kind(NeedKind.MEAL_DELIVERY, Family.FOOD, (Skill.GENERAL,), 10, URGENT),
        _kind(NeedKind.MAIL_AND_BILLS, Family.CARE, (Skill.GENERAL,), 10, SCHEDULED),
        _kind(NeedKind.TRANSPORT, Family.TRANSPORT, (Skill.DRIVING,), 25, URGENT),
        _kind(NeedKind.FARM_HELP, Family.HOME, (Skill.HEAVY_LIFTING,), 25, SAME_DAY),
        _kind(NeedKind.STORM_PREP, Family.HOME, (Skill.HEAVY_LIFTING,), 25, URGENT),
        _kind(NeedKind.MEDIATION, Family.CARE, (Skill.MEDIATION,), 25, SCHEDULED),
        _kind(NeedKind.TUTORING, Family.CARE, (Skill.TUTORING,), 10, SCHEDULED),
        _kind(NeedKind.COMPANIONSHIP_VISIT, Family.CARE, (Skill.GENERAL,), 10, SCHEDULED),
        _kind(NeedKind.OTHER, Family.OTHER, (Skill.GENERAL,), 25, SAME_DAY),
    )
}


def kind_spec(kind: str | NeedKind) -> KindSpec:
    """The defaults for one kind."""
    return KINDS[NeedKind(kind)]


def family_of(kind: str | NeedKind) -> Family:
    """The family a kind of need belongs to."""
    return kind_spec(kind).family


def catalog() -> dict[str, Any]:
    """Kinds and skills as clients see them, to build forms."""
    return {"kinds": [spec.to_dict() for spec in KINDS.values()], "skills": [s.value for s in Skill]}
