"""Operating Aidline: the RQ dashboard behind the ops role, Prometheus metrics, request ids, rate
limits, and the `aidline ops` / `aidline demo` commands run as a shell user would run them."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.registry import FailedJobRegistry

from service import create_app
from service import demo as demo_data
from service.bootstrap import bootstrap
from service.captains import on_call
from service.cli import demo_volunteers
from service.clock import ManualClock, SystemClock
from service.config import Settings
from service.deps import Deps
from tests.conftest import NEED, RedisServer, Tokens
from tests.e2e.conftest import aidline, free_port, process_env

DASHBOARD = "/ops/rq/"

pytestmark = [
    # apprise (validating notification channels) imports the stdlib imghdr module, deprecated in 3.11
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- the RQ dashboard ------------------------------------------------------------------------


def test_dashboard_without_credentials_asks_for_basic_auth(client: Any) -> None:
    reply = client.get(DASHBOARD)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert reply.mimetype == "application/json"
    assert reply.get_json()["code"] == 401


@pytest.mark.parametrize(
    "path",
    [
        DASHBOARD,
        "/ops/rq/0/data/queues.json",
        "/ops/rq/0/view/workers",
        "/ops/rq/0/view/jobs",
        "/ops/rq/0/data/jobs/low/failed/8/asc/1.json",
        "/ops/rq/0/data/workers.json",
    ],
)
def test_every_dashboard_page_is_behind_the_ops_role(client: Any, tokens: Tokens, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers=basic("ops", "ald_not-a-token")).status_code == 401
    assert client.get(path, headers=tokens.dispatcher).status_code == 403
    assert client.get(path, headers=basic("me", tokens.token("dispatcher"))).status_code == 403
    assert client.get(path, headers=tokens.ops).status_code == 200


def test_dashboard_opens_with_the_ops_token_as_bearer_or_as_basic_password(client: Any, tokens: Tokens) -> None:
    bearer = client.get(DASHBOARD, headers=tokens.ops)
    assert bearer.status_code == 200
    assert bearer.mimetype == "text/html"
    browser = client.get(DASHBOARD, headers=basic("anyone", tokens.token("ops")))
    assert browser.status_code == 200
    assert browser.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/ops/rq/queue/low/queued/empty", "/ops/rq/requeue/all", "/ops/rq/job/nope/delete"])
def test_the_dashboard_changes_nothing_even_for_ops(client: Any, tokens: Tokens, path: str) -> None:
    for headers in (tokens.ops, basic("anyone", tokens.token("ops"))):
        reply = client.post(path, headers=headers)

        assert reply.status_code == 403
        assert reply.mimetype == "application/json"
        assert "read-only" in reply.get_json()["message"]


def test_the_dashboard_requeues_nothing_by_a_plain_get_either(client: Any, tokens: Tokens) -> None:
    # rq-dashboard's "requeue all" answers GET too: a link or an image elsewhere must not move failed jobs
    for path in ("/ops/rq/requeue/low", "/ops/rq/requeue/default"):
        reply = client.get(path, headers=tokens.ops)

        assert reply.status_code == 403
        assert "read-only" in reply.get_json()["message"]


def test_forbidden_dashboard_answer_is_json(client: Any, tokens: Tokens) -> None:
    reply = client.get(DASHBOARD, headers=tokens.dispatcher)
    assert reply.mimetype == "application/json"
    assert reply.get_json()["code"] == 403
    assert "ops" in reply.get_json()["message"]


# --- /metrics --------------------------------------------------------------------------------


def scrape(client: Any) -> dict[tuple[str, frozenset], float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.content_type.startswith("text/plain")
    assert reply.headers["Content-Type"].count("charset") == 1, reply.headers["Content-Type"]
    samples = {}
    for family in text_string_to_metric_families(reply.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def bucket_counts(samples: dict, histogram: str) -> dict[float, float]:
    """A histogram's buckets by upper bound (as numbers: '1', '1.0' and '+Inf' all parse)."""
    found = {}
    for (name, labels), count in samples.items():
        if name == f"{histogram}_bucket":
            found[float(dict(labels)["le"])] = count
    return dict(sorted(found.items()))


def test_metrics_report_queue_depth_and_needs_by_status(client: Any, make_need: Callable, work: Callable) -> None:
    make_need()
    make_need(priority="low", vulnerability=[])
    before = scrape(client)
    assert value(before, "aidline_backlog", backlog="match") == 2
    assert value(before, "aidline_backlog", backlog="notify") == 2, "two 'received' announcements"
    assert value(before, "aidline_queue_depth", queue="urgent") == 1, "one drain job for both"
    assert value(before, "aidline_queue_depth", queue="notify") == 1
    assert value(before, "aidline_needs", status="queued") == 2
    for queue in ("urgent", "default", "low", "notify"):
        assert ("aidline_queue_depth", frozenset({("queue", queue)})) in before

    work()
    after = scrape(client)
    assert value(after, "aidline_needs", status="queued") == 0
    assert value(after, "aidline_needs", status="escalated") == 2, "no volunteers: both escalate"
    assert value(after, "aidline_queue_depth", queue="urgent") == 0
    assert value(after, "aidline_backlog", backlog="match") == 0


