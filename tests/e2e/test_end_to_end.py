"""Aidline as it is deployed: gunicorn serving the API, `aidline worker` matching, a private Redis,
and nothing but HTTP and the `aidline` command between the test and the service."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NEED, VOLUNTEER
from tests.e2e.conftest import (
    Background,
    Http,
    RedisServer,
    aidline,
    flushed,
    process_env,
    serving_api,
    start_aidline_worker,
    wait_for,
    workers_alive,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(private_redis: RedisServer) -> dict[str, str]:
    flushed(private_redis.url).close()
    return process_env(private_redis.url)


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """gunicorn with the application factory, as in production."""
    with serving_api(env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as http:
        yield http


@pytest.fixture(scope="module")
def dispatcher(api: Http, env: dict[str, str]) -> Http:
    token = aidline("token", "create", "--role", "dispatcher", env=env).stdout.strip()
    assert token.startswith("ald_") and "\n" not in token
    return api.with_token(token)


@pytest.fixture
def start_worker(spawn: Callable[..., Background], env: dict[str, str]) -> Callable[[], Background]:
    """`aidline worker` with one match and one notify process; stopped at teardown by `spawn`."""

    def _start() -> Background:
        return start_aidline_worker(spawn, env)

    return _start


def test_readyz_needs_a_live_worker(api: Http, env: dict[str, str], start_worker: Callable[[], Background]) -> None:
    assert workers_alive(env) == 0

    down = api.get("/readyz")
    assert down.status == 503
    assert down.headers["content-type"].startswith("application/json")
    assert down.json["code"] == 503
    assert "no worker is alive" in down.json["message"]

    worker = start_worker()
    ready = wait_for(lambda: (r := api.get("/readyz")).status == 200 and r, timeout=60, what="/readyz to be 200")
    assert ready.json == {"status": "ready"}

    worker.stop()
    assert worker.process.returncode == 0, worker.output()
    assert workers_alive(env) == 0, "a stopped worker must deregister"
    again = api.get("/readyz")
    assert again.status == 503
    assert "no worker is alive" in again.json["message"]


@pytest.mark.parametrize(
    ("path", "body", "answer", "says"),
    [
        ("/api/v1/needs", {**NEED, "description": "x" * 70_000}, 413, "takes: 64 KB"),
        ("/api/v1/needs/batch", {"needs": [NEED] * 10, "pad": "p" * 4_450_000}, 413, "takes: 4 MB"),
        ("/api/v1/needs/batch", {"needs": [NEED] * 10, "pad": "p" * 4_100_000}, 422, "pad"),
    ],
)
def test_a_chunked_body_is_held_to_the_limit_of_its_endpoint(
    dispatcher: Http, path: str, body: dict[str, object], answer: int, says: str
) -> None:
    response = dispatcher.post(path, body, chunked=True)

    assert response.status == answer, response.text[:300]
    assert says in response.text


def test_healthz_does_not_need_a_worker(api: Http) -> None:
    reply = api.get("/healthz")
    assert reply.status == 200
    assert reply.json == {"status": "ok"}


def test_need_goes_from_intake_to_closed_over_http(
    api: Http, dispatcher: Http, env: dict[str, str], start_worker: Callable[[], Background]
) -> None:
    """Register volunteers, submit a need, the worker offers it to the nearest volunteer, who accepts
    and reports progress; the requester's feedback closes it; the timeline tells the whole story."""
    start_worker()
    near = dispatcher.post(
        "/api/v1/volunteers",
        {**VOLUNTEER, "name": "Near One", "channels": [], "on_duty": True, "location": {"lat": 46.341, "lon": 132.251}},
    )
    far = dispatcher.post(
        "/api/v1/volunteers",
        {
            **VOLUNTEER,
            "name": "Far Two",
            "channels": [],
            "on_duty": True,
            "phone": "+8613800000009",
            "location": {"lat": 46.40, "lon": 132.30},
        },
    )
    assert near.status == 201, near.text
    assert far.status == 201, far.text
    near_id = near.json["id"]
    volunteer = api.with_token(
        aidline("token", "create", "--role", "volunteer", "--volunteer-id", near_id, env=env).stdout.strip()
    )

    created = dispatcher.post("/api/v1/needs", NEED)
    assert created.status == 201, created.text
    assert created.json["status"] == "queued"
    need_id, code = created.json["id"], created.json["tracking_code"]

    offered = wait_for(
        lambda: (r := dispatcher.get(f"/api/v1/needs/{need_id}")).json["status"] == "offered" and r.json,
        timeout=60,
        interval=0.2,
        what="the worker to offer the need",
    )
    [assignment] = offered["assignments"]
    assert assignment["volunteer_id"] == near_id, "the nearest capable volunteer is offered first"
    assert assignment["status"] == "pending"

    mine = volunteer.get(f"/api/v1/volunteers/{near_id}/offers")
    assert mine.status == 200
    assert [o["id"] for o in mine.json["items"] if o["status"] == "pending"] == [assignment["offer_id"]]

    accepted = volunteer.post(f"/api/v1/offers/{assignment['offer_id']}/accept")
    assert accepted.status == 200, accepted.text
    assert accepted.json["status"] == "accepted"
    assert dispatcher.get(f"/api/v1/needs/{need_id}").json["status"] == "assigned"

    for step in ("en_route", "on_site", "done"):
        reply = volunteer.post(f"/api/v1/needs/{need_id}/progress", {"status": step})
        assert reply.status == 200, reply.text
        assert reply.json["status"] == step

    tracked = api.get(f"/api/v1/track/{code}")
    assert tracked.status == 200
    assert tracked.json["status"] == "done"

    feedback = api.post(f"/api/v1/track/{code}/feedback", {"rating": 5, "comment": "water is back", "fixed": True})
    assert feedback.status == 200, feedback.text
    assert feedback.json["status"] == "closed"
    assert feedback.json["rating"] == 5

    events = dispatcher.get(f"/api/v1/needs/{need_id}/events")
    assert events.status == 200
    types = [e["type"] for e in events.json["items"]]
    expected = [
        "created",
        "matching_started",
        "offered",
        "accepted",
        "assigned",
        "en_route",
        "on_site",
        "done",
        "closed",
    ]
    assert [t for t in types if t in expected] == expected, types
    by_type = {e["type"]: e for e in events.json["items"]}
    assert by_type["offered"]["detail"]["volunteer_id"] == near_id
    assert by_type["accepted"]["actor"] == f"volunteer:{near_id}"
    assert by_type["closed"]["actor"] == "requester"
    assert by_type["closed"]["detail"]["rating"] == 5
    stamps = [e["at"] for e in events.json["items"]]
    assert stamps == sorted(stamps), "the timeline is oldest first"

    public = api.get(f"/api/v1/track/{code}").json["timeline"]
    assert [e["type"] for e in public if e["type"] in expected] == expected
    assert near_id not in str(public), "the requester's timeline names roles, not volunteer ids"

    after = dispatcher.get(f"/api/v1/volunteers/{near_id}").json
    assert after["load"] == 0, "a done need frees the volunteer's capacity"


def test_every_answer_carries_a_request_id(api: Http) -> None:
    sent = api.get("/healthz", headers={"X-Request-Id": "e2e-trace-1"})
    assert sent.headers["x-request-id"] == "e2e-trace-1"
    generated = api.get("/healthz")
    assert len(generated.headers["x-request-id"]) >= 16


def test_an_over_long_request_target_is_a_json_414(api: Http) -> None:
    reply = api.get("/api/v1/needs?" + "x" * 9000)
    assert reply.status == 414
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.text)["code"] == 414


def test_gunicorn_log_has_no_tracebacks(api: Http, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run last in this module: nothing above made the API crash."""
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("gunicorn*/gunicorn.log"))
    assert logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert "Traceback" not in text, text[-4000:]
