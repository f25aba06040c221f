"""Idempotency keys in Redis: the first answer to a request, replayed for its retries."""

from __future__ import annotations

import hashlib

import redis

from service.store.codec import decode_hash
from service.store.keys import Keys


class IdempotencyStore:
    """Claims a key for a request and keeps its answer for a while."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def _name(self, scope: str, key: str) -> str:
        return self.keys.idempotency(hashlib.sha256(f"{scope}|{key}".encode()).hexdigest())

    def claim(self, scope: str, key: str, body_hash: str, *, ttl_seconds: int) -> dict[str, str] | None:
        """Claim a key for a request, or return the stored record of the request that claimed it first."""
        name = self._name(scope, key)
        if self.r.hsetnx(name, "body_hash", body_hash):
            self.r.expire(name, ttl_seconds)
            return None
        return decode_hash(self.r.hgetall(name))

    def store(self, scope: str, key: str, *, status: int, body: str, ttl_seconds: int) -> None:
        name = self._name(scope, key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(name, mapping={"status": status, "body": body})
        pipe.expire(name, ttl_seconds)
        pipe.execute()

    def forget(self, scope: str, key: str) -> None:
        self.r.delete(self._name(scope, key))
