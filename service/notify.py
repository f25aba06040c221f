"""Asking for people to be told about a need: a notify job per event, never sent inline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service import jobs

if TYPE_CHECKING:
    from service.bootstrap import Deps


def announce(
    deps: Deps, topic: str, need_id: str, *, volunteer_id: str = "", offer_id: str = "", reason: str = ""
) -> None:
    """Queue the notifications for one event; the notify job works out recipients and channels.

    An offer's own id names its events (the offer, its reminder). Any other announcement
    carries a fresh event id, so an event that happens again (a second escalation) is told
    again, while a retried notify job still delivers only once.
    """
    from service.store import new_id

    event_id = "" if offer_id else new_id("evt")
    deps.jobs.enqueue(
        jobs.SEND_NOTIFICATIONS, topic, need_id, volunteer_id, offer_id, reason, event_id, queue=jobs.NOTIFY
    )
