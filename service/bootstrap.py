"""The composition root: the one place that builds clients and wires dependencies."""

from __future__ import annotations

import redis

from service.clock import Clock, SystemClock
from service.config import Settings
from service.deps import Deps
from service.geocoding import Geocoder, GeopyGeocoder, NoGeocoder
from service.incidents import parse_rules
from service.jobs import JobQueue
from service.ladder import parse_ladder
from service.store import Store
from worker.queues import RQJobQueue


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast when Redis is down instead of hanging a request."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)


def build_geocoder(settings: Settings) -> Geocoder:
    if not settings.geocoder:
        return NoGeocoder()
    return GeopyGeocoder(
        settings.geocoder,
        user_agent=settings.geocoder_user_agent,
        domain=settings.geocoder_domain,
        scheme=settings.geocoder_scheme,
        timeout=settings.geocoder_timeout,
    )


def check_settings(settings: Settings) -> None:
    """What Settings.from_env cannot check alone: the incident rules, the escalation ladder and the geocoder.

    Every process runs this before it starts anything (a mistake raises SettingError naming the variable)."""
    check_rules(settings)
    build_geocoder(settings)


def check_rules(settings: Settings) -> None:
    """The incident rules and the escalation ladder can be read (SettingError naming the variable otherwise)."""
    parse_rules(settings.incident_rules)
    parse_ladder(
        settings.escalation_ladder, ack_seconds=settings.ack_seconds, ack_seconds_critical=settings.ack_seconds_critical
    )


def bootstrap(
    settings: Settings | None = None,
    *,
    connection: redis.Redis | None = None,
    jobs: JobQueue | None = None,
    geocoder: Geocoder | None = None,
    clock: Clock | None = None,
) -> Deps:
    """Build the store, job queue, geocoder and clock from settings; tests pass their own parts."""
    settings = settings or Settings.from_env()
    check_rules(settings)  # the geocoder is checked as it is built below
    connection = connection or redis_client(settings.redis_url)
    return Deps(
        settings=settings,
        redis=connection,
        store=Store(connection, prefix=settings.key_prefix, timezone=settings.timezone),
        jobs=jobs or RQJobQueue(connection, settings=settings),
        geocoder=geocoder or build_geocoder(settings),
        clock=clock or SystemClock(),
    )
