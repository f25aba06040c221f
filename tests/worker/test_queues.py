"""Enqueuing jobs on RQ: by dotted name, with retries, and grouped into one round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Queue
from rq.registry import ScheduledJobRegistry

from service import jobs
from worker.queues import RQJobQueue


def test_jobs_enqueued_in_a_batch_reach_redis_together_at_the_end_of_the_block(deps: Any) -> None:
    queue = RQJobQueue(deps.redis, settings=deps.settings)
    notify = Queue(jobs.NOTIFY, connection=deps.redis)
    scheduled = ScheduledJobRegistry(queue=Queue(jobs.URGENT, connection=deps.redis))

    with queue.batch():
        queue.enqueue(
            jobs.EXPIRE_OFFER, queue=jobs.URGENT, at=datetime.now(UTC) + timedelta(minutes=5), offer_id="off_1"
        )
        queue.enqueue(jobs.SEND_NOTIFICATIONS, queue=jobs.NOTIFY, topic="offer", need_id="need_1")
        assert notify.count == 0 and scheduled.count == 0, "nothing is sent before the block ends"

    assert [j.func_name for j in notify.jobs] == [jobs.SEND_NOTIFICATIONS]
    assert scheduled.count == 1


def test_every_job_gets_a_retry_and_delivery_jobs_the_configured_backoff(deps: Any) -> None:
    queue = RQJobQueue(deps.redis, settings=deps.settings)

    queue.enqueue(jobs.MATCH_NEED, queue=jobs.DEFAULT, need_id="need_1")
    queue.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id="dlv_1")

    [match] = Queue(jobs.DEFAULT, connection=deps.redis).jobs
    [deliver] = Queue(jobs.NOTIFY, connection=deps.redis).jobs
    assert match.retries_left == 3
    assert deliver.retries_left == len(deps.settings.notify_retry_intervals)
    assert deliver.retry_intervals == list(deps.settings.notify_retry_intervals)
