"""Work waiting for the workers: needs to match, announcements to plan, offers to expire.

Every need to match waits in one backlog ordered by urgency, then arrival; drain jobs take it
in small batches, most urgent first, so RQ's per-job cost is paid per batch, not per need, and
an urgent need waits behind at most one batch. Announcements wait in an outbox that one drain
plans at a time. Pending offers are expired by one timer armed for the earliest of them. The
sweep re-arms anything a crash left unarmed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service import jobs
from service.deps import Deps
from service.ids import new_id
from service.models import Need, Topic

MATCH, NOTIFY, EXPIRY = "match", "notify", "expiry"
"""The drains and their armed flags."""

URGENCY = {jobs.URGENT: 0, jobs.DEFAULT: 1, jobs.LOW: 2}
"""Urgency classes in the match backlog: every urgent need comes before every default one."""

MATCH_BATCH = 20
"""Needs a match drain takes at once: small, so an urgent need arriving meanwhile waits little."""

DRAIN_SECONDS = 2.0
"""A drain job hands over to a fresh one after this long, so other queues get their turn."""


SAME_MILLISECOND_STEP = 1 / 256
"""Needs arriving in the same millisecond (a batch) keep the order sent, this far apart in score: the finest
step a score of this size still tells apart (doubles keep 52 bits; scores stay below 2**45)."""


def waiting_score(need: Need, at: datetime, *, place: int = 0) -> float:
    """Urgency class first, then arrival in milliseconds, then the place among needs sent together."""
    return URGENCY[jobs.queue_for(need)] * 1e13 + int(at.timestamp() * 1000) + place * SAME_MILLISECOND_STEP


def urgency_and_arrival(score: float) -> tuple[int, float]:
    """A backlog score taken apart: the urgency class and the arrival epoch."""
    urgency = int(score // 1e13)
    return urgency, (score - urgency * 1e13) / 1000


def wait_for_match(deps: Deps, need: Need) -> None:
    """Put the need in the match backlog and make sure a drain job will take it."""
    wait_for_matches(deps, [need])


def wait_for_matches(deps: Deps, needs: list[Need]) -> None:
    """Put needs in the match backlog in one step; the drain is armed (and its job enqueued) once for them all."""
    if not needs:
        return
    at = deps.clock.now()
    scores = {need.id: waiting_score(need, at, place=place) for place, need in enumerate(needs)}
    if deps.store.backlog.add_many_waiting(scores, arm=MATCH):
        enqueue_drain(deps, MATCH)


def announcement(
    topic: Topic, need_id: str, *, volunteer_id: str = "", offer_id: str = "", reason: str = ""
) -> dict[str, str]:
    """One event to tell, as the notify drain reads it.

    An offer's own id names its events (the offer, its reminder). Any other announcement
    carries a fresh event id, so an event that happens again (a second escalation) is told
    again, while planning it twice still delivers only once.
    """
    return {
        "topic": topic.value,
        "need_id": need_id,
        "volunteer_id": volunteer_id,
        "offer_id": offer_id,
        "reason": reason,
        "event_id": "" if offer_id else new_id("evt"),
    }


def announce(
    deps: Deps, topic: Topic, need_id: str, *, volunteer_id: str = "", offer_id: str = "", reason: str = ""
) -> None:
    """Queue the notifications for one event; the notify drain works out recipients and channels."""
    publish(deps, [announcement(topic, need_id, volunteer_id=volunteer_id, offer_id=offer_id, reason=reason)])


ARRIVAL_REPLIES = 4
"""Replies arrivals() adds at the end of its transaction."""


def arrivals(deps: Deps, needs: list[Need], topic: Topic) -> Callable[[Any], None]:
    """What puts new needs in the match backlog and tells each of them (topic), queued at the end of a
    transaction (the one that stores them); then call arrived() with the transaction's replies."""
    at = deps.clock.now()
    scores = {need.id: waiting_score(need, at, place=place) for place, need in enumerate(needs)}
    told = [announcement(topic, need.id) for need in needs]
    return lambda pipe: deps.store.backlog.queue_arrivals(pipe, scores, told, arm_match=MATCH, arm_notify=NOTIFY)


def arrived(deps: Deps, replies: list[Any]) -> None:
    """Enqueue the drains the arrivals' transaction armed."""
    arm_match, arm_notify = deps.store.backlog.armed(replies)
    if arm_match:
        enqueue_drain(deps, MATCH)
    if arm_notify:
        enqueue_drain(deps, NOTIFY)


def announce_each(deps: Deps, topic: Topic, need_ids: list[str]) -> None:
    """Queue one announcement of the topic per need, in one step; the drain is armed once for them all."""
    publish(deps, [announcement(topic, need_id) for need_id in need_ids])


def publish(deps: Deps, announcements: list[dict[str, str]]) -> None:
    if announcements and deps.store.backlog.add_announcements(announcements, arm=NOTIFY):
        enqueue_drain(deps, NOTIFY)


def announce_incident(deps: Deps, topic: Topic, incident_id: str, *, reason: str = "") -> None:
    """Queue the notifications about an incident (not about one need): opened, or a milestone in `reason`.

    Each (incident, topic, reason) is one event, told to each recipient once however often it is planned.
    """
    announcement = {
        "topic": topic.value,
        "need_id": "",
        "incident_id": incident_id,
        "volunteer_id": "",
        "offer_id": "",
        "reason": reason,
        "event_id": "",
    }
    if deps.store.backlog.add_announcement(announcement, arm=NOTIFY):
        enqueue_drain(deps, NOTIFY)


def enqueue_drain(deps: Deps, name: str) -> None:
    """Enqueue the drain job for a backlog whose flag the caller just armed."""
    if name == MATCH:
        deps.jobs.enqueue(jobs.DRAIN_MATCHES, queue=jobs.URGENT)
    elif name == NOTIFY:
        deps.jobs.enqueue(jobs.DRAIN_NOTIFICATIONS, queue=jobs.NOTIFY)


EXPIRY_MARGIN = 0.25
"""The expiry job runs this long after the offer falls due (RQ's scheduler then moves it within a second):
enough for a clock a little behind, short enough that a need waits little for its next offer."""


def schedule_expiry(deps: Deps, epoch: float) -> None:
    """Schedule the expiry job just after the earliest pending offer falls due."""
    at = datetime.fromtimestamp(epoch, UTC) + timedelta(seconds=EXPIRY_MARGIN)
    deps.jobs.enqueue(jobs.EXPIRE_DUE_OFFERS, queue=jobs.URGENT, at=at)
