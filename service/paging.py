"""Opaque list cursors: either the last id seen or an offset into a distance-ordered list."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from service.exceptions import InvalidInput


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
