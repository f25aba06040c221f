"""RQ job functions: each takes ids by keyword, builds nothing at import time, and is safe to run twice.

Jobs may wait in Redis for days (an auto-close waits 72 hours), across deploys: a job function
keeps its parameter names and their order, so jobs enqueued by an earlier version (with
positional arguments) still run, and a new parameter always gets a default.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from service import captains, dispatch, offers, sweeper
from service.models import Topic
from worker import notifications
from worker.context import current_deps

log = logging.getLogger("aidline.worker")


def match_need(need_id: str) -> dict[str, Any]:
    """Offer a need to the nearest eligible volunteers, or escalate it."""
    outcome = dispatch.match_need(deps=current_deps(), need_id=need_id)
    log_match(outcome)
    return {"offered": outcome.offered, "escalated": outcome.escalated, "skipped": outcome.skipped}


def log_match(outcome: dispatch.MatchOutcome) -> None:
    """One line per need matched, so a need can be followed from its request to its offers."""
    log.info(
        "match",
        extra={
            "need_id": outcome.need_id,
            "offered": outcome.offered,
            "escalated": outcome.escalated,
            "skipped": outcome.skipped,
        },
    )


def drain_matches() -> int:
    """Match the waiting needs, most urgent first, in small batches."""
    taken = dispatch.drain_matches(deps=current_deps(), on_outcome=log_match)
    log.info("drain", extra={"matched": taken})
    return taken


def drain_notifications() -> int:
    """Plan the waiting announcements: who hears about each event, one delivery per recipient."""
    job = get_current_job()
    return notifications.drain_notifications(deps=current_deps(), owner=job.id if job else "outside-a-job")


def expire_due_offers() -> int:
    """Expire the offers past their accept-by time; the timer re-arms for the next one."""
    return offers.expire_due_offers(deps=current_deps())


def expire_offer(offer_id: str) -> bool:
    """Expire an unanswered offer and offer the next volunteer."""
    return offers.expire_offer(deps=current_deps(), offer_id=offer_id)


def auto_close(need_id: str) -> bool:
    """Close a done need after the quiet period."""
    return dispatch.auto_close(deps=current_deps(), need_id=need_id)


def rematch_escalated_near(volunteer_id: str) -> list[str]:
    """Re-match escalated needs a newly available volunteer could take."""
    return dispatch.rematch_escalated_near(deps=current_deps(), volunteer_id=volunteer_id)


def send_notifications(
    topic: str, need_id: str, volunteer_id: str = "", offer_id: str = "", reason: str = "", event_id: str = ""
) -> list[str]:
    """Work out who hears about an event and queue one delivery per recipient."""
    return notifications.plan_deliveries(
        deps=current_deps(),
        topic=Topic(topic),
        need_id=need_id,
        volunteer_id=volunteer_id,
        offer_id=offer_id,
        reason=reason,
        event_id=event_id,
    )


def deliver(delivery_id: str) -> str:
    """Send one message on one channel; raises so RQ retries, falls back after the last try."""
    outcome = notifications.deliver(deps=current_deps(), delivery_id=delivery_id)
    log.info("delivery", extra={"delivery_id": delivery_id, "outcome": outcome})
    return outcome


def remind_offer(offer_id: str) -> bool:
    """Remind a volunteer of an offer that is still pending."""
    return notifications.remind_offer(deps=current_deps(), offer_id=offer_id)


def sweep() -> dict[str, int]:
    """Find and repair work that a crash left behind; check deadlines."""
    return sweeper.sweep(deps=current_deps())


def advance_ladder(need_id: str) -> str:
    """Take the escalation ladder's next step if it is due (tell the next tier); a no-op otherwise."""
    return captains.advance_ladder(deps=current_deps(), need_id=need_id)
