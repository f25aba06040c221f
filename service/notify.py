"""Asking for people to be told about a need: a notify job per event, never sent inline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service import jobs

if TYPE_CHECKING:
    from service.bootstrap import Deps


def announce(deps: Deps, topic: str, need_id: str, *, volunteer_id: str = "", offer_id: str = "") -> None:
    """Queue the notifications for one event; the notify job works out recipients and channels."""
    deps.jobs.enqueue(jobs.SEND_NOTIFICATIONS, topic, need_id, volunteer_id, offer_id, queue=jobs.NOTIFY)
