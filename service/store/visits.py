"""Recurring visits in Redis: the record, its indexes by status, by due time and by the end of its period, and
the needs owed by visit steps (care.lua changes them; this module reads them)."""

from __future__ import annotations

import json
from typing import Any

import redis

from service.models import Visit, VisitStatus
from service.store.codec import text, visit_from_hash
from service.store.errors import Refused
from service.store.households import VisitPlan
from service.store.keys import Keys
from service.store.rollups import RollupStore
from service.store.scripts import Scripts


class VisitStore:
    """Reads visits; makes them due and closes them through care.lua."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts, rollups: RollupStore) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts
        self.rollups = rollups

    def make_due(self, visit_id: str, *, need_id: str, now_iso: str, now_epoch: float, lock_seconds: int) -> str:
        """A planned visit whose time has come becomes due with this need id (owed until `written`); the caller
        holds the owed need's lock (take_owed's) for lock_seconds from the same step on.

        Raises Refused(NO_VISIT), Refused(VISIT_STATUS, status) or Refused(NOT_DUE)."""
        return text(
            self.scripts.run(
                "care",
                {
                    "mode": "due",
                    "visit_id": visit_id,
                    "need_id": need_id,
                    "now_iso": now_iso,
                    "now_epoch": repr(now_epoch),
                    **self.rollups.period(now_iso),
                    "lock_seconds": lock_seconds,
                },
            )
        )

    def take_owed(self, member: str, *, now_epoch: float, lock_seconds: int) -> bool:
        """Take the lock for writing an owed need ('visit:<id>' or 'help:<id>') for lock_seconds; False while
        another process holds it (its time is judged by the callers' clock)."""
        arguments = {"mode": "take_owed", "member": member, "now_epoch": repr(now_epoch), "lock_seconds": lock_seconds}
        try:
            self.scripts.run("care", arguments)
        except Refused:
            return False
        return True

    def close(
        self,
        visit_id: str,
        *,
        to: VisitStatus,
        now_iso: str,
        now_epoch: float,
        level: str,
        plan: VisitPlan,
        outcome: str = "",
        help_kind: str = "",
        note: str = "",
        visitor_id: str = "",
        help_need_id: str = "",
    ) -> tuple[str | None, VisitStatus, bool]:
        """Close a due visit as done or overdue (an overdue one as done); when it was its household's open visit,
        `plan` becomes the next. An overdue visit's need gets its timeline event and announcement in the same
        step. Returns (the visit planned, the status before, whether the notify drain must be enqueued).

        Raises Refused(NO_VISIT), Refused(VISIT_STATUS, status), Refused(NOT_DUE) for overdue before the end of its
        period, or Refused(BUSY, level) when the household's level is not `level` (plan again)."""
        arguments: dict[str, Any] = {
            "mode": "close",
            "visit_id": visit_id,
            "to": to.value,
            "now_iso": now_iso,
            "now_epoch": repr(now_epoch),
            **self.rollups.period(now_iso),
            "level": level,
            "plan": plan.arguments(),
            "outcome": outcome,
            "help_kind": help_kind,
            "note": note,
            "visitor_id": visitor_id,
            "help_need_id": help_need_id,
        }
        data = json.loads(self.scripts.run("care", arguments))
        return data["planned"] or None, VisitStatus(data["was"]), bool(data["arm_notify"])

    def get(self, visit_id: str) -> Visit | None:
        data = self.r.hgetall(self.keys.visit(visit_id))
        return visit_from_hash(data) if data else None

    def get_many(self, visit_ids: list[str]) -> list[Visit | None]:
        pipe = self.r.pipeline(transaction=False)
        for vid in visit_ids:
            pipe.hgetall(self.keys.visit(vid))
        return [visit_from_hash(d) if d else None for d in pipe.execute()]

    def of_household(self, household_id: str, *, limit: int = 200) -> list[str]:
        """The household's visits, latest due first."""
        return [text(x) for x in self.r.zrevrange(self.keys.household_visits(household_id), 0, limit - 1)]

    def due_ids(self, *, now_epoch: float, limit: int = 500) -> list[str]:
        """Planned visits whose time has come, earliest first."""
        key = self.keys.visits_planned()
        return [text(x) for x in self.r.zrangebyscore(key, "-inf", now_epoch, start=0, num=limit)]

    def past_period_ids(self, *, now_epoch: float, limit: int = 500) -> list[str]:
        """Due visits past the end of their period, earliest first."""
        key = self.keys.visits_open()
        return [text(x) for x in self.r.zrangebyscore(key, "-inf", now_epoch, start=0, num=limit)]

    def ids_page(self, *, status: VisitStatus | None, before: str | None, limit: int) -> list[str]:
        """Visit ids newest first (by when they were planned), starting before the cursor."""
        if status is None:
            raise ValueError("visits are listed by status")
        high = f"({before}" if before else "+"
        key = self.keys.visits_with_status(status.value)
        return [text(x) for x in self.r.zrevrangebylex(key, high, "-", start=0, num=limit)]

    def count_by_status(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for s in VisitStatus:
            pipe.zcard(self.keys.visits_with_status(s.value))
        return {s.value: int(n) for s, n in zip(VisitStatus, pipe.execute(), strict=True)}

    def owed(self) -> list[str]:
        """Needs visit steps promised and not yet written: 'visit:<id>' (its visit need), 'help:<id>' (its
        needs_help need)."""
        return sorted(text(m) for m in self.r.smembers(self.keys.visits_to_create()))

    def written(self, member: str) -> None:
        self.r.srem(self.keys.visits_to_create(), member)
