"""Property-based checks of the API against its own OpenAPI document with every check schemathesis has (what
`st run --checks all` runs): for every operation, in the examples, coverage and fuzzing phases, and in stateful
sequences that follow one answer into the next request, valid requests are accepted, invalid ones are rejected,
nothing answers 5xx, every answer has a documented status, content type and shape, and token-protected
operations refuse requests without a token."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from marshmallow import ValidationError, fields
from rq import Worker
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from service import create_app
from service.api.schemas import MAX_LAT
from service.config import Settings
from service.models import Location
from tests.conftest import VOLUNTEER, Tokens

pytestmark = [
    # apprise (validating notification channels) imports the stdlib imghdr module, deprecated in 3.11
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]

OPENAPI = "/api/v1/openapi.json"
SMS_SECRET = "inbound-sms-secret-of-the-test"
MAX_EXAMPLES = 25
"""Generated requests per operation in the fuzzing phase (the coverage phase adds its own, a fixed set)."""

CONFIG = SchemathesisConfig.from_dict(
    {"seed": 20240101, "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"}}
)
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # one app and one set of records for all requests of an operation
    ],
)


def document_app() -> Flask:
    """An app serving the OpenAPI document at collection time; it is never sent a request needing Redis (the
    document is static). Requests of the tests go to the `app` fixture."""
    return create_app(
        {"TESTING": True, "SETTINGS": Settings.from_env({}, redis_url="redis://127.0.0.1:1/0", rate_limits=False)}
    )


SCHEMA = schemathesis.openapi.from_wsgi(OPENAPI, document_app(), config=CONFIG)


class EveryAddressFound:
    """A geocoder that places every address in the sample district, without a network."""

    def locate(self, address: str) -> Location:
        return Location(lat=46.34, lon=132.25)


@pytest.fixture
def app(settings: Settings, deps: Any) -> Flask:
    """The app with its options on: inbound SMS (a shared secret) and a geocoder. No rate limit, so that the 429s
    it documents do not cut a run short."""
    configured = dataclasses.replace(settings, inbound_sms_secret=SMS_SECRET, rate_limits=False)
    wired = dataclasses.replace(deps, settings=configured, geocoder=EveryAddressFound())
    return create_app({"TESTING": True, "SETTINGS": configured, "DEPS": wired})


@pytest.fixture
def worker_alive(deps: Any) -> None:
    """A worker's heartbeat, so that /readyz answers ready, as in a running service."""
    worker = Worker(["default"], connection=deps.redis, name="schemathesis-heartbeat")
    worker.register_birth()
    worker.heartbeat()


@pytest.fixture
def known_ids(make_volunteer: Any, make_need: Any, work: Any, client: Any, tokens: Tokens) -> dict[str, str]:
    """A volunteer, a need offered to them, an incident holding the need, and a household with its planned
    visit: ids for the path parameters of valid requests."""
    volunteer = make_volunteer(on_duty=True)
    tokens.captain(volunteer["id"], "grid-2")  # who a grid's rota may name
    need = make_need()
    work(queues=("urgent", "default", "low"))
    [offer] = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["assignments"]
    incident = client.post(
        "/api/v1/incidents",
        json={"family": "water", "centre": need["location"], "radius_km": 1.0},
        headers=tokens.dispatcher,
    ).get_json()
    household = client.post(
        "/api/v1/households",
        json={
            "address": "Station 2, house 14",
            "location": need["location"],
            "contact": {"name": "Zhang Guilan", "phone": "+8613900000003"},
            "attention_level": "red",
        },
        headers=tokens.dispatcher,
    ).get_json()
    [visit] = client.get(f"/api/v1/households/{household['id']}/visits", headers=tokens.dispatcher).get_json()["items"]
    return {
        "household_id": household["id"],
        "visit_id": visit["id"],
        "volunteer_id": volunteer["id"],
        "need_id": need["id"],
        "offer_id": offer["offer_id"],
        "code": need["tracking_code"],
        "incident_id": incident["id"],
        "grid": "grid-2",
    }


def test_openapi_document_is_served_and_covers_the_api(client: Any) -> None:
    reply = client.get(OPENAPI)
    assert reply.status_code == 200
    paths = reply.get_json()["paths"]
    for path in (
        "/api/v1/needs",
        "/api/v1/volunteers",
        "/api/v1/offers/{offer_id}/accept",
        "/api/v1/track/{code}/feedback",
        "/api/v1/incidents/{incident_id}",
        "/api/v1/households/{household_id}/visits",
        "/api/v1/visits/{visit_id}/outcome",
        "/readyz",
        "/healthz",
    ):
        assert path in paths, path


# --- what JSON Schema cannot say --------------------------------------------------------------------

