"""Asking for people to be told about a need: a notify job per event, never sent inline."""

from __future__ import annotations

from service import jobs
from service.deps import Deps
from service.ids import new_id
from service.models import Topic


def announce(
    deps: Deps, topic: Topic, need_id: str, *, volunteer_id: str = "", offer_id: str = "", reason: str = ""
) -> None:
    """Queue the notifications for one event; the notify job works out recipients and channels.

    An offer's own id names its events (the offer, its reminder). Any other announcement
    carries a fresh event id, so an event that happens again (a second escalation) is told
    again, while a retried notify job still delivers only once.
    """
    deps.jobs.enqueue(
        jobs.SEND_NOTIFICATIONS,
        queue=jobs.NOTIFY,
        topic=topic.value,
        need_id=need_id,
        volunteer_id=volunteer_id,
        offer_id=offer_id,
        reason=reason,
        event_id="" if offer_id else new_id("evt"),
    )
