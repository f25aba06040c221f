"""What a service function works with: the store, the job queue, the geocoder, the clock, the settings."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from service.clock import Clock
from service.config import Settings
from service.geocoding import Geocoder
from service.jobs import JobQueue
from service.store import Store


@dataclass
class Deps:
    """Everything a service function may need; built once per process by service.bootstrap."""

    settings: Settings
    redis: redis.Redis
    store: Store
    jobs: JobQueue
    geocoder: Geocoder
    clock: Clock