def test_intake_to_first_offer_histogram_counts_a_match(
    client: Any, clock: ManualClock, make_volunteer: Callable, make_need: Callable, work: Callable
) -> None:
    """A need first offered 7.5 s after intake is counted once, in the 15 s bucket and every one above."""
    make_volunteer(on_duty=True)
    before = scrape(client)
    assert value(before, "aidline_intake_to_first_offer_seconds_count") == 0
    clock.set(clock.now().replace(microsecond=0))  # intake on a whole second: stamps keep whole seconds
    make_need()
    clock.advance(7.5)
    work()
    after = scrape(client)
    assert value(after, "aidline_intake_to_first_offer_seconds_count") == 1
    assert value(after, "aidline_intake_to_first_offer_seconds_sum") == 7.5
    buckets = bucket_counts(after, "aidline_intake_to_first_offer_seconds")
    assert buckets == {bound: (1.0 if bound >= 15 else 0.0) for bound in buckets}, "counted cumulatively"
    assert 15.0 in buckets and float("inf") in buckets


def test_declined_offer_is_counted(
    client: Any, tokens: Tokens, make_volunteer: Callable, make_need: Callable, work: Callable
) -> None:
    volunteer = make_volunteer(on_duty=True)
    need = make_need()
    work()
    [offer] = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["assignments"]
    assert value(scrape(client), "aidline_offers_ended_total", outcome="declined") == 0

    reply = client.post(
        f"/api/v1/offers/{offer['offer_id']}/decline",
        json={"reason": "no car today"},
        headers=tokens.volunteer(volunteer["id"]),
    )
    assert reply.status_code == 200, reply.get_json()

    after = scrape(client)
    assert value(after, "aidline_offers_ended_total", outcome="declined") == 1
    assert value(after, "aidline_offers_ended_total", outcome="expired") == 0


def test_escalation_is_counted(client: Any, make_need: Callable, work: Callable) -> None:
    assert value(scrape(client), "aidline_escalations_total") == 0
    make_need()
    work()
    assert value(scrape(client), "aidline_escalations_total") == 1


def test_failed_notification_attempt_is_counted(
    client: Any, make_volunteer: Callable, make_need: Callable, work: Callable
) -> None:
    unreachable = f"json://127.0.0.1:{free_port()}/hook"  # nothing listens there
    make_volunteer(on_duty=True, channels=[unreachable])
    assert value(scrape(client), "aidline_notification_failures_total") == 0
    make_need()
    work()
    assert value(scrape(client), "aidline_notification_failures_total") >= 1


# --- request ids -------------------------------------------------------------------------------


def test_request_id_is_echoed_when_sent(client: Any, tokens: Tokens) -> None:
    reply = client.get("/api/v1/needs", headers={**tokens.dispatcher, "X-Request-Id": "call-centre:4711"})
    assert reply.headers["X-Request-Id"] == "call-centre:4711"


