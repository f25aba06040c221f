"""The match backlog: most urgent first, then in order of arrival, drained in small batches."""

from __future__ import annotations

from typing import Any

from service import backlog, dispatch
from tests.conftest import NEED


def test_an_urgent_need_is_taken_before_every_need_that_came_earlier(deps: Any, clock: Any, make_need: Any) -> None:
    low = [make_need(priority="low", vulnerability=[]) for _ in range(3)]
    clock.advance(1)
    normal = make_need(priority="normal", vulnerability=[])
    clock.advance(1)
    critical = make_need(priority="critical", vulnerability=[])
    clock.advance(1)
    elderly = make_need(priority="normal", vulnerability=["elderly_alone"])

    taken = deps.store.backlog.take_waiting(10)

    assert taken == [critical["id"], elderly["id"], normal["id"], *[n["id"] for n in low]]


def test_an_urgent_need_waits_behind_at_most_one_batch(deps: Any, make_need: Any, make_volunteer: Any) -> None:
    make_volunteer(on_duty=True, capacity=5)
    for _ in range(3 * backlog.MATCH_BATCH):
        make_need(priority="low", vulnerability=[])
    first_batch = deps.store.backlog.take_waiting(backlog.MATCH_BATCH)  # a drain is busy with these
    urgent = make_need(**{**NEED, "priority": "critical"})

    next_batch = deps.store.backlog.take_waiting(backlog.MATCH_BATCH)

    assert urgent["id"] not in first_batch
    assert next_batch[0] == urgent["id"]


def test_a_drain_matches_every_waiting_need_and_leaves_the_backlog_empty(
    deps: Any, make_need: Any, make_volunteer: Any
) -> None:
    make_volunteer(on_duty=True, capacity=5)
    needs = [make_need() for _ in range(backlog.MATCH_BATCH + 5)]

    taken = dispatch.drain_matches(deps=deps)

    assert taken == len(needs)
    assert deps.store.backlog.waiting_count() == 0
    statuses = {deps.store.needs.get(n["id"]).status.value for n in needs}
    assert statuses == {"offered", "escalated"}  # five offered (capacity 5), the rest escalated


def test_a_new_need_waits_and_is_announced_in_one_step_arming_each_drain_once(deps: Any, make_need: Any) -> None:
    from rq import Queue

    from service.jobs import MATCH_QUEUES, NOTIFY

    first, second = make_need(), make_need()

    assert deps.store.backlog.waiting_ids() == [first["id"], second["id"]]
    announced = deps.store.backlog.peek_outbox(10)
    assert [(a["topic"], a["need_id"]) for a in announced] == [("received", first["id"]), ("received", second["id"])]
    drains = [j for q in MATCH_QUEUES for j in Queue(q, connection=deps.redis).get_jobs()]
    assert len(drains) == 1, "the match drain was armed by the first need only"
    assert len(Queue(NOTIFY, connection=deps.redis).get_jobs()) == 1, "and so was the notify drain"
