"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


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
    auto_close_seconds: int = 72 * 3600
    reopen_window_seconds: int = 7 * 24 * 3600
    deadline_risk_ratio: float = 0.8
    # incidents: "family=count/km/minutes;..." (see service.incidents.parse_rules)
    incident_rules: str = ""
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
    rate_limit: str = "600/minute"
    demo_tokens_file: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read AIDLINE_* variables (and REDIS_URL), then apply explicit overrides."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        if "REDIS_URL" in env:
            values["redis_url"] = env["REDIS_URL"]
        for f in fields(cls):
            name = f"AIDLINE_{f.name.upper()}"
            if name not in env:
                continue
            raw = env[name]
            default = f.default
            if f.name == "grid_channels":
                values[f.name] = _grid_channels(raw)
            elif f.name == "notify_retry_intervals":
                values[f.name] = _ints(raw)
            elif f.name == "dispatcher_channels":
                values[f.name] = tuple(u for u in raw.split() if u)
            elif isinstance(default, bool):
                values[f.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _grid_channels(raw: str) -> dict[str, tuple[str, ...]]:
    """Parse 'grid-1=url url;grid-2=url' into a mapping."""
    mapping: dict[str, tuple[str, ...]] = {}
    for part in raw.split(";"):
        if "=" not in part:
            continue
        grid, urls = part.split("=", 1)
        mapping[grid.strip()] = tuple(u for u in urls.split() if u)
    return mapping
