"""The backlogs workers drain, in Redis: needs waiting for a match, announcements waiting to be planned.

Needs wait in a sorted set ordered by urgency class, then arrival, so a drain always takes the
most urgent first. Announcements wait in a list. A drain job is *armed* with a flag: whoever
sets the flag enqueues the job, so one job is queued at a time however many callers add work.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from service.store.codec import text
from service.store.keys import Keys

ARMED_TTL = 120
"""Seconds an armed flag lives: a drain job lost with its worker is re-armed after this at the latest."""


class BacklogStore:
    """Adds work, takes work, and arms the drain jobs."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def add_waiting(self, need_id: str, *, score: float, arm: str) -> bool:
        """Put a need in the match backlog; True when this call armed the drain (enqueue it)."""
        return self.add_many_waiting({need_id: score}, arm=arm)

    def add_many_waiting(self, scores: dict[str, float], *, arm: str) -> bool:
        """Put needs in the match backlog at their scores, in one step; True when this call armed the drain."""
        pipe = self.r.pipeline(transaction=True)
        pipe.zadd(self.keys.waiting(), scores, nx=True)  # a waiting need keeps its place
        pipe.set(self.keys.armed(arm), "1", nx=True, ex=ARMED_TTL)
        return bool(pipe.execute()[1])

    def queue_arrivals(
        self,
        pipe: Any,
        scores: dict[str, float],
        announcements: list[dict[str, str]],
        *,
        arm_match: str,
        arm_notify: str,
    ) -> None:
        """Queue, as the last four commands of a transaction, what add_waiting_and_announcements does; read its
        answer with armed()."""
        pipe.zadd(self.keys.waiting(), scores, nx=True)
        pipe.set(self.keys.armed(arm_match), "1", nx=True, ex=ARMED_TTL)
        pipe.rpush(self.keys.outbox(), *(json.dumps(a, separators=(",", ":")) for a in announcements))
        pipe.set(self.keys.armed(arm_notify), "1", nx=True, ex=ARMED_TTL)

    @staticmethod
    def armed(replies: list[Any]) -> tuple[bool, bool]:
        """Whether queue_arrivals armed the match drain and the notify drain, from the transaction's replies."""
        return bool(replies[-3]), bool(replies[-1])

    def take_waiting(self, count: int) -> list[str]:
        """The `count` most urgent waiting needs, taken out of the backlog."""
        popped: list[Any] = self.r.zpopmin(self.keys.waiting(), count)
        return [text(pair[0]) for pair in popped]

    def waiting_ids(self, *, limit: int = 1000) -> list[str]:
        """The waiting needs in the order drains take them, without taking them."""
        return [text(member) for member in self.r.zrange(self.keys.waiting(), 0, limit - 1)]

    def first_waiting(self) -> tuple[str, float] | None:
        """The need a drain takes next, with its score, without taking it."""
        head: list[Any] = self.r.zrange(self.keys.waiting(), 0, 0, withscores=True)
        return (text(head[0][0]), float(head[0][1])) if head else None

    def waiting_count(self) -> int:
        return int(self.r.zcard(self.keys.waiting()))

    def add_announcement(self, announcement: dict[str, str], *, arm: str) -> bool:
        """Put an announcement in the outbox; True when this call armed the drain (enqueue it)."""
        return self.add_announcements([announcement], arm=arm)

    def add_announcements(self, announcements: list[dict[str, str]], *, arm: str) -> bool:
        """Put announcements in the outbox in order, in one step; True when this call armed the drain."""
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(self.keys.outbox(), *(json.dumps(a, separators=(",", ":")) for a in announcements))
        pipe.set(self.keys.armed(arm), "1", nx=True, ex=ARMED_TTL)
        return bool(pipe.execute()[1])

    def peek_outbox(self, count: int) -> list[dict[str, Any]]:
        """The oldest announcements, left in the outbox until trim_outbox (so a crash loses none)."""
        return [json.loads(raw) for raw in self.r.lrange(self.keys.outbox(), 0, count - 1)]

    def trim_outbox(self, count: int) -> None:
        """Drop the `count` oldest announcements, once they are planned."""
        self.r.ltrim(self.keys.outbox(), count, -1)

    def outbox_count(self) -> int:
        return int(self.r.llen(self.keys.outbox()))

    def arm(self, name: str) -> bool:
        """Arm a drain; True when this call armed it (enqueue the job)."""
        return bool(self.r.set(self.keys.armed(name), "1", nx=True, ex=ARMED_TTL))

    def disarm(self, name: str) -> None:
        self.r.delete(self.keys.armed(name))

    def lock(self, name: str, *, owner: str, ttl_seconds: int) -> bool:
        """Hold a lock (the one consumer of a backlog), or renew it for its owner."""
        key = self.keys.lock(name)
        if self.r.set(key, owner, nx=True, ex=ttl_seconds):
            return True
        if text(self.r.get(key) or b"") == owner:
            self.r.expire(key, ttl_seconds)
            return True
        return False

    def unlock(self, name: str, *, owner: str) -> None:
        key = self.keys.lock(name)
        if text(self.r.get(key) or b"") == owner:
            self.r.delete(key)
