"""The composition root: the one place that builds clients and wires dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from service.config import Settings
from service.geocoding import Geocoder, GeopyGeocoder, NoGeocoder
from service.jobs import JobQueue
from service.store import Store


@dataclass
class Deps:
    """Everything a service function may need, built once per process."""

    settings: Settings
    redis: redis.Redis
    store: Store
    jobs: JobQueue
    geocoder: Geocoder


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


def bootstrap(
    settings: Settings | None = None,
    *,
    connection: redis.Redis | None = None,
    jobs: JobQueue | None = None,
    geocoder: Geocoder | None = None,
) -> Deps:
    """Build the store, job queue and geocoder from settings; tests pass their own parts."""
    settings = settings or Settings.from_env()
    connection = connection or redis_client(settings.redis_url)
    if jobs is None:
        from worker.queues import RQJobQueue  # the RQ edge, wired here and nowhere else

        jobs = RQJobQueue(connection, settings=settings)
    return Deps(
        settings=settings,
        redis=connection,
        store=Store(connection, prefix=settings.key_prefix),
        jobs=jobs,
        geocoder=geocoder or build_geocoder(settings),
    )
