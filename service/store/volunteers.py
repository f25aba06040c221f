"""Volunteers in Redis: the record, the live-position index and the per-skill sets of available volunteers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from service.models import Volunteer
from service.store.codec import encode_fields, text, volunteer_fields, volunteer_from_hash
from service.store.errors import Refusal, Refused
from service.store.keys import Keys
from service.store.scripts import Scripts, outcome


class VolunteerStore:
    """Reads and writes volunteers; availability sets change only inside the scripts."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def save(
        self,
        volunteer_id: str,
        fields: dict[str, Any],
        *,
        create: bool,
        now_iso: str,
        now_epoch: float,
        withdraw_reason: str = "volunteer went off duty",
    ) -> list[str]:
        """Create or update a volunteer and its indexes; returns needs whose pending offers were withdrawn.

        Raises Refused(EXISTS) on creating a known id, Refused(NO_VOLUNTEER) on updating an unknown one.
        """
        touched = self.scripts.run(
            "save_volunteer", self._arguments(volunteer_id, fields, create, now_iso, now_epoch, withdraw_reason)
        )
        return [text(t) for t in touched or []]

    @staticmethod
    def _arguments(
        volunteer_id: str,
        fields: dict[str, Any],
        create: bool,
        now_iso: str,
        now_epoch: float,
        withdraw_reason: str = "volunteer went off duty",
    ) -> dict[str, Any]:
        return {
            "volunteer_id": volunteer_id,
            "create": create,
            "now_iso": now_iso,
            "now_epoch": repr(round(now_epoch, 1)),
            "withdraw_reason": withdraw_reason,
            "fields": encode_fields(fields),
        }

    def create_many(self, volunteers: Iterable[Volunteer], *, now_iso: str, batch: int = 5000) -> int:
        """Create many volunteers, `batch` script calls per round trip; known ids are left as they are.

        Returns how many were created.
        """
        created = 0
        pending: list[Volunteer] = []

        def flush() -> None:
            nonlocal created
            pipe = self.r.pipeline(transaction=False)
            for v in pending:
                self.scripts.queue(
                    "save_volunteer",
                    self._arguments(v.id, volunteer_fields(v), True, now_iso, v.idle_since),
                    pipeline=pipe,
                )
            for reply in pipe.execute():
                try:
                    outcome(reply)
                    created += 1
                except Refused as refused:
                    if refused.reason is not Refusal.EXISTS:
                        raise
            pending.clear()

        for volunteer in volunteers:
            pending.append(volunteer)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        return created

    def save_many(
        self, saves: list[tuple[str, dict[str, Any], bool]], *, now_iso: str, now_epoch: float, batch: int = 1000
    ) -> list[list[str] | Refused]:
        """Create or update many volunteers, `batch` script calls per round trip: for each (id, fields, create),
        the ids of needs whose pending offers were withdrawn, or the Refused that `save` would have raised."""
        results: list[list[str] | Refused] = []
        for start in range(0, len(saves), batch):
            pipe = self.r.pipeline(transaction=False)
            for volunteer_id, fields, create in saves[start : start + batch]:
                self.scripts.queue(
                    "save_volunteer", self._arguments(volunteer_id, fields, create, now_iso, now_epoch), pipeline=pipe
                )
            for reply in pipe.execute():
                try:
                    results.append([text(t) for t in outcome(reply) or []])
                except Refused as refused:
                    results.append(refused)
        return results

    def ids_by_phone(self, phones: list[str]) -> dict[str, list[str]]:
        """For each phone, the ids of the volunteers who have it now, oldest first."""
        self.index_phones()
        pipe = self.r.pipeline(transaction=False)
        for phone in phones:
            pipe.smembers(self.keys.volunteers_by_phone(phone))
        replies = pipe.execute()
        candidates = [(phone, sorted(text(m) for m in members)) for phone, members in zip(phones, replies, strict=True)]
        pipe = self.r.pipeline(transaction=False)
        for _, ids in candidates:
            for vid in ids:
                pipe.hget(self.keys.volunteer(vid), "phone")
        current = iter(pipe.execute())
        found: dict[str, list[str]] = {}
        for phone, ids in candidates:
            found[phone] = [vid for vid in ids if (held := next(current)) is not None and text(held) == phone]
        return found

    def index_phones(self, *, batch: int = 5000) -> None:
        """Add the volunteers stored before the phone index existed to it (once; every save keeps it since)."""
        if self.r.exists(self.keys.phone_index_complete()):
            return
        total = self.count()
        for start in range(0, total, batch):
            ids = self.ids_range(start=start, count=batch)
            pipe = self.r.pipeline(transaction=False)
            for vid in ids:
                pipe.hget(self.keys.volunteer(vid), "phone")
            phones = pipe.execute()
            pipe = self.r.pipeline(transaction=False)
            for vid, phone in zip(ids, phones, strict=True):
                if phone is not None:
                    pipe.sadd(self.keys.volunteers_by_phone(text(phone)), vid)
            pipe.execute()
        self.r.set(self.keys.phone_index_complete(), "1")

    def get(self, volunteer_id: str) -> Volunteer | None:
        data = self.r.hgetall(self.keys.volunteer(volunteer_id))
        return volunteer_from_hash(volunteer_id, data) if data else None

    def get_many(self, volunteer_ids: list[str]) -> list[Volunteer | None]:
        pipe = self.r.pipeline(transaction=False)
        for vid in volunteer_ids:
            pipe.hgetall(self.keys.volunteer(vid))
        return [
            volunteer_from_hash(vid, d) if d else None for vid, d in zip(volunteer_ids, pipe.execute(), strict=True)
        ]

    def ids_range(self, *, start: int, count: int) -> list[str]:
        """Volunteer ids in order of registration (an append-only list, so offsets are stable)."""
        return [text(x) for x in self.r.lrange(self.keys.volunteers(), start, start + count - 1)]

    def count(self) -> int:
        return int(self.r.llen(self.keys.volunteers()))

    def near(self, *, lat: float, lon: float, radius_km: float) -> list[tuple[str, float]]:
        """All volunteers whose live position is within the radius, nearest first."""
        rows: list[Any] = self.r.geosearch(
            self.keys.volunteers_geo(),
            longitude=lon,
            latitude=lat,
            radius=radius_km,
            unit="km",
            sort="ASC",
            withdist=True,
        )
        return [(text(m), float(d)) for m, d in rows]

    def available_near(self, *, skills: list[str], lat: float, lon: float, radius_km: float, count: int) -> list[str]:
        """Up to `count` available volunteers (on duty, below capacity) holding the first of `skills` that has
        a set of available volunteers (or 'general': everyone), nearest first: one bounded GEO search."""
        skill = next((s for s in skills if s != "general"), "general")
        rows: list[Any] = self.r.geosearch(
            self.keys.available(skill),
            longitude=lon,
            latitude=lat,
            radius=radius_km,
            unit="km",
            sort="ASC",
            count=count,
        )
        return [text(m) for m in rows]
