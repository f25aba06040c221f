"""Captains in Redis: which grids a volunteer is captain of, each grid's rota, and the escalation ladders
(ladder.lua: starting, climbing and acknowledging each is one atomic step)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from service.models import Override, Rota, Shift, Weekday
from service.store.codec import decode_hash, text
from service.store.keys import Keys
from service.store.scripts import Scripts


@dataclass(frozen=True)
class TierTarget:
    """One tier as a step sees it now: whom it tells and how long it has, or why it is passed over."""

    name: str
    kind: str
    seconds: int
    volunteer_id: str = ""
    skip: str = ""
    note: str = ""
    """Said on the timeline beside a tier that is told (e.g. that nobody hears it but on the board)."""


@dataclass(frozen=True)
class LadderStep:
    """What a start or a step did: told a tier (and when the next step is due), or ended the ladder."""

    outcome: str
    tier: str | None = None
    due: float | None = None
    arm_notify: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class Acknowledgement:
    acked_by: str
    acked_at: str
    tier: str | None
    first: bool
    """False when the ladder had been acknowledged before (this answer is that acknowledgement)."""


class CaptainStore:
    """Captain grants, rotas and ladders."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    # grants: counted by service.store.tokens as captain tokens are created and revoked
    def grids_of(self, volunteer_id: str) -> set[str]:
        """The grids the volunteer holds a captain token for."""
        return {text(k) for k, v in self.r.hgetall(self.keys.captain_grids(volunteer_id)).items() if int(v) > 0}

    def has_captains(self, grid: str) -> bool:
        """Whether a captain token names the grid (one created before captain tokens were counted by grid is not
        seen here)."""
        return int(self.r.hget(self.keys.grid_captains(), grid) or 0) > 0

    # rotas
    def save_rota(self, rota: Rota) -> None:
        data = {
            "grid": rota.grid,
            "shifts": [{**asdict(s), "weekday": s.weekday.value} for s in rota.shifts],
            "overrides": [asdict(o) for o in rota.overrides],
            "updated_at": rota.updated_at,
            "updated_by": rota.updated_by,
        }
        self.r.set(self.keys.rota(rota.grid), json.dumps(data, ensure_ascii=False))

    def rota(self, grid: str) -> Rota | None:
        raw = self.r.get(self.keys.rota(grid))
        if raw is None:
            return None
        data = json.loads(raw)
        return Rota(
            grid=data["grid"],
            shifts=[Shift(**{**s, "weekday": Weekday(s["weekday"])}) for s in data["shifts"]],
            overrides=[Override(**o) for o in data["overrides"]],
            updated_at=data.get("updated_at"),
            updated_by=data.get("updated_by"),
        )

    # ladders
    def start_ladder(
        self,
        need_id: str,
        *,
        escalation: str,
        episode: str,
        code: str,
        code_ttl: int,
        grid: str,
        priority: str,
        tiers: list[TierTarget],
        now_iso: str,
        now_epoch: float,
    ) -> LadderStep:
        """Start the ladder of this escalation and tell its first tier; Refused(EXISTS) when it is started
        already, Refused(BUSY) when the code is taken, Refused(NEED_STATUS) when the need moved on."""
        detail = self.scripts.run(
            "ladder",
            {
                "mode": "start",
                "need_id": need_id,
                "escalation": escalation,
                "episode": episode,
                "code": code,
                "code_ttl": code_ttl,
                "grid": grid,
                "priority": priority,
                "tiers": [asdict(t) for t in tiers],
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
            },
        )
        return _step(detail)

    def step_ladder(self, need_id: str, *, tiers: list[TierTarget], now_iso: str, now_epoch: float) -> LadderStep:
        """Tell the next tier if the step is due; Refused(NOT_DUE), Refused(NO_LADDER), Refused(LADDER_STATUS)."""
        detail = self.scripts.run(
            "ladder",
            {
                "mode": "step",
                "need_id": need_id,
                "tiers": [asdict(t) for t in tiers],
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
            },
        )
        return _step(detail)

    def acknowledge(self, need_id: str, *, actor: str, now_iso: str) -> Acknowledgement:
        """Stop the ladder; Refused(NO_LADDER) or Refused(NEED_STATUS) when there is nothing to acknowledge."""
        data = json.loads(
            self.scripts.run("ladder", {"mode": "ack", "need_id": need_id, "actor": actor, "now_iso": now_iso})
        )
        return Acknowledgement(
            acked_by=data["acked_by"],
            acked_at=data["acked_at"],
            tier=data.get("tier") or None,
            first=data["outcome"] == "acknowledged",
        )

    def ladder(self, need_id: str) -> dict[str, str] | None:
        data = self.r.hgetall(self.keys.ladder(need_id))
        return decode_hash(data) if data else None

    def due_ladders(self, *, now_epoch: float, limit: int = 1000) -> list[str]:
        """Needs whose ladder's next step is due."""
        return [text(m) for m in self.r.zrangebyscore(self.keys.ladders_due(), "-inf", now_epoch, start=0, num=limit)]

    def need_for_code(self, code: str) -> str | None:
        raw = self.r.get(self.keys.ack_code(code))
        return text(raw) if raw is not None else None


def _step(detail: Any) -> LadderStep:
    data = json.loads(detail)
    return LadderStep(
        outcome=data["outcome"],
        tier=data.get("tier"),
        due=float(data["due"]) if data.get("due") is not None else None,
        arm_notify=bool(data.get("arm_notify")),
        reason=data.get("reason"),
    )
