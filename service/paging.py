"""Opaque list cursors: either the last id seen or an offset into a distance-ordered list."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from service.exceptions import InvalidInput

T = TypeVar("T")

SCAN_LIMIT = 5000
"""Records looked at for one page at most, however few of them the filters keep."""


def filtered_page(
    *,
    ids_before: Callable[[str | None, int], list[str]],
    get_many: Callable[[list[str]], list[T | None]],
    keep: Callable[[T], bool],
    nearby: set[str] | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[T], str | None]:
    """Records newest first, from an index (`ids_before(last_id, limit)`) or from the ids near a point, kept
    by `keep`; the next cursor is the last id looked at (None at the end)."""
    before = decode_after(cursor)
    found: list[T] = []
    scanned = 0
    while len(found) < limit and scanned < SCAN_LIMIT:
        if nearby is not None:
            ids = sorted((i for i in nearby if before is None or i < before), reverse=True)[:limit]
        else:
            ids = ids_before(before, limit)
        if not ids:
            return found, None
        for record_id, record in zip(ids, get_many(ids), strict=True):
            before = record_id
            scanned += 1
            if record is not None and keep(record):
                found.append(record)
                if len(found) == limit:
                    break
    return found, encode_after(before) if before else None


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _bad() from exc
    if not isinstance(payload, dict):
        raise _bad()
    return payload


def _bad() -> InvalidInput:
    return InvalidInput("invalid cursor", errors={"query": {"cursor": ["Not a cursor returned by this list."]}})


def encode_after(last_id: str) -> str:
    return _encode({"a": last_id})


def decode_after(cursor: str | None) -> str | None:
    payload = _decode(cursor)
    if not payload:
        return None
    value = payload.get("a")
    if not isinstance(value, str) or not value or any(c in value for c in "[]()"):
        raise _bad()
    return value


def encode_offset(offset: int) -> str:
    return _encode({"o": offset})


def decode_offset(cursor: str | None) -> int:
    payload = _decode(cursor)
    if not payload:
        return 0
    value = payload.get("o")
    if not isinstance(value, int) or value < 0 or isinstance(value, bool):
        raise _bad()
    return value
