"""API tokens in Redis, stored as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets

import redis

from service.models import Role
from service.store.codec import decode_hash, text
from service.store.keys import Keys


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Saves, finds and revokes tokens."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def save(
        self,
        *,
        token: str,
        token_id: str,
        role: Role,
        volunteer_id: str | None,
        now_iso: str,
        grids: tuple[str, ...] = (),
    ) -> None:
        """Store a token; a captain's also counts its volunteer as captain of its grids (captain_grids), and each
        grid as having one more captain token (grid_captains)."""
        hashed = digest(token)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            self.keys.token(hashed),
            mapping={
                "id": token_id,
                "role": role.value,
                "volunteer_id": volunteer_id or "",
                "created_at": now_iso,
                "grids": ",".join(grids),
            },
        )
        pipe.set(self.keys.token_id(token_id), hashed)
        if role is Role.CAPTAIN and volunteer_id:
            for grid in grids:
                pipe.hincrby(self.keys.captain_grids(volunteer_id), grid, 1)
                pipe.hincrby(self.keys.grid_captains(), grid, 1)
        pipe.execute()

    def record(self, token: str) -> dict[str, str] | None:
        data = self.r.hgetall(self.keys.token(digest(token)))
        return decode_hash(data) if data else None

    def record_by_id(self, token_id: str) -> dict[str, str] | None:
        """A token's record by its id (role, volunteer_id); None once revoked."""
        hashed = self.r.get(self.keys.token_id(token_id))
        if hashed is None:
            return None
        data = self.r.hgetall(self.keys.token(text(hashed)))
        return decode_hash(data) if data else None

    def secret(self, name: str) -> str:
        """A random secret generated once and kept in Redis, the same for every process of the service."""
        key = self.keys.secret(name)
        self.r.set(key, secrets.token_hex(32), nx=True)
        return text(self.r.get(key) or b"")

    def revoke(self, token_or_id: str) -> bool:
        """Revoke by token id or by the token itself; False when neither is known."""
        stored = self.r.get(self.keys.token_id(token_or_id))
        if stored is not None:
            token_id, hashed = token_or_id, text(stored)
        else:
            hashed = digest(token_or_id)
            token_id = text(self.r.hget(self.keys.token(hashed), "id") or b"")
            if not token_id:
                return False
        record = decode_hash(self.r.hgetall(self.keys.token(hashed)))
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.token(hashed))
        pipe.delete(self.keys.token_id(token_id))
        removed = pipe.execute()[0]
        if removed and record.get("role") == Role.CAPTAIN.value and record.get("volunteer_id"):
            key = self.keys.captain_grids(record["volunteer_id"])
            for grid in filter(None, record.get("grids", "").split(",")):
                if self.r.hincrby(key, grid, -1) <= 0:
                    self.r.hdel(key, grid)
                if self.r.hincrby(self.keys.grid_captains(), grid, -1) <= 0:
                    self.r.hdel(self.keys.grid_captains(), grid)
        return True
