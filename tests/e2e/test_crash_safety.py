"""Crash safety: workers and Redis die without warning; nothing that was acknowledged is lost, no
need is left stuck and no volunteer capacity is left reserved once the sweeper has run.

Every test here uses this module's own redis-server (`private_redis`), which some of them kill."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Queue, SimpleWorker

from service import create_app, sweeper
from service.backlog import MATCH_BATCH
from service.bootstrap import bootstrap
from service.cli import create_token
from service.clock import ManualClock
from service.config import Settings
from service.deps import Deps
from service.jobs import DRAIN_MATCHES, MATCH_QUEUES, URGENT
from service.models import Role
from tests.conftest import NEED, VOLUNTEER
from tests.e2e.conftest import (
    Background,
    RedisServer,
    bin_path,
    flushed,
    live_offers_of,
    process_env,
    wait_for,
    wait_until_in_aof,
)
from worker import context

VOLUNTEERS = 20
CAPACITY = 2
NEEDS = 50  # more needs than the 40 units of capacity: some must escalate


@pytest.fixture
def crash_settings(private_redis: RedisServer) -> Settings:
    return Settings.from_env({}, redis_url=private_redis.url, public_url="http://aid.test")


@pytest.fixture
def crash_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def crash_deps(crash_settings: Settings, private_redis: RedisServer, crash_clock: ManualClock) -> Iterator[Deps]:
    """Deps on the private Redis, emptied first; built like production (fail-fast client), with a clock
    the test moves; installed for the jobs this process runs."""
    flushed(private_redis.url).close()
    deps = bootstrap(crash_settings, clock=crash_clock)
    context.install(deps)
    yield deps
    context.install(None)
    deps.redis.close()


@pytest.fixture
def crash_app(crash_settings: Settings, crash_deps: Deps) -> Any:
    return create_app({"TESTING": True, "SETTINGS": crash_settings, "DEPS": crash_deps})


@pytest.fixture
def crash_client(crash_app: Any) -> Any:
    return crash_app.test_client()


@pytest.fixture
def dispatcher(crash_deps: Deps) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(crash_deps.store, Role.DISPATCHER, None)}"}


def register_volunteers(client: Any, headers: dict[str, str], count: int = VOLUNTEERS) -> list[str]:
    ids = []
    for i in range(count):
        body = {
            **VOLUNTEER,
            "name": f"Volunteer {i}",
            "phone": f"+86138000{i:05d}",
            "channels": [],
            "on_duty": True,
            "capacity": CAPACITY,
            "location": {"lat": 46.33 + (i % 5) * 0.004, "lon": 132.21 + (i // 5) * 0.004},
        }
        reply = client.post("/api/v1/volunteers", json=body, headers=headers)
        assert reply.status_code == 201, reply.get_json()
        ids.append(reply.get_json()["id"])
    return ids


def submit_needs(client: Any, headers: dict[str, str], count: int = NEEDS) -> list[str]:
    ids = []
    for i in range(count):
        body = {
            **NEED,
            "description": f"need {i}",
            "location": {"lat": 46.33 + (i % 7) * 0.003, "lon": 132.22 + (i // 7) * 0.003},
        }
        reply = client.post("/api/v1/needs", json=body, headers=headers)
        assert reply.status_code == 201, reply.get_json()
        ids.append(reply.get_json()["id"])
    return ids


def statuses(deps: Deps, need_ids: list[str]) -> dict[str, str]:
    return {n.id: n.status for n in deps.store.needs.get_many(need_ids) if n is not None}


def run_match_jobs(deps: Deps) -> None:
    """A healthy burst worker, in this process, on the match queues."""
    SimpleWorker([Queue(q, connection=deps.redis) for q in MATCH_QUEUES], connection=deps.redis).work(
        burst=True, logging_level="WARNING"
    )


def assert_nothing_stuck_and_capacity_consistent(deps: Deps, need_ids: list[str], volunteer_ids: list[str]) -> None:
    """Every need is offered, assigned or escalated; each volunteer's load is exactly its live offers,
    within capacity; each need's live offers match its 'active' count and never exceed what it asked for."""
    needs = deps.store.needs.get_many(need_ids)
    assert all(n is not None for n in needs)
    stuck = {n.id: n.status for n in needs if n.status not in ("offered", "assigned", "escalated")}
    assert stuck == {}, f"needs left stuck: {stuck}"
    for need in needs:
        live = [o for o in deps.store.offers.of_need(need.id) if o.status in ("pending", "accepted")]
        assert len(live) == need.active, (need.id, need.status, need.active, [(o.id, o.status) for o in live])
        assert len(live) <= need.volunteers_needed, need.id
        if need.status == "offered":
            assert live, f"{need.id} is offered but has no live offer"
    pending_index = set(m.decode() for m in deps.redis.zrange(deps.store.keys.pending_offers(), 0, -1))
    for volunteer in deps.store.volunteers.get_many(volunteer_ids):
        assert volunteer is not None
        live = live_offers_of(deps, volunteer.id)
        assert volunteer.load == len(live), f"{volunteer.id}: load {volunteer.load}, live offers {live}"
        assert volunteer.load <= volunteer.capacity, volunteer.id
        pending = {o.id for o in deps.store.offers.get_many(live) if o.status == "pending"}
        assert pending <= pending_index, "every pending offer is indexed for expiry by the sweeper"
    total_capacity = sum(v.capacity for v in deps.store.volunteers.get_many(volunteer_ids) if v)
    placed = sum(1 for n in needs if n.status in ("offered", "assigned"))
    assert placed == min(len(need_ids), total_capacity), "every unit of free capacity was offered"


