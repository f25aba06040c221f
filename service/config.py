"""Settings read from the environment, in one place."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from string import Formatter
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits

from service.models import Priority


class SettingError(ValueError):
    """A setting the process cannot start with; the message names the variable."""


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _above(low: float) -> Callable[[float], bool]:
    return lambda value: value > low


def _from(low: float) -> Callable[[float], bool]:
    return lambda value: value >= low


def _web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _redis_url(value: str) -> bool:
    parts = urlsplit(value)
    return (parts.scheme in ("redis", "rediss") and bool(parts.netloc)) or (parts.scheme == "unix" and bool(parts.path))


def _rate_limit(value: str) -> bool:
    if not value.strip():
        return True  # no limit
    try:
        limits.parse_many(value)
    except ValueError:
        return False
    return True


def _apprise_url(value: str) -> bool:
    scheme, _, rest = value.partition("://")
    return bool(scheme) and bool(rest) and " " not in value


def _sms_template(value: str) -> bool:
    """An apprise URL with {phone} or {phone_digits} in it, and no other placeholder."""
    if not value:
        return True
    try:
        names = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
        value.format(phone="+8613800000000", phone_digits="8613800000000")
    except (ValueError, KeyError, IndexError, AttributeError):
        return False
    return _apprise_url(value) and bool(names) and names <= {"phone", "phone_digits"}


def _tiles_url(value: str) -> bool:
    return not value or (_web_url(value.replace("{s}", "a")) and all(part in value for part in ("{z}", "{x}", "{y}")))


def _time_zone(value: str) -> bool:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _geocoders() -> list[str]:
    from geopy.geocoders import SERVICE_TO_GEOCODER  # geopy is imported only where a geocoder is named

    return sorted(SERVICE_TO_GEOCODER)


WHOLE_FROM_0 = (_from(0), "a whole number from 0")
WHOLE_FROM_1 = (_from(1), "a whole number from 1")
KM_FROM_0 = (_from(0), "a number of km from 0")
RATE_LIMIT = (_rate_limit, "a rate limit like 300/minute or 20/second;600/minute (empty: no limit)")
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "redis_url": (_redis_url, "a Redis URL like redis://127.0.0.1:6379/0 (rediss://, unix://)"),
    "key_prefix": (lambda value: bool(value) and not any(c.isspace() for c in value), "a prefix without spaces"),
    "public_url": (_web_url, "an http:// or https:// URL"),
    "first_ring_km": (_above(0), "a number of km above 0"),
    "area_km2": (_above(0), "a number of km2 above 0"),
    "max_radius_km": (_above(0), "a number of km above 0"),
    "max_offers": WHOLE_FROM_1,
    "batch_window_ms": (lambda value: 0 <= value <= 60_000, "a whole number of ms from 0 to 60000"),
    "parallel_after_expiry": WHOLE_FROM_1,
    "parallel_reach_km": KM_FROM_0,
    "move_saving_km": KM_FROM_0,
    "preempt_margin_km": KM_FROM_0,
    "fair_slack_ratio": (_from(0), "a number from 0"),
    "fair_slack_km": KM_FROM_0,
    "fair_pool": WHOLE_FROM_0,
    "travel_speed_kmh": (_above(0), "a speed in km/h above 0"),
    "auto_close_seconds": WHOLE_FROM_1,
    "reopen_window_seconds": WHOLE_FROM_0,
    "deadline_risk_ratio": (lambda value: 0 < value <= 1, "a share above 0 and at most 1"),
    "geocoder": (lambda value: not value or value in _geocoders(), "a geocoder geopy knows"),
    "geocoder_scheme": (lambda value: value in ("http", "https"), "http or https"),
    "geocoder_timeout": (_above(0), "a number of seconds above 0"),
    "worker_processes": WHOLE_FROM_1,
    "notify_processes": WHOLE_FROM_0,
    "maintenance_interval": WHOLE_FROM_1,
    "job_timeout": WHOLE_FROM_1,
    "notify_retry_intervals": (lambda value: all(s >= 0 for s in value), "seconds from 0, comma-separated"),
    "sms_url_template": (_sms_template, "an apprise URL with {phone} or {phone_digits} in it"),
    "dispatcher_channels": (lambda urls: all(map(_apprise_url, urls)), "apprise URLs (scheme://...), space-separated"),
    "offer_reminder_ratio": (lambda value: 0 < value < 1, "a share above 0 and below 1"),
    "timezone": (_time_zone, "a time zone, e.g. Asia/Shanghai"),
    "max_content_length": WHOLE_FROM_1,
    "max_bulk_content_length": WHOLE_FROM_1,
    "rate_limit_dispatcher": RATE_LIMIT,
    "rate_limit_intake": RATE_LIMIT,
    "rate_limit_ops": RATE_LIMIT,
    "rate_limit_volunteer": RATE_LIMIT,
    "rate_limit_anonymous": RATE_LIMIT,
    "rate_limit_inbound": RATE_LIMIT,
    "rate_limit_captain": RATE_LIMIT,
    "proxy_hops": WHOLE_FROM_0,
    "map_tiles_url": (_tiles_url, "an http(s) tile URL template with {z}, {x} and {y}"),
}
"""What each setting's value must be, beyond its form; the ones not here take any text (secrets, names, paths)
or are checked as they are read (parallel offers, grid channels, visit cadence) or by the domain's own parser
(incident rules, the escalation ladder: service.bootstrap.check_settings)."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable; each field maps to an AIDLINE_* variable (REDIS_URL is read as is)."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "aidline:"
    public_url: str = "http://127.0.0.1:8000"
    # matching
    first_ring_km: float = 0.01
    area_km2: float = 2000.0
    max_radius_km: float = 25.0
    max_offers: int = 10
    batch_window_ms: int = 300
    """Ordinary needs wait this long for others arriving with them, to be assigned together; urgent ones never."""
    parallel_offers: dict[str, int] = field(default_factory=lambda: {"critical": 3})
    """Volunteers offered a need at once, per open place, by priority (1 when not named)."""
    parallel_after_expiry: int = 2
    """Volunteers offered at once per open place once an offer of the need went unanswered."""
    parallel_reach_km: float = 2.0
    """Offers beyond one per place go only to volunteers at most this many km further than the nearest."""
    move_saving_km: float = 0.5
    """A pending offer of an ordinary need is moved to another volunteer when that lets a need arriving later
    have its nearest and shortens the total travel by more than this many km (0 turns it off)."""
    preempt_margin_km: float = 2.0
    """An urgent need takes a nearer volunteer's pending offer of an ordinary need when the nearest free
    volunteer is more than this many km further (about 4 minutes at 30 km/h)."""
    fair_slack_ratio: float = 0.10
    """Fair load: volunteers within the tie band plus this share of the nearest's distance ..."""
    fair_slack_km: float = 0.5
    """... but never more than this many km count as nearly as near; fewer recent tasks go first."""
    fair_pool: int = 8
    """At most this many of the nearly as near are weighed (0 turns fair load off)."""
    travel_speed_kmh: float = 30.0
    """How fast volunteers are assumed to travel, to keep needs with arrive_by to those who can make it."""
    auto_close_seconds: int = 72 * 3600
    reopen_window_seconds: int = 7 * 24 * 3600
    deadline_risk_ratio: float = 0.8
    # incidents: "family=count/km/minutes;..." (see service.incidents.parse_rules)
    incident_rules: str = ""
    # households and their recurring visits
    visit_cadence: dict[str, int] = field(default_factory=lambda: {"red": 7, "orange": 30, "yellow": 91, "green": 182})
    """Days between visits per attention level: red weekly, orange monthly, yellow quarterly, green half-yearly."""
    # geocoding
    geocoder: str = ""
    geocoder_domain: str = ""
    geocoder_scheme: str = "https"
    geocoder_user_agent: str = "aidline"
    geocoder_timeout: float = 5.0
    # workers
    worker_processes: int = 2
    notify_processes: int = 1
    maintenance_interval: int = 30
    job_timeout: int = 20
    # notifications
    notify_retry_intervals: tuple[int, ...] = (30, 60, 180, 300, 360)
    sms_url_template: str = ""
    dispatcher_channels: tuple[str, ...] = ()
    grid_channels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inbound_sms_secret: str = ""
    offer_reminder_ratio: float = 0.5
    timezone: str = "UTC"
    # http
    max_content_length: int = 64 * 1024
    max_bulk_content_length: int = 4 * 1024 * 1024
    # rate limits (flask-limiter syntax, e.g. "300/minute" or "20/second;600/minute"; empty: no limit)
    rate_limits: bool = True
    rate_limit_dispatcher: str = "20000/minute"
    rate_limit_intake: str = "20000/minute"
    rate_limit_ops: str = "1200/minute"
    rate_limit_volunteer: str = "300/minute"
    rate_limit_anonymous: str = "120/minute"
    rate_limit_inbound: str = "3000/minute"
    proxy_hops: int = 0
    demo_tokens_file: str = ""
    # captains on call and the escalation ladder (see service.ladder.parse_ladder)
    ack_seconds: int = 600
    """How long a tier of the escalation ladder has to acknowledge before the next is told."""
    ack_seconds_critical: int = 180
    """The same for critical needs."""
    escalation_ladder: str = ""
    """JSON: the tiers, a default and per grid; empty: the on-call captain, then the dispatchers."""
    rate_limit_captain: str = "1200/minute"
    # the console
    secret_key: str = field(default="", repr=False)
    """Signs the console's session cookies; unset: a random key generated once and kept in Redis."""
    map_tiles_url: str = ""
    """An XYZ tile URL template for the console's map (unset: no base layer, the map draws on a plain background)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read AIDLINE_* variables (and REDIS_URL), then apply explicit overrides."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        if "REDIS_URL" in env:
            values["redis_url"] = _checked("REDIS_URL", "redis_url", env["REDIS_URL"], env["REDIS_URL"])
        for f in fields(cls):
            name = f"AIDLINE_{f.name.upper()}"
            if name not in env:
                continue
            try:
                values[f.name] = _checked(name, f.name, env[name], _setting(f.name, env[name], f.default))
            except SettingError:
                raise
            except ValueError:
                kind = {int: "a whole number", float: "a number"}.get(type(f.default), "in the form the README gives")
                raise SettingError(f"{name}: {env[name]!r} is not {kind}") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _checked(variable: str, name: str, raw: str, value: object) -> object:
    """The value, when it is one the setting can take (CHECKS); otherwise SettingError naming the variable."""
    check, wanted = CHECKS.get(name, (lambda _: True, ""))
    if check(value):
        return value
    if name == "geocoder":
        wanted += f" ({', '.join(_geocoders())})"
    raise SettingError(f"{variable}: {raw!r} is not {wanted}")


def _setting(name: str, raw: str, default: object) -> object:
    """One AIDLINE_* variable's text as the setting's value (ValueError when it is not one)."""
    if name == "grid_channels":
        return _grid_channels(raw)
    if name == "parallel_offers":
        return _per_priority(raw)
    if name == "visit_cadence":
        return _visit_cadence(raw)
    if name == "notify_retry_intervals":
        return _ints(raw)
    if name == "dispatcher_channels":
        return tuple(u for u in raw.split() if u)
    if isinstance(default, bool):
        if raw.strip().lower() not in TRUE_WORDS + FALSE_WORDS:
            raise SettingError(f"AIDLINE_{name.upper()}: {raw!r} is not true or false")
        return raw.strip().lower() in TRUE_WORDS
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError(raw)
        return number
    return raw


def _per_priority(raw: str) -> dict[str, int]:
    """Parse 'critical=3,high=2' into a mapping; an unknown priority or a count below 1 stops the process at start."""
    mapping: dict[str, int] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, count = part.partition("=")
        name = name.strip()
        if name not in set(Priority) or not count.strip().isdigit() or int(count) < 1:
            raise SettingError(
                f"AIDLINE_PARALLEL_OFFERS: {part.strip()!r} is not priority=count (priorities "
                f"{', '.join(Priority)}; count a whole number from 1)"
            )
        mapping[name] = int(count)
    return mapping


def _grid_channels(raw: str) -> dict[str, tuple[str, ...]]:
    """Parse 'grid-1=url url;grid-2=url' into a mapping; a part without a grid or apprise URLs stops the process."""
    mapping: dict[str, tuple[str, ...]] = {}
    for part in raw.split(";"):
        if not part.strip():
            continue
        grid, _, urls = part.partition("=")
        channels = tuple(u for u in urls.split() if u)
        if not grid.strip() or not channels or not all(map(_apprise_url, channels)):
            raise SettingError(
                f"AIDLINE_GRID_CHANNELS: {part.strip()!r} is not grid=urls (apprise URLs, space-separated; "
                "grids separated by ;)"
            )
        mapping[grid.strip()] = channels
    return mapping


def _visit_cadence(raw: str) -> dict[str, int]:
    """Parse 'red=7,orange=30' (days) over the defaults; a level not named keeps its default.

    A malformed value (an unknown level, days not a whole number from 1 to 3660) stops the process at start."""
    cadence = dict(Settings().visit_cadence)
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, days = part.partition("=")
        name = name.strip()
        if name not in cadence or not days.strip().isdigit() or not 1 <= int(days) <= 3660:
            raise SettingError(
                f"AIDLINE_VISIT_CADENCE: {part.strip()!r} is not level=days (levels red, orange, yellow, green; "
                "days 1-3660)"
            )
        cadence[name] = int(days)
    return cadence
