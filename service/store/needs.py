"""Needs in Redis: the record, its indexes, its timeline, and status changes as one atomic step."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from service.models import Event, Need, NeedStatus
from service.store.codec import (
    encode_fields,
    event_from_json,
    event_json,
    need_fields,
    need_from_hash,
    text,
)
from service.store.keys import Keys
from service.store.rollups import RollupStore
from service.store.scripts import Scripts, lost


class Release(StrEnum):
    """What a status change does to the need's live offers."""

    NONE = "none"
    WITHDRAW = "withdraw"  # every pending or accepted offer is withdrawn
    COMPLETE = "complete"  # accepted offers are completed, pending ones withdrawn


@dataclass(frozen=True)
class Transition:
    """One status change: from any of `allowed` to `to`, with what else happens in the same step."""

    allowed: frozenset[NeedStatus]
    to: NeedStatus
    now_iso: str
    now_epoch: float
    event: Event | None
    release: Release = Release.NONE
    release_reason: str = ""
    clear_tried: bool = False
    unless_staffed: bool = False
    fields: dict[str, Any] = field(default_factory=dict)

    def arguments(self, need_id: str) -> dict[str, Any]:
        return {
            "need_id": need_id,
            "allowed": sorted(s.value for s in self.allowed),
            "to": self.to.value,
            "now_iso": self.now_iso,
            "now_epoch": repr(self.now_epoch),
            "event": event_json(self.event) if self.event else "",
            "release": self.release.value,
            "release_reason": self.release_reason,
            "clear_tried": self.clear_tried,
            "unless_staffed": self.unless_staffed,
            "fields": encode_fields(self.fields),
        }


