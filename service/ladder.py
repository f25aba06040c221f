"""The escalation ladder's rules, pure: which tiers a grid's escalations climb, and how fast.

AIDLINE_ESCALATION_LADDER is JSON: a `default` ladder and, per grid, its own; each ladder a list of
tiers, each tier `{"tier": name, "kind": "captain" | "dispatchers" | "channels", "channels": [apprise
URLs] (kind channels only), "ack_seconds": n, "ack_seconds_critical": n}` (kind defaults to the tier's
name when that is a kind; the times to AIDLINE_ACK_SECONDS and AIDLINE_ACK_SECONDS_CRITICAL). Unset:
the on-call captain, then the dispatchers. A mistake stops the process at start (parse_ladder raises).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from service.config import SettingError, Settings
from service.models import Priority, Tier, TierKind

DEFAULT_LADDER = ({"tier": "captain"}, {"tier": "dispatchers"})
TIER_FIELDS = {"tier", "kind", "channels", "ack_seconds", "ack_seconds_critical"}
MAX_TIERS = 10
MAX_ACK_SECONDS = 7 * 24 * 3600


def _problem(where: str, text: str) -> SettingError:
    return SettingError(f"AIDLINE_ESCALATION_LADDER: {where}: {text}")


def parse_tier(item: Any, where: str, *, ack_seconds: int, ack_seconds_critical: int) -> Tier:
    if not isinstance(item, dict):
        raise _problem(where, 'a tier is an object such as {"tier": "captain"}')
    unknown = set(item) - TIER_FIELDS
    if unknown:
        raise _problem(where, f"unknown field(s) {sorted(unknown)}; a tier takes {sorted(TIER_FIELDS)}")
    name = item.get("tier")
    if not isinstance(name, str) or not 1 <= len(name) <= 40 or not name.replace("_", "").replace("-", "").isalnum():
        raise _problem(where, '"tier" is a name of 1-40 letters, digits, - or _')
    kind_name = item.get("kind", name if name in {k.value for k in TierKind} else TierKind.CHANNELS.value)
    try:
        kind = TierKind(kind_name)
    except ValueError:
        raise _problem(where, f'"kind" is one of {[k.value for k in TierKind]}') from None
    channels = item.get("channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) and "://" in c for c in channels):
        raise _problem(where, '"channels" is a list of apprise URLs')
    if kind is TierKind.CHANNELS and not channels:
        raise _problem(where, f'tier "{name}" tells its own channels: give "channels"')
    if kind is not TierKind.CHANNELS and channels:
        raise _problem(where, f'"channels" is only for kind "channels" (tier "{name}" is {kind.value})')
    times = []
    for field_name, default in (("ack_seconds", ack_seconds), ("ack_seconds_critical", ack_seconds_critical)):
        value = item.get(field_name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 10 <= value <= MAX_ACK_SECONDS:
            raise _problem(where, f'"{field_name}" is a whole number of seconds from 10 to {MAX_ACK_SECONDS}')
        times.append(value)
    return Tier(name=name, kind=kind, ack_seconds=times[0], ack_seconds_critical=times[1], channels=tuple(channels))


def parse_ladder(raw: str, *, ack_seconds: int = 600, ack_seconds_critical: int = 180) -> dict[str, tuple[Tier, ...]]:
    """The ladders by grid ('default' for grids not named). Raises SettingError (a ValueError) naming what is wrong."""
    for name, value in (("AIDLINE_ACK_SECONDS", ack_seconds), ("AIDLINE_ACK_SECONDS_CRITICAL", ack_seconds_critical)):
        if not 10 <= value <= MAX_ACK_SECONDS:
            raise SettingError(f"{name}: {value} is not within 10 to {MAX_ACK_SECONDS} seconds")
    try:
        config = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as bad:
        raise SettingError(f"AIDLINE_ESCALATION_LADDER: not JSON ({bad.msg} at character {bad.pos})") from None
    if not isinstance(config, dict):
        raise _problem("the whole", 'an object: {"default": [tiers], "grid-1": [tiers], ...}')
    config.setdefault("default", list(DEFAULT_LADDER))
    ladders = {}
    for grid, tiers in config.items():
        if not isinstance(tiers, list) or not 1 <= len(tiers) <= MAX_TIERS:
            raise _problem(f'"{grid}"', f"a list of 1 to {MAX_TIERS} tiers")
        parsed = tuple(
            parse_tier(item, f'"{grid}" tier {i}', ack_seconds=ack_seconds, ack_seconds_critical=ack_seconds_critical)
            for i, item in enumerate(tiers)
        )
        names = [t.name for t in parsed]
        if len(set(names)) != len(names):
            raise _problem(f'"{grid}"', "two tiers with one name")
        ladders[grid] = parsed
    return ladders


@cache
def _ladders(raw: str, ack_seconds: int, ack_seconds_critical: int) -> dict[str, tuple[Tier, ...]]:
    return parse_ladder(raw, ack_seconds=ack_seconds, ack_seconds_critical=ack_seconds_critical)


def ladders(settings: Settings) -> dict[str, tuple[Tier, ...]]:
    """Every configured ladder, by grid."""
    return _ladders(settings.escalation_ladder, settings.ack_seconds, settings.ack_seconds_critical)


def ladder_for(settings: Settings, grid: str | None) -> tuple[Tier, ...]:
    """The tiers a need of this grid climbs: the grid's own ladder, else the default."""
    configured = ladders(settings)
    return configured.get(grid or "", configured["default"])


def tier_named(settings: Settings, grid: str | None, name: str) -> Tier | None:
    return next((t for t in ladder_for(settings, grid) if t.name == name), None)


def window(tier: Tier, priority: Priority | None) -> int:
    """Seconds the tier has to acknowledge before the next is told."""
    return tier.ack_seconds_critical if priority is Priority.CRITICAL else tier.ack_seconds