CHANNELS = [
    "json://hooks.example.org/aidline",
    "ntfy://ntfy.sh/aidline-grid-2",
    "mailtos://user:password@smtp.example.org?from=aid@example.org&to=captain@example.org",
    "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/123456789",
    "twilio://AC1234567890abcdef1234567890abcd:0123456789abcdef0123456789abcdef@+15550001111/+8613800000001",
]
DEADLINE = fields.AwareDateTime()


def in_the_future(body: dict[str, Any]) -> None:
    """Times that must be in the future and within 366 days (deadline, arrive_by), valid but past (or about to be)
    or further ahead, moved to a day ahead."""
    for name in ("deadline", "arrive_by"):
        if not isinstance(body.get(name), str):
            continue
        try:
            moment = DEADLINE.deserialize(body[name])
        except ValidationError:
            continue  # the document calls it valid: the app must too, so send it as it is
        now = datetime.now(UTC)
        if not now + timedelta(hours=1) < moment < now + timedelta(days=365):
            body[name] = (datetime.now(UTC) + timedelta(days=1)).isoformat()


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def rota_that_holds(body: dict[str, Any], captain_id: str) -> None:
    """A rota's rules beyond its schema: shifts of a weekday and overrides do not overlap, dates exist, and each
    volunteer is a captain of the grid. Each shift gets a 45-minute slot of its own, each override an hour of
    its own day."""
    for i, shift in enumerate(body.get("shifts") or []):
        if isinstance(shift, dict):
            start = i // 7 * 45
            shift.update(
                weekday=WEEKDAYS[i % 7],
                start=f"{start // 60:02d}:{start % 60:02d}",
                end=f"{(start + 45) // 60:02d}:{(start + 45) % 60:02d}",
                volunteer_id=captain_id,
            )
    for i, override in enumerate(body.get("overrides") or []):
        if isinstance(override, dict):
            day = (datetime(2030, 1, 1) + timedelta(days=i)).strftime("%Y-%m-%d")
            override.update({"from": f"{day}T08:00", "to": f"{day}T09:00", "volunteer_id": captain_id})


def within_a_span(query: dict[str, Any]) -> None:
    """A report's days as the document says in words: `from` not after `to` (or today), at most 1,098 days."""
    try:
        start = date.fromisoformat(query["from"]) if isinstance(query.get("from"), str) else None
        end = date.fromisoformat(query["to"]) if isinstance(query.get("to"), str) else None
    except ValueError:
        return  # the document calls it valid: the app must too, so send it as it is
    last = end or datetime.now(UTC).date()
    if start is not None and not timedelta(0) <= last - start < timedelta(days=1098):
        query["from"] = last.isoformat()


def meaningful(case: Any, known: dict[str, str], *, pin_paths: bool) -> None:
    """Requests reach real records: path parameters name the test's volunteer, need, offer and tracking code
    (unless the path is what a negative request gets wrong), and inbound SMS carries the shared secret.

    A valid (positive) request also gets what a JSON Schema cannot state, each rule said in words in the
    document, with its 422 (or 404): records that exist (volunteers, households), channel URLs apprise
    understands, times in the future and within a year (deadline, arrive_by), a role the need has, a cursor the
    list returned, and an Idempotency-Key not used before with another body.
    Everything else it holds is sent as generated, and must be accepted."""
    meta = case.meta
    if meta is None:
        return
    if pin_paths and case.path_parameters and not meta.is_negative_at(ParameterLocation.PATH):
        case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
    if case.operation.path == "/api/v1/inbound/sms":
        case.headers = {**(case.headers or {}), "X-Aidline-Secret": SMS_SECRET}
    if meta.is_negative_at(ParameterLocation.QUERY) and case.query:
        # an unknown query parameter generated with no values at all would not be in the URL sent (and the
        # request would be a valid one): it is sent with an empty value, so the request holds what it stands for
        declared = {parameter.name for parameter in case.operation.query}
        case.query = {k: "" if v == [] and k not in declared else v for k, v in case.query.items()}
    if meta.generation.mode is not GenerationMode.POSITIVE:
        return
    body = case.body
    if isinstance(body, dict):
        if isinstance(body.get("channels"), list):
            body["channels"] = [CHANNELS[i % len(CHANNELS)] for i in range(len(body["channels"]))]
        for need in [body, *(n for n in body.get("needs") or [] if isinstance(n, dict))]:  # a batch's too
            in_the_future(need)
        if isinstance(body.get("volunteer_id"), str):
            body["volunteer_id"] = known["volunteer_id"]
        if case.operation.path.endswith("/assign") and "role" in body:
            body["role"] = 0  # a role the need has (its only one)
        if case.operation.path == "/api/v1/grids/{grid}/rota" and case.method.upper() == "PUT":
            case.path_parameters = {**(case.path_parameters or {}), "grid": known["grid"]}
            rota_that_holds(body, known["volunteer_id"])
        if isinstance(body.get("preferred_volunteers"), list):
            body["preferred_volunteers"] = [known["volunteer_id"] for _ in body["preferred_volunteers"]]
        for need in [body, *(n for n in body.get("needs") or [] if isinstance(n, dict))]:
            if isinstance(need.get("household_id"), str):
                need["household_id"] = known["household_id"]
    if case.query:
        case.query = {name: value for name, value in case.query.items() if name not in ("cursor", "secret")}
    if case.operation.path == "/api/v1/reports/summary" and case.query:
        within_a_span(case.query)
    if case.headers and isinstance(case.headers.get("Idempotency-Key"), str):
        case.headers = {**case.headers, "Idempotency-Key": f"{case.id}-{case.headers['Idempotency-Key']}"[:200]}


