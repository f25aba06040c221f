"""Households of the care register in Redis: the record, its indexes (grid, level, place, contact phone) and,
in the same atomic step as a change of level, its replanned visit (care.lua)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from service.models import Household, VisitStatus
from service.store.codec import encode_fields, household_from_hash, text
from service.store.keys import Keys
from service.store.scripts import Scripts


@dataclass(frozen=True)
class VisitPlan:
    """A visit to plan: due at `due_epoch`, to be done by `period_end_epoch`."""

    visit_id: str
    due_iso: str
    due_epoch: float
    period_end_iso: str
    period_end_epoch: float

    def arguments(self) -> dict[str, Any]:
        return {
            "visit_id": self.visit_id,
            "due_iso": self.due_iso,
            "due_epoch": f"{self.due_epoch:.3f}",
            "period_end_iso": self.period_end_iso,
            "period_end_epoch": f"{self.period_end_epoch:.3f}",
        }


@dataclass(frozen=True)
class Saved:
    """What saving a household did to its visits."""

    planned: str | None
    """The visit planned in this step."""
    cancelled: str | None
    """The planned visit cancelled in this step (the level changed)."""
    changed: str | None
    """The due visit whose period now follows the new level."""


class HouseholdStore:
    """Reads and writes households; every change goes through care.lua."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def save(
        self,
        household_id: str,
        fields: dict[str, Any],
        *,
        create: bool,
        phone: str,
        level: str,
        now_iso: str,
        plan: VisitPlan | None,
        cadence_seconds: float,
    ) -> Saved:
        """Create or update a household; on creation or a change of level, `plan` replaces its planned visit.

        Raises Refused(EXISTS), Refused(NO_HOUSEHOLD) or Refused(PHONE_TAKEN, the household holding the phone).
        """
        arguments: dict[str, Any] = {
            "mode": "save",
            "household_id": household_id,
            "create": create,
            "now_iso": now_iso,
            "fields": encode_fields(fields),
            "phone": phone,
            "level": level,
            "cadence_seconds": cadence_seconds,
        }
        if plan is not None:
            arguments["plan"] = plan.arguments()
        data = json.loads(self.scripts.run("care", arguments))
        return Saved(
            planned=data["planned"] or None, cancelled=data["cancelled"] or None, changed=data["changed"] or None
        )

    def delete(self, household_id: str, *, now_iso: str) -> tuple[str | None, str | None, VisitStatus | None]:
        """Remove a household and cancel its open visit; (the cancelled visit, its need, its status before) or
        Nones.

        Raises Refused(NO_HOUSEHOLD)."""
        data = json.loads(
            self.scripts.run("care", {"mode": "delete", "household_id": household_id, "now_iso": now_iso})
        )
        return data["cancelled"] or None, data["need_id"] or None, VisitStatus(data["was"]) if data["was"] else None

    def get(self, household_id: str) -> Household | None:
        data = self.r.hgetall(self.keys.household(household_id))
        return household_from_hash(data) if data else None

    def get_many(self, household_ids: list[str]) -> list[Household | None]:
        pipe = self.r.pipeline(transaction=False)
        for hid in household_ids:
            pipe.hgetall(self.keys.household(hid))
        return [household_from_hash(d) if d else None for d in pipe.execute()]

    def exists(self, household_id: str) -> bool:
        return bool(self.r.exists(self.keys.household(household_id)))

    def id_for_phone(self, phone: str) -> str | None:
        raw = self.r.get(self.keys.household_phone(phone))
        return text(raw) if raw else None

    def any_in_grid(self, grid: str) -> bool:
        """Whether a household of the care register is in the grid."""
        return bool(self.r.exists(self.keys.households_in_grid(grid)))

    def ids_page(self, *, grid: str | None, level: str | None, before: str | None, limit: int) -> list[str]:
        """Household ids newest first from the most selective index, starting before the cursor."""
        if grid is not None:
            key = self.keys.households_in_grid(grid)
        elif level is not None:
            key = self.keys.households_at_level(level)
        else:
            key = self.keys.households()
        high = f"({before}" if before else "+"
        return [text(x) for x in self.r.zrevrangebylex(key, high, "-", start=0, num=limit)]

    def ids_near(self, *, lat: float, lon: float, radius_km: float) -> list[str]:
        key = self.keys.households_geo()
        return [text(m) for m in self.r.geosearch(key, longitude=lon, latitude=lat, radius=radius_km, unit="km")]

    def count(self) -> int:
        return int(self.r.zcard(self.keys.households()))
