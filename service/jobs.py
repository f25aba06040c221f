"""Background job names and the port through which domain code asks for them to run."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Protocol

from service.models import Need, Priority, Vulnerability

MATCH_NEED = "worker.jobs.match_need"
EXPIRE_OFFER = "worker.jobs.expire_offer"
REMIND_OFFER = "worker.jobs.remind_offer"
AUTO_CLOSE = "worker.jobs.auto_close"
REMATCH_NEAR = "worker.jobs.rematch_escalated_near"
SEND_NOTIFICATIONS = "worker.jobs.send_notifications"
DELIVER = "worker.jobs.deliver"
SWEEP = "worker.jobs.sweep"

URGENT, DEFAULT, LOW, NOTIFY = "urgent", "default", "low", "notify"
MATCH_QUEUES = (URGENT, DEFAULT, LOW)
ALL_QUEUES = (URGENT, DEFAULT, LOW, NOTIFY)

_URGENT_FLAGS = {
    Vulnerability.ELDERLY_ALONE.value,
    Vulnerability.MEDICAL.value,
    Vulnerability.LIVESTOCK.value,
}


def queue_for(need: Need) -> str:
    """Critical and high priority, and needs of the most vulnerable, jump the queue."""
    if need.priority in (Priority.CRITICAL.value, Priority.HIGH.value) or _URGENT_FLAGS & set(need.vulnerability):
        return URGENT
    if need.priority == Priority.LOW.value:
        return LOW
    return DEFAULT


class JobQueue(Protocol):
    """Runs a job later, by dotted name, with ids as arguments."""

    def enqueue(self, func: str, *args: str, queue: str, at: datetime | None = None) -> None: ...


def batch(queue: JobQueue) -> AbstractContextManager[None]:
    """Group the jobs enqueued in a block into one round trip, where the queue can."""
    grouped = getattr(queue, "batch", None)
    return grouped() if grouped is not None else nullcontext()