HANGING_WORKER = textwrap.dedent(
    """
    import sys, time, pathlib
    import redis
    from rq import Queue, SimpleWorker
    from service.bootstrap import bootstrap
    from service.config import Settings
    from service.store.offers import OfferStore
    from worker import context
    import worker.jobs  # noqa: F401

    url, marker, hang_on, where = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    original = OfferStore.match_many
    calls = 0

    def match_many(self, requests):
        global calls
        calls += 1
        if calls == hang_on and where == "before_reserve":
            marker.write_text(requests[0].need_id)
            time.sleep(3600)
        result = original(self, requests)
        if calls == hang_on and where == "after_reserve":
            marker.write_text(requests[0].need_id)
            time.sleep(3600)
        return result

    OfferStore.match_many = match_many
    connection = redis.Redis.from_url(url)
    context.install(bootstrap(Settings.from_env({}, redis_url=url), connection=connection))
    queues = [Queue(name, connection=connection) for name in ("urgent", "default", "low")]
    SimpleWorker(queues, connection=connection).work(burst=True, logging_level="WARNING")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before_reserve", "after_reserve"])
def test_worker_killed_in_the_middle_of_a_match_leaves_nothing_stuck_after_the_sweep(
    where: str,
    crash_client: Any,
    crash_deps: Deps,
    dispatcher: dict[str, str],
    spawn: Callable[..., Background],
    tmp_path: Path,
    crash_clock: ManualClock,
) -> None:
    """A worker is SIGKILLed while matching the second batch of 50 needs (just before, or just after,
    the batch's atomic reservations). The sweep re-enqueues what was left queued or matching, a healthy worker
    runs it, and then every need is offered, assigned or escalated, with capacity accounted exactly."""
    volunteer_ids = register_volunteers(crash_client, dispatcher)
    need_ids = submit_needs(crash_client, dispatcher)
    marker = tmp_path / "hung-on"
    doomed = spawn(
        [sys.executable, "-c", HANGING_WORKER, crash_deps.settings.redis_url, str(marker), "2", where],
        process_env(crash_deps.settings.redis_url),
        "hanging-worker",
    )
    wait_for(lambda: marker.exists() or not doomed.alive(), timeout=60, what="the worker to reach the second batch")
    assert doomed.alive(), doomed.output()
    doomed.kill()

    hung = marker.read_text()
    before = statuses(crash_deps, need_ids)
    assert before[hung] == ("queued" if where == "before_reserve" else "offered")
    assert sum(1 for s in before.values() if s == "queued") >= NEEDS - 2 * MATCH_BATCH, (
        "the crash interrupted the burst"
    )

    crash_clock.advance(sweeper.STUCK_AFTER_SECONDS + 60)  # past the stuck threshold, also for the crashed run
    report = sweeper.sweep(deps=crash_deps)
    left = sum(1 for s in before.values() if s in ("queued", "matching"))
    assert report["requeued"] == left
    run_match_jobs(crash_deps)

    assert_nothing_stuck_and_capacity_consistent(crash_deps, need_ids, volunteer_ids)


@pytest.mark.slow
def test_aidline_worker_sigkilled_during_a_burst_is_repaired_by_the_sweep(
    crash_client: Any,
    crash_deps: Deps,
    crash_clock: ManualClock,
    dispatcher: dict[str, str],
    spawn: Callable[..., Background],
) -> None:
    """The real `aidline worker` (two match processes) is SIGKILLed, children and all, as soon as
    it has made its first offers for a burst of 50 needs. Where exactly it died is up to timing; the
    outcome must not be: once STUCK_AFTER_SECONDS have passed, after the sweep and a burst worker,
    nothing is stuck and every reservation is accounted for."""
    volunteer_ids = register_volunteers(crash_client, dispatcher)
    env = process_env(crash_deps.settings.redis_url)
    need_ids = submit_needs(crash_client, dispatcher)
    worker = spawn([bin_path("aidline"), "worker", "--processes", "2", "--notify-processes", "0"], env, "worker")
    wait_for(
        lambda: any(s != "queued" for s in statuses(crash_deps, need_ids).values()) or not worker.alive(),
        timeout=60,
        interval=0.01,
        what="the first match",
    )
    assert worker.alive(), worker.output()
    worker.kill()

    left = sum(1 for s in statuses(crash_deps, need_ids).values() if s in ("queued", "matching"))
    crash_clock.advance(sweeper.STUCK_AFTER_SECONDS + 60)
    report = sweeper.sweep(deps=crash_deps)
    assert report["requeued"] == left
    run_match_jobs(crash_deps)

    assert_nothing_stuck_and_capacity_consistent(crash_deps, need_ids, volunteer_ids)


def test_redis_killed_and_restarted_keeps_everything_that_was_acknowledged(
    crash_client: Any, crash_deps: Deps, dispatcher: dict[str, str], private_redis: RedisServer
) -> None:
    """Redis runs with appendonly yes and appendfsync everysec: the test waits until Redis has written
    what it answered to the AOF file, SIGKILLs redis-server, then restarts it on the same AOF directory
    and port. Every need and volunteer answered with 2xx is there, readable through the same app, and
    so are the match jobs queued for the needs."""
    volunteer_ids = register_volunteers(crash_client, dispatcher, count=5)
    need_ids = submit_needs(crash_client, dispatcher, count=10)
    before = {nid: crash_client.get(f"/api/v1/needs/{nid}", headers=dispatcher).get_json() for nid in need_ids}
    assert match_jobs_waiting(crash_deps) == need_ids
    wait_until_in_aof(private_redis.url)

    private_redis.kill()
    private_redis.start()

    for need_id in need_ids:
        reply = crash_client.get(f"/api/v1/needs/{need_id}", headers=dispatcher)
        assert reply.status_code == 200, reply.get_json()
        assert reply.get_json() == before[need_id]
    for volunteer_id in volunteer_ids:
        reply = crash_client.get(f"/api/v1/volunteers/{volunteer_id}", headers=dispatcher)
        assert reply.status_code == 200, reply.get_json()
    listed = crash_client.get("/api/v1/needs?limit=100", headers=dispatcher).get_json()
    assert {n["id"] for n in listed["items"]} == set(need_ids)
    assert match_jobs_waiting(crash_deps) == need_ids
    run_match_jobs(crash_deps)
    assert set(statuses(crash_deps, need_ids).values()) <= {"offered", "escalated"}


def match_jobs_waiting(deps: Deps) -> list[str]:
    """The needs waiting for a match, in the order the drains take them, if a drain job is queued for them."""
    drains = [job for job in Queue(URGENT, connection=deps.redis).get_jobs() if job.func_name == DRAIN_MATCHES]
    return deps.store.backlog.waiting_ids() if drains else []


def assert_503_json(reply: Any) -> None:
    assert reply.status_code == 503, (reply.status_code, reply.get_data(as_text=True)[:500])
    assert reply.mimetype == "application/json"
    body = reply.get_json()
    assert body["code"] == 503
    assert body["status"] == "Service Unavailable"
    assert body["message"]


def test_api_answers_503_json_while_redis_is_down_and_recovers_without_a_restart(
    crash_client: Any, crash_deps: Deps, dispatcher: dict[str, str], private_redis: RedisServer
) -> None:
    """While Redis is down every endpoint that needs it answers 503 in the JSON error format (never 500,
    never HTML); /healthz stays 200. When Redis is back on the same port, the same app serves again.
    (The token is in the AOF file before the kill, so it is still valid after the restart.)"""
    volunteer_ids = register_volunteers(crash_client, dispatcher, count=1)
    wait_until_in_aof(private_redis.url)
    private_redis.kill()
    try:
        assert_503_json(crash_client.get("/api/v1/needs", headers=dispatcher))
        down = crash_client.post("/api/v1/needs", json=NEED, headers=dispatcher)
        assert_503_json(down)
        assert down.headers.get("Retry-After")
        assert_503_json(crash_client.post("/api/v1/needs", json=NEED, headers={**dispatcher, "Idempotency-Key": "k1"}))
        assert_503_json(crash_client.get(f"/api/v1/volunteers/{volunteer_ids[0]}", headers=dispatcher))
        assert_503_json(crash_client.get("/api/v1/track/some-code"))
        assert_503_json(crash_client.get("/metrics"))
        assert_503_json(crash_client.get("/ops/rq/", headers=dispatcher))
        ready = crash_client.get("/readyz")
        assert_503_json(ready)
        assert "redis is not reachable" in ready.get_json()["message"]
        assert crash_client.get("/healthz").status_code == 200
    finally:
        private_redis.start()

    listed = crash_client.get("/api/v1/needs", headers=dispatcher)
    assert listed.status_code == 200, listed.get_json()
    created = crash_client.post("/api/v1/needs", json=NEED, headers={**dispatcher, "Idempotency-Key": "k1"})
    assert created.status_code == 201, created.get_json()
    assert crash_client.get(f"/api/v1/needs/{created.get_json()['id']}", headers=dispatcher).status_code == 200
    not_ready = crash_client.get("/readyz")
    assert not_ready.status_code == 503
    assert "no worker" in not_ready.get_json()["message"], "Redis answers again; only the worker is missing"


# --- idempotent retries (shared test Redis; nothing is killed) ---------------------------------


def test_retried_need_with_the_same_idempotency_key_creates_one_need(client: Any, tokens: Any, deps: Deps) -> None:
    headers = {**tokens.dispatcher, "Idempotency-Key": "intake-7f3a"}
    first = client.post("/api/v1/needs", json=NEED, headers=headers)
    again = client.post("/api/v1/needs", json=NEED, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    listed = client.get("/api/v1/needs", headers=tokens.dispatcher).get_json()["items"]
    assert [n["id"] for n in listed] == [first.get_json()["id"]]
    assert deps.store.backlog.waiting_ids() == [first.get_json()["id"]], "one need waiting, not two"


def test_retried_volunteer_with_the_same_idempotency_key_creates_one_volunteer(client: Any, tokens: Any) -> None:
    headers = {**tokens.dispatcher, "Idempotency-Key": "reg-0001"}
    body = {**VOLUNTEER, "channels": []}
    first = client.post("/api/v1/volunteers", json=body, headers=headers)
    again = client.post("/api/v1/volunteers", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    listed = client.get("/api/v1/volunteers", headers=tokens.dispatcher).get_json()["items"]
    assert [v["id"] for v in listed] == [first.get_json()["id"]]


@pytest.mark.parametrize("path, body", [("/api/v1/needs", NEED), ("/api/v1/volunteers", {**VOLUNTEER, "channels": []})])
def test_same_idempotency_key_with_a_different_body_is_refused(client: Any, tokens: Any, path: str, body: dict) -> None:
    headers = {**tokens.dispatcher, "Idempotency-Key": "same-key"}
    first = client.post(path, json=body, headers=headers)
    other = client.post(
        path, json={**body, "description" if "kind" in body else "name": "something else"}, headers=headers
    )

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.mimetype == "application/json"
    assert "Idempotency-Key" in other.get_json()["message"]
    listed = client.get(path, headers=tokens.dispatcher).get_json()["items"]
    assert len(listed) == 1, "the refused retry created nothing"


def test_idempotency_keys_are_scoped_to_the_path_and_the_caller(client: Any, tokens: Any) -> None:
    key = {"Idempotency-Key": "shared"}
    need = client.post("/api/v1/needs", json=NEED, headers={**tokens.dispatcher, **key})
    volunteer = client.post(
        "/api/v1/volunteers", json={**VOLUNTEER, "channels": []}, headers={**tokens.dispatcher, **key}
    )
    by_intake = client.post("/api/v1/needs", json=NEED, headers={**tokens.intake, **key})

    assert need.status_code == volunteer.status_code == by_intake.status_code == 201
    assert by_intake.get_json()["id"] != need.get_json()["id"]
    assert "Idempotent-Replayed" not in by_intake.headers
