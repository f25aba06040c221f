"""Repairing what crashes leave behind, run every minute; every step is idempotent."""

from __future__ import annotations

from service import backlog, clock, dispatch, offers, visits
from service.deps import Deps
from service.models import NeedStatus

STUCK_AFTER_SECONDS = 60
"""A need still queued or matching (or offered to fewer volunteers than it asked for) this long
after its last change gets its match job again."""


def sweep(*, deps: Deps) -> dict[str, int]:
    """Re-enqueue stuck needs, expire overdue offers, escalate needs whose deadline is at risk; make households'
    visits due and mark those past their period overdue."""
    moment = deps.clock.now()
    requeued = 0
    for status in (NeedStatus.QUEUED, NeedStatus.MATCHING, NeedStatus.OFFERED):
        for need in deps.store.needs.get_many(deps.store.needs.ids_with_status(status)):
            if need is None:
                continue
            if status is NeedStatus.OFFERED and need.staffed:
                continue  # every role fully offered: the offers' own expiry moves it on
            changed = deps.store.needs.field(need.id, "status_at") or need.updated_at
            if (moment - clock.parse(changed)).total_seconds() >= STUCK_AFTER_SECONDS:
                backlog.wait_for_match(deps, need)
                requeued += 1
    expired = 0
    for offer_id in deps.store.offers.due_ids(now_epoch=clock.epoch(moment) - 5):
        if offers.expire_offer(deps=deps, offer_id=offer_id):
            expired += 1
    escalated = len(dispatch.check_deadlines(deps=deps))
    cared = visits.sweep_visits(deps=deps)
    rearm(deps)
    return {"requeued": requeued, "expired_offers": expired, "escalated_or_overdue": escalated, **cared}


def rearm(deps: Deps) -> None:
    """Enqueue a drain for every backlog with work left, and arm the expiry timer.

    The drains' flags are not trusted here: a drain job lost with its worker keeps its flag up
    for a while, and a second drain is harmless (matching is atomic; the outbox has one reader).
    """
    if deps.store.backlog.waiting_count():
        backlog.enqueue_drain(deps, backlog.MATCH)
    if deps.store.backlog.outbox_count():
        backlog.enqueue_drain(deps, backlog.NOTIFY)
    stale = clock.epoch(deps.clock.now()) - STUCK_AFTER_SECONDS  # its job should have run by now
    earliest = deps.store.offers.arm_next_expiry(unless_armed_since=stale)
    if earliest is not None:
        backlog.schedule_expiry(deps, earliest)