class NeedStore:
    """Reads and writes needs."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts, rollups: RollupStore) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts
        self.rollups = rollups

    def create(self, need: Need, event: Event) -> None:
        """Write a new need, its indexes, tracking code and first event in one transaction."""
        self.create_many([(need, event)])

    def create_many(
        self, created: Sequence[tuple[Need, Event]], *, also: Callable[[Any], None] | None = None
    ) -> list[Any]:
        """Write new needs, their indexes, tracking codes and first events in one transaction: one round trip,
        and each index written once for all of them; the reports count them received in the same transaction.
        `also` queues more commands at the end of the same transaction; answers the transaction's replies."""
        if not created:
            return []
        k = self.keys
        pipe = self.r.pipeline(transaction=True)
        by_status: dict[str, dict[str, int]] = defaultdict(dict)
        by_creator: dict[str, dict[str, int]] = defaultdict(dict)
        places: list[Any] = []
        for need, event in created:
            pipe.hset(k.need(need.id), mapping=need_fields(need))  # type: ignore[arg-type]
            pipe.rpush(k.need_events(need.id), event_json(event))
            self.rollups.queue_received(pipe, need)
            by_status[need.status.value][need.id] = 0
            if need.created_by:
                by_creator[need.created_by][need.id] = 0
            places += [need.location.lon, need.location.lat, need.id]
        pipe.zadd(k.needs(), {need.id: 0 for need, _ in created})
        for status, members in by_status.items():
            pipe.zadd(k.needs_with_status(status), members)
        for creator, members in by_creator.items():
            pipe.zadd(k.needs_by(creator), members)
        pipe.geoadd(k.needs_geo(), places)
        pipe.mset({k.tracking(need.tracking_code): need.id for need, _ in created})
        drills = [need.id for need, _ in created if need.drill]
        if drills:
            pipe.sadd(k.drill_needs(), *drills)
        if also is not None:
            also(pipe)
        replies = list(pipe.execute(raise_on_error=False))
        # a script call queued unchecked may find its script lost (the caller runs it again); any other error
        # is raised as the transaction would have raised it
        for reply in replies:
            if isinstance(reply, Exception) and not lost(reply):
                raise reply
        return replies

    def get(self, need_id: str) -> Need | None:
        data = self.r.hgetall(self.keys.need(need_id))
        return need_from_hash(data) if data else None

    def get_many(self, need_ids: list[str]) -> list[Need | None]:
        pipe = self.r.pipeline(transaction=False)
        for nid in need_ids:
            pipe.hgetall(self.keys.need(nid))
        return [need_from_hash(d) if d else None for d in pipe.execute()]

    def id_for_tracking(self, code: str) -> str | None:
        raw = self.r.get(self.keys.tracking(code))
        return text(raw) if raw else None

    def ids_page(self, *, status: str | None, created_by: str | None, before: str | None, limit: int) -> list[str]:
        """Need ids newest first from the most selective index, starting before the cursor."""
        if created_by is not None:
            key = self.keys.needs_by(created_by)
        elif status is not None:
            key = self.keys.needs_with_status(status)
        else:
            key = self.keys.needs()
        high = f"({before}" if before else "+"
        return [text(x) for x in self.r.zrevrangebylex(key, high, "-", start=0, num=limit)]

    def ids_near(self, *, lat: float, lon: float, radius_km: float, escalated_only: bool = False) -> list[str]:
        key = self.keys.escalated_geo() if escalated_only else self.keys.needs_geo()
        return [text(m) for m in self.r.geosearch(key, longitude=lon, latitude=lat, radius=radius_km, unit="km")]

    def ids_with_status(self, status: NeedStatus, *, limit: int = 10_000) -> list[str]:
        return [text(x) for x in self.r.zrange(self.keys.needs_with_status(status.value), 0, limit - 1)]

    def count_by_status(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for s in NeedStatus:
            pipe.zcard(self.keys.needs_with_status(s.value))
        return {s.value: int(n) for s, n in zip(NeedStatus, pipe.execute(), strict=True)}

    def overdue_ids(self, *, now_epoch: float) -> list[str]:
        """Assigned or in-progress needs past their committed deadline."""
        return [text(x) for x in self.r.zrangebyscore(self.keys.needs_due(), "-inf", now_epoch)]

    def overdue_count(self, *, now_epoch: float) -> int:
        return int(self.r.zcount(self.keys.needs_due(), "-inf", now_epoch))

    def flag(self, need_id: str, *, at_epoch: float) -> None:
        """Mark the need as having a notification that could not be delivered, and list it among the flagged."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.need(need_id), mapping=encode_fields({"flagged": True}))  # type: ignore[arg-type]
        pipe.zadd(self.keys.needs_flagged(), {need_id: at_epoch})
        pipe.execute()

    def flagged_ids(self, *, limit: int = 200) -> list[str]:
        """The most recently flagged needs first."""
        return [text(x) for x in self.r.zrevrange(self.keys.needs_flagged(), 0, limit - 1)]

    def events(self, need_id: str) -> list[Event]:
        return [event_from_json(raw) for raw in self.r.lrange(self.keys.need_events(need_id), 0, -1)]

    def add_event(self, need_id: str, event: Event) -> None:
        self.r.rpush(self.keys.need_events(need_id), event_json(event))

    def set_fields(self, need_id: str, fields: dict[str, Any]) -> None:
        self.r.hset(self.keys.need(need_id), mapping=encode_fields(fields))  # type: ignore[arg-type]

    def field(self, need_id: str, name: str) -> str | None:
        raw = self.r.hget(self.keys.need(need_id), name)
        return text(raw) if raw else None

    def holders(self, need_ids: list[str]) -> dict[str, tuple[NeedStatus | None, list[str]]]:
        """Each need's status and the volunteers holding a live offer on it, as one consistent snapshot."""
        flat = self.scripts.run("holders", {"need_ids": need_ids}) or []
        out: dict[str, tuple[NeedStatus | None, list[str]]] = {}
        for i, need_id in enumerate(need_ids):
            status, holders = text(flat[2 * i]), text(flat[2 * i + 1])
            out[need_id] = (NeedStatus(status) if status else None, [h for h in holders.split(",") if h])
        return out

    def transition(self, need_id: str, change: Transition) -> NeedStatus:
        """Apply one status change atomically (with what it changes in the reports); returns the status before,
        or raises Refused."""
        arguments = {**change.arguments(need_id), **self.rollups.period(change.now_iso)}
        return NeedStatus(self.scripts.run("transition", arguments))
