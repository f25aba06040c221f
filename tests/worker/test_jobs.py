"""Job functions: a job enqueued by an earlier version, with positional arguments, still runs.

Jobs wait in Redis for up to days (auto-close waits 72 hours) and a deploy may happen meanwhile.
Today's code enqueues by keyword; these tests enqueue the way the version before did (positional
ids) and run the jobs with today's code in a real worker.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from rq import Queue, Retry
from rq.job import JobStatus

from service import jobs
from tests.conftest import NEED, VOLUNTEER


def enqueue_positionally(connection: Any, queue: str, func: str, *args: str) -> Any:
    """A job as the earlier version enqueued it: dotted name, positional string arguments."""
    return Queue(queue, connection=connection).enqueue(func, *args, retry=Retry(max=3))


def test_a_match_job_with_a_positional_need_id_offers_the_need(
    connection: Any, client: Any, tokens: Any, make_volunteer: Any, work: Any
) -> None:
    volunteer = make_volunteer(on_duty=True)
    need = client.post("/api/v1/needs", json=NEED, headers=tokens.dispatcher).get_json()
    Queue(jobs.URGENT, connection=connection).empty()  # drop today's keyword job: only the old one runs
    old = enqueue_positionally(connection, jobs.URGENT, jobs.MATCH_NEED, need["id"])

    work(queues=jobs.MATCH_QUEUES)

    assert old.get_status(refresh=True) == JobStatus.FINISHED
    assert old.return_value()["offered"]
    got = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()
    assert [a["volunteer_id"] for a in got["assignments"]] == [volunteer["id"]]


def test_every_job_of_the_earlier_version_runs_with_positional_arguments(
    connection: Any, client: Any, tokens: Any, make_volunteer: Any, work: Any
) -> None:
    volunteer = make_volunteer(on_duty=True, location=VOLUNTEER["location"])
    need = client.post("/api/v1/needs", json=NEED, headers=tokens.dispatcher).get_json()
    work()
    [offer] = client.get(f"/api/v1/volunteers/{volunteer['id']}/offers", headers=tokens.dispatcher).get_json()["items"]
    old_jobs = [
        enqueue_positionally(connection, jobs.URGENT, jobs.EXPIRE_OFFER, offer["id"]),
        enqueue_positionally(connection, jobs.LOW, jobs.AUTO_CLOSE, need["id"]),
        enqueue_positionally(connection, jobs.DEFAULT, jobs.REMATCH_NEAR, volunteer["id"]),
        enqueue_positionally(connection, jobs.NOTIFY, jobs.REMIND_OFFER, offer["id"]),
        enqueue_positionally(
            connection, jobs.NOTIFY, jobs.SEND_NOTIFICATIONS, "escalated", need["id"], "", "", "a reason", "evt_1"
        ),
        enqueue_positionally(connection, jobs.DEFAULT, jobs.SWEEP),
    ]

    work()

    assert [job.get_status(refresh=True) for job in old_jobs] == [JobStatus.FINISHED] * len(old_jobs)
    assert old_jobs[0].return_value() is False  # not due yet: the offer stays
    assert old_jobs[3].return_value() is True  # the reminder went out for the pending offer


def test_the_match_drain_logs_one_line_per_need_naming_it(
    client: Any, tokens: Any, make_volunteer: Any, work: Any, caplog: pytest.LogCaptureFixture
) -> None:
    make_volunteer(on_duty=True)
    ids = [client.post("/api/v1/needs", json=NEED, headers=tokens.dispatcher).get_json()["id"] for _ in range(2)]

    with caplog.at_level(logging.INFO, logger="aidline"):
        work(queues=jobs.MATCH_QUEUES)

    lines = {r.need_id: r for r in caplog.records if r.getMessage() == "match"}  # type: ignore[attr-defined]
    assert set(lines) == set(ids), "a need can be followed from its request to the worker"
    assert any(line.offered for line in lines.values())  # type: ignore[attr-defined]