def test_request_id_is_generated_when_missing_or_unusable(client: Any) -> None:
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second
    odd = client.get("/healthz", headers={"X-Request-Id": "has spaces and\ttabs"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", odd)


def test_error_answers_carry_a_request_id_too(client: Any) -> None:
    reply = client.get("/api/v1/needs", headers={"X-Request-Id": "trace-401"})
    assert reply.status_code == 401
    assert reply.headers["X-Request-Id"] == "trace-401"


# --- rate limits -------------------------------------------------------------------------------


@pytest.fixture
def limited_client(redis_server: RedisServer, connection: Any) -> Any:
    settings = Settings.from_env(
        {}, redis_url=redis_server.url, public_url="http://aid.test", rate_limit_dispatcher="3/minute"
    )
    deps: Deps = bootstrap(settings, connection=connection)
    app = create_app({"TESTING": True, "SETTINGS": settings, "DEPS": deps})
    return app.test_client(), Tokens(deps)


def test_fourth_request_in_a_minute_gets_429_json_with_retry_after(limited_client: Any) -> None:
    client, tokens = limited_client
    allowed = [client.get("/api/v1/needs", headers=tokens.dispatcher) for _ in range(3)]
    assert [r.status_code for r in allowed] == [200, 200, 200]
    limited = client.get("/api/v1/needs", headers=tokens.dispatcher)
    assert limited.status_code == 429
    assert all("Retry-After" not in r.headers for r in allowed), "Retry-After belongs to the 429 only"
    assert limited.mimetype == "application/json"
    assert limited.get_json()["code"] == 429
    assert int(limited.headers["Retry-After"]) > 0


def test_rate_limit_is_per_token_and_spares_health_checks(limited_client: Any) -> None:
    client, tokens = limited_client
    for _ in range(4):
        client.get("/api/v1/needs", headers=tokens.dispatcher)
    assert client.get("/api/v1/needs", headers=tokens.dispatcher).status_code == 429
    assert client.get("/api/v1/needs", headers=tokens.ops).status_code == 200, "another token has its own budget"
    for _ in range(5):
        assert client.get("/healthz").status_code == 200


# --- the aidline command -----------------------------------------------------------------------


@pytest.fixture
def env(redis_server: RedisServer, deps: Deps) -> dict[str, str]:
    """The environment for `aidline` subprocesses: the (emptied) test Redis."""
    return process_env(redis_server.url)


def test_ops_status_prints_queues_workers_and_needs(env: dict[str, str], make_need: Callable) -> None:
    make_need()
    make_need()
    out = aidline("ops", "status", env=env).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["queue", "queued", "started", "scheduled", "failed"]
    urgent = next(line.split() for line in lines if line.startswith("urgent"))
    assert urgent[1] == "1", out  # one drain job for both needs
    assert "workers: 0" in lines
    assert "waiting: 2 needs to match, 2 announcements" in lines
    assert "needs: queued 2" in lines
    assert "escalated: -" in lines

    report = json.loads(aidline("ops", "status", "--json", env=env).stdout)
    assert report["needs"]["queued"] == 2
    assert report["queues"]["urgent"]["queued"] == 1
    assert report["waiting"] == {"match": 2, "announcements": 2}
    assert report["workers"] == []


def test_ops_status_lists_escalated_needs(env: dict[str, str], make_need: Callable, work: Callable) -> None:
    need = make_need()
    work()
    out = aidline("ops", "status", env=env).stdout
    assert f"escalated: {need['id']}" in out.splitlines()


def test_ops_requeue_failed_puts_failed_jobs_back_on_their_queue(
    env: dict[str, str], connection: Any, work: Callable
) -> None:
    low = Queue("low", connection=connection)
    low.enqueue("worker.jobs.no_such_job", "x")
    work()
    failed = FailedJobRegistry(queue=low)
    assert failed.count == 1

    out = aidline("ops", "requeue-failed", env=env).stdout
    assert out.strip() == "requeued 1 failed jobs"
    assert failed.count == 0
    assert low.count == 1
    assert aidline("ops", "requeue-failed", env=env).stdout.strip() == "requeued 0 failed jobs"


def test_ops_sweep_requeues_a_need_stuck_for_over_a_minute(
    env: dict[str, str], clock: ManualClock, connection: Any, deps: Deps, make_need: Callable
) -> None:
    make_need()
    fresh = json.loads(aidline("ops", "sweep", env=env).stdout)
    assert fresh == {
        "requeued": 0,
        "expired_offers": 0,
        "escalated_or_overdue": 0,
        "ladder_steps": 0,
        "visits_due": 0,
        "visit_needs_written": 0,
        "visits_overdue": 0,
    }

    clock.set(SystemClock().now() - timedelta(minutes=5))
    stuck_need = make_need()  # taken in five minutes ago ...
    deps.store.backlog.take_waiting(10)  # ... and lost with a drain that crashed
    Queue("urgent", connection=connection).empty()
    deps.store.backlog.disarm("match")
    stuck = json.loads(aidline("ops", "sweep", env=env).stdout)
    assert stuck["requeued"] == 1
    assert deps.store.backlog.waiting_ids() == [stuck_need["id"]]
    drains = {job.func_name for job in Queue("urgent", connection=connection).get_jobs()}
    assert drains == {"worker.jobs.drain_matches"}


def test_demo_load_twice_adds_the_volunteers_once(env: dict[str, str], deps: Deps, tmp_path: Path) -> None:
    tokens_file = tmp_path / "demo-tokens.env"
    first = aidline("demo", "load", "--tokens-file", str(tokens_file), env=env)
    count = len(demo_volunteers())
    assert f"demo volunteers: {count} added" in first.stderr
    second = aidline("demo", "load", "--tokens-file", str(tokens_file), env=env)
    assert f"demo volunteers: 0 added, {count} in the data set" in second.stderr

    assert deps.store.volunteers.count() == count
    printed = dict(line.removeprefix("export ").split("=", 1) for line in first.stdout.splitlines())
    assert set(printed) == {"DISPATCHER_TOKEN", "INTAKE_TOKEN", "OPS_TOKEN", "VOLUNTEER_TOKEN", "CAPTAIN_TOKEN"}
    for name, token in printed.items():
        record = deps.store.tokens.record(token)
        assert record is not None, name
        assert record["role"] == name.removesuffix("_TOKEN").lower()

    captain = demo_data.demo_captain()
    households = len(demo_data.demo_care()["households"])
    assert f"demo households: {households} added" in first.stderr
    assert f"demo households: 0 added, {households} in the data set" in second.stderr
    assert deps.store.households.count() == households
    assert deps.store.captains.grids_of(captain.volunteer_id) == {captain.grid}
    assert on_call(deps=deps, grid=captain.grid).volunteer_id == captain.volunteer_id
    assert on_call(deps=deps, grid=captain.grid, at=deps.clock.now() + timedelta(days=3, hours=7)).volunteer_id == (
        captain.volunteer_id
    ), "around the clock"
    assert dict(line.removeprefix("export ").split("=", 1) for line in second.stdout.splitlines()) == printed, (
        "valid tokens are reused"
    )
    assert tokens_file.stat().st_mode & 0o777 == 0o600


def test_token_create_prints_only_the_token(env: dict[str, str], deps: Deps) -> None:
    done = aidline("token", "create", "--role", "ops", env=env)
    token = done.stdout.strip()
    assert done.stdout == token + "\n"
    assert deps.store.tokens.record(token)["role"] == "ops"
    refused = aidline("token", "create", "--role", "volunteer", env=env, check=False)
    assert refused.returncode == 2
    assert "--volunteer-id is required" in refused.stderr


def test_token_create_for_a_captain_names_the_volunteer_and_the_grids(
    env: dict[str, str], deps: Deps, make_volunteer: Callable
) -> None:
    volunteer = make_volunteer()

    done = aidline(
        "token",
        "create",
        "--role",
        "captain",
        "--volunteer-id",
        volunteer["id"],
        "--grid",
        "grid-2",
        "--grid",
        "grid-3",
        env=env,
    )

    record = deps.store.tokens.record(done.stdout.strip())
    assert (record["role"], record["volunteer_id"], record["grids"]) == ("captain", volunteer["id"], "grid-2,grid-3")
    assert deps.store.captains.grids_of(volunteer["id"]) == {"grid-2", "grid-3"}
    for args, says in (
        (["--volunteer-id", volunteer["id"]], "--grid is required"),
        (["--grid", "grid-2"], "--volunteer-id is required"),
        (["--volunteer-id", "vol_nobody", "--grid", "grid-2"], "no volunteer vol_nobody"),
        (["--volunteer-id", volunteer["id"], "--grid", "grid 2"], "without spaces"),
    ):
        refused = aidline("token", "create", "--role", "captain", *args, env=env, check=False)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    refused = aidline("token", "create", "--role", "dispatcher", "--grid", "grid-2", env=env, check=False)
    assert refused.returncode == 2 and "--grid is only for the captain role" in refused.stderr


def test_surge_dispatch_is_counted(
    client: Any, tokens: Tokens, make_volunteer: Callable, make_need: Callable, work: Callable
) -> None:
    names = ("aidline_parallel_offers_total", "aidline_joint_batches_total", "aidline_joint_needs_total")
    before = scrape(client)
    assert all((name, frozenset()) in before for name in names), "exposed from the start"
    near = NEED["location"]
    for i in range(3):
        make_volunteer(
            on_duty=True, capacity=1, phone=f"+861380000010{i}", location={**near, "lat": near["lat"] + i / 200}
        )
    critical = make_need(priority="critical")
    work()
    assignments = client.get(f"/api/v1/needs/{critical['id']}", headers=tokens.dispatcher).get_json()["assignments"]
    assert len(assignments) == 3
    first = assignments[0]
    assert (
        client.post(
            f"/api/v1/offers/{first['offer_id']}/accept", headers=tokens.volunteer(first["volunteer_id"])
        ).status_code
        == 200
    )
    make_need(priority="normal", vulnerability=[])  # ordinary: takes one of the two now free
    make_need(priority="normal", vulnerability=[])
    work()
    make_need(priority="normal", vulnerability=["livestock"])  # urgent: takes an ordinary need's pending offer
    work()

    after = scrape(client)
    assert value(after, "aidline_parallel_offers_total") == 3
    assert value(after, "aidline_offers_ended_total", outcome="taken") == 2
    assert value(after, "aidline_joint_batches_total") == 1
    assert value(after, "aidline_joint_needs_total") == 2
    assert value(after, "aidline_offers_ended_total", outcome="preempted") == 1
