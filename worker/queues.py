"""Enqueuing Aidline jobs on RQ queues, each with its retry policy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from rq import Queue, Retry

from service import jobs
from service.config import Settings
from service.logs import current_request_id

RESULT_TTL = 600
"""Seconds a finished job's result is kept; Aidline's own records hold the outcome."""


class RQJobQueue:
    """The JobQueue port on RQ: jobs by dotted name, ids as arguments, always with a Retry."""

    def __init__(self, connection: redis.Redis, *, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.queues = {name: Queue(name, connection=connection) for name in jobs.ALL_QUEUES}
        self._local = threading.local()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Send the jobs enqueued inside the block to Redis in one round trip (per thread)."""
        if getattr(self._local, "pipeline", None) is not None:
            yield
            return
        self._local.pipeline = self.connection.pipeline()
        self._local.pipeline.multi()  # one transaction, as RQ expects of a pipeline it is handed
        try:
            yield
            self._local.pipeline.execute()
        finally:
            self._local.pipeline = None

    def retry_for(self, func: str) -> Retry:
        if func == jobs.DELIVER:
            intervals = list(self.settings.notify_retry_intervals) or [30]
            return Retry(max=len(intervals), interval=intervals)
        return Retry(max=3, interval=[2, 10, 30])

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None:
        q = self.queues[queue]
        options: dict[str, Any] = {
            "meta": {"request_id": current_request_id()},
            "retry": self.retry_for(func),
            "job_timeout": self.settings.job_timeout,
            "result_ttl": RESULT_TTL,
            "pipeline": getattr(self._local, "pipeline", None),
        }
        if at is None:
            q.enqueue(func, kwargs=kwargs, **options)
        else:
            q.enqueue_at(at, func, kwargs=kwargs, **options)
