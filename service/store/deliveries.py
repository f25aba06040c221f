"""Notification deliveries in Redis: one record per (event, recipient) and its attempts."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from service.store.codec import decode_hash, encode_fields, json_list, text
from service.store.errors import Refusal, Refused
from service.store.keys import Keys
from service.store.scripts import Scripts


class DeliveryStore:
    """Reads and writes deliveries."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def create(self, delivery_id: str, *, need_id: str = "", incident_id: str = "", fields: dict[str, Any]) -> bool:
        """Record a planned delivery about a need (or an incident) unless it exists already; True when this
        call created it."""
        owner = self.keys.incident_deliveries(incident_id) if incident_id else self.keys.need_deliveries(need_id)
        try:
            self.scripts.run(
                "create_delivery",
                {"delivery_id": delivery_id, "score": repr(time.time()), "fields": encode_fields(fields)},
                keys=[self.keys.delivery(delivery_id), owner],
            )
        except Refused as refused:
            if refused.reason is Refusal.EXISTS:
                return False
            raise
        return True

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        data = decode_hash(self.r.hgetall(self.keys.delivery(delivery_id)))
        if "id" not in data:
            return None
        out: dict[str, Any] = dict(data)
        out["channels"] = json_list(data.get("channels"))
        out["attempts"] = [json.loads(a) for a in self.r.lrange(self.keys.delivery_attempts(delivery_id), 0, -1)]
        return out

    def record_attempt(self, delivery_id: str, attempt: dict[str, Any], *, sent: bool) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(self.keys.delivery_attempts(delivery_id), json.dumps(attempt))
        if sent:
            pipe.hset(self.keys.delivery(delivery_id), mapping={"status": "sent", "sent_at": attempt["at"]})
        else:
            pipe.incr(self.keys.stat("notification_failures"))
        pipe.execute()

    def skip(self, delivery_id: str, *, reason: str, at: str) -> None:
        """Leave a pending delivery unsent for good (it became pointless), saying why."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.delivery(delivery_id), mapping={"status": "skipped", "reason": reason, "skipped_at": at})
        pipe.incr(self.keys.stat("notifications_skipped"))
        pipe.execute()

    def next_channel(self, delivery_id: str, index: int) -> None:
        self.r.hset(self.keys.delivery(delivery_id), "channel_index", index)

    def fail(self, delivery_id: str) -> None:
        self.r.hset(self.keys.delivery(delivery_id), "status", "failed")

    def of_need(self, need_id: str) -> list[dict[str, Any]]:
        ids = [text(x) for x in self.r.zrange(self.keys.need_deliveries(need_id), 0, -1)]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def of_incident(self, incident_id: str) -> list[dict[str, Any]]:
        ids = [text(x) for x in self.r.zrange(self.keys.incident_deliveries(incident_id), 0, -1)]
        return [d for d in (self.get(i) for i in ids) if d is not None]
