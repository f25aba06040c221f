"""Background job names and the port through which domain code asks for them to run."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Protocol

from service.models import Need, Priority

MATCH_NEED = "worker.jobs.match_need"
EXPIRE_OFFER = "worker.jobs.expire_offer"
REMIND_OFFER = "worker.jobs.remind_offer"
AUTO_CLOSE = "worker.jobs.auto_close"
REMATCH_NEAR = "worker.jobs.rematch_escalated_near"
SEND_NOTIFICATIONS = "worker.jobs.send_notifications"
DELIVER = "worker.jobs.deliver"
SWEEP = "worker.jobs.sweep"
DRAIN_MATCHES = "worker.jobs.drain_matches"
DRAIN_NOTIFICATIONS = "worker.jobs.drain_notifications"
EXPIRE_DUE_OFFERS = "worker.jobs.expire_due_offers"
ADVANCE_LADDER = "worker.jobs.advance_ladder"

URGENT, DEFAULT, LOW, NOTIFY = "urgent", "default", "low", "notify"
MATCH_QUEUES = (URGENT, DEFAULT, LOW)
ALL_QUEUES = (URGENT, DEFAULT, LOW, NOTIFY)


def queue_for(need: Need) -> str:
    """Critical and high priority, and needs of the most vulnerable, jump the queue."""
    if need.urgent:
        return URGENT
    if need.priority is Priority.LOW:
        return LOW
    return DEFAULT


class JobQueue(Protocol):
    """Runs a job later, by dotted name, with ids as keyword arguments.

    Keyword arguments keep a job meaningful while it waits in Redis (up to days) across a
    deploy: job functions keep their parameter names and order, and new ones get defaults.
    """

    def enqueue(self, func: str, *, queue: str, at: datetime | None = None, **kwargs: str) -> None: ...


def batch(queue: JobQueue) -> AbstractContextManager[None]:
    """Group the jobs enqueued in a block into one round trip, where the queue can."""
    grouped = getattr(queue, "batch", None)
    return grouped() if grouped is not None else nullcontext()
