"""Record ids: short, unique and sortable by creation time."""

from __future__ import annotations

import secrets
import time

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """A short time-sortable id: milliseconds then 48 random bits, base62 (sorts in ASCII order)."""
    return f"{prefix}_{_base62(int(time.time() * 1000), 8)}{_base62(secrets.randbits(48), 9)}"
