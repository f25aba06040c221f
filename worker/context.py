"""The dependencies a job runs with, built once per worker process from the job's connection."""

from __future__ import annotations

import redis
from rq import get_current_job

from service.bootstrap import Deps, bootstrap
from service.config import Settings

_cache: dict[int, Deps] = {}


def current_deps() -> Deps:
    """Deps bound to the Redis connection of the running job (the test's Redis under test)."""
    job = get_current_job()
    connection: redis.Redis = job.connection if job is not None else None  # type: ignore[assignment]
    key = id(connection)
    if key not in _cache:
        _cache[key] = bootstrap(Settings.from_env(), connection=connection)
    return _cache[key]
