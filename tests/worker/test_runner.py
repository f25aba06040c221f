"""The worker supervisor's restart policy: a crashing worker is restarted ever more slowly, not in a tight loop."""

from __future__ import annotations

from worker.runner import Backoff


def test_restarts_wait_one_second_then_double_up_to_thirty() -> None:
    backoff = Backoff()
    waits = [backoff.schedule(now=float(i)) for i in range(7)]
    assert waits == [1, 2, 4, 8, 16, 30, 30]


def test_a_worker_that_stays_up_a_minute_is_restarted_quickly_again() -> None:
    backoff = Backoff()
    for i in range(4):
        backoff.schedule(now=float(i))
    started = backoff.restart_at or 0.0

    backoff.note_alive(now=started + 59)
    assert backoff.schedule(now=started + 59) == 16

    backoff.note_alive(now=backoff.started_at + 60)
    assert backoff.schedule(now=backoff.started_at + 60) == 1
