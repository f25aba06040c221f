"""Counters, histograms and one-time markers in Redis, shared by every process."""

from __future__ import annotations

import redis

from service.store.codec import text
from service.store.keys import Keys
from service.store.offers import bucket_label


class StatStore:
    """Counters and histograms for /metrics, and markers that make an action happen once."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def incr(self, name: str, amount: int = 1) -> None:
        self.r.incrby(self.keys.stat(name), amount)

    def get(self, name: str) -> int:
        return int(self.r.get(self.keys.stat(name)) or 0)

    def counts(self, name: str) -> dict[str, int]:
        """A labelled counter (a hash of label -> count) as the Lua scripts keep them."""
        return {text(k): int(v) for k, v in self.r.hgetall(self.keys.stat(name)).items()}

    def observe(self, name: str, value: float, buckets: tuple[float, ...]) -> None:
        """Count one observation in the first bucket that holds it (cumulated when read)."""
        key = self.keys.histogram(name)
        pipe = self.r.pipeline(transaction=True)
        pipe.hincrby(key, bucket_label(value, buckets), 1)
        pipe.hincrby(key, "_count", 1)
        pipe.hincrbyfloat(key, "_sum", value)
        pipe.execute()

    def histogram(self, name: str) -> dict[str, float]:
        return {text(k): float(v) for k, v in self.r.hgetall(self.keys.histogram(name)).items()}

    def set_once(self, name: str, value: str, *, ttl_seconds: int) -> bool:
        """Set a marker if it is not there yet; True when this call set it."""
        return bool(self.r.set(self.keys.marker(name), value, nx=True, ex=ttl_seconds))