# --- every operation, every phase, every check --------------------------------------------------------


@SCHEMA.parametrize()
@SETTINGS
def test_operation_conforms_to_the_openapi_document(
    case: Any, app: Flask, tokens: Tokens, known_ids: dict[str, str], worker_alive: None
) -> None:
    """Valid (positive) and invalid (negative) requests, as a dispatcher, under every check. Valid requests
    address real records (a volunteer, a need with a pending offer, its tracking code), so they reach past
    the 404s. The token is sent by the test, not generated, so schemathesis also checks that operations
    refuse requests without it or with a wrong one."""
    meaningful(case, known_ids, pin_paths=True)
    case.call_and_validate(app=app, headers=tokens.dispatcher)


def test_sequences_of_requests_conform_to_the_openapi_document(
    app: Flask, tokens: Tokens, known_ids: dict[str, str], worker_alive: None
) -> None:
    """The stateful phase: requests chained through the links between operations (the id a POST answers
    is used by the next request), every check on every answer.

    Every sequence starts from the same records (a snapshot of Redis taken before the first), so the same
    requests get the same answers: what one sequence left behind (a closed incident, a cancelled need, needs
    forming an incident) would otherwise change which links the next one can follow."""
    redis_client = app.extensions["aidline"].redis
    snapshot = [(key, redis_client.pttl(key), redis_client.dump(key)) for key in redis_client.scan_iter()]

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            redis_client.flushdb()
            for key, ttl, value in snapshot:
                redis_client.restore(key, max(ttl, 0), value, replace=True)

        def before_call(self, case: Any) -> None:
            meaningful(case, known_ids, pin_paths=False)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": app, "headers": tokens.dispatcher}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            # as case.call_and_validate does: the checks know the token was sent by the test, not generated
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=tokens.dispatcher,
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    # Generation only, as schemathesis runs its stateful phase: replaying a sequence to shrink it would meet the
    # records the first run left behind, and report that instead of the failure.
    Workflow.run(
        settings=settings(SETTINGS, phases=[Phase.generate], max_examples=MAX_EXAMPLES, stateful_step_count=10)
    )


def test_every_operation_is_exercised() -> None:
    operations = {result.ok().label for result in SCHEMA.get_all_operations()}
    assert len(operations) >= 20
    assert "POST /api/v1/needs" in operations
    assert "POST /api/v1/track/{code}/feedback" in operations


# --- found by the run above: the extreme coordinates the document allows -----------------------

EDGE_LAT = MAX_LAT  # the documented maximum |lat| (within Redis GEO's limit)


@pytest.mark.parametrize("lat, lon", [(EDGE_LAT, 0.0), (-EDGE_LAT, 0.0), (EDGE_LAT, 180.0), (-EDGE_LAT, -180.0)])
def test_volunteer_at_the_documented_extreme_coordinates_is_registered_and_moved(
    client: Any, tokens: Tokens, lat: float, lon: float
) -> None:
    body = {**VOLUNTEER, "channels": [], "on_duty": True, "location": {"lat": lat, "lon": lon}}
    created = client.post("/api/v1/volunteers", json=body, headers=tokens.dispatcher)
    assert created.status_code == 201, created.get_json()

    other = client.post(
        "/api/v1/volunteers", json={**body, "location": {"lat": 0.0, "lon": 0.0}}, headers=tokens.dispatcher
    )
    assert other.status_code == 201, other.get_json()
    moved = client.put(
        f"/api/v1/volunteers/{other.get_json()['id']}/location",
        json={"lat": lat, "lon": lon},
        headers=tokens.dispatcher,
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["location"]["lat"] == pytest.approx(lat, abs=1e-6)
