"""Property-based checks of the API against its own OpenAPI document (schemathesis): for every
operation, generated requests never get a 5xx, and every answer matches the documented schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.api.schemas import MAX_LAT
from tests.conftest import VOLUNTEER, Tokens

pytestmark = [
    # apprise (validating notification channels) imports the stdlib imghdr module, deprecated in 3.11
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]

OPENAPI = "/api/v1/openapi.json"


@pytest.fixture
def api_schema(app: Any) -> Any:
    """The app's own OpenAPI document, served in process (WSGI): no network, no server."""
    return schemathesis.openapi.from_wsgi(OPENAPI, app)


@pytest.fixture
def known_ids(make_volunteer: Any, make_need: Any, work: Any, client: Any, tokens: Tokens) -> dict[str, str]:
    """A volunteer, and a need offered to them: ids for the path parameters of valid requests."""
    volunteer = make_volunteer(on_duty=True)
    need = make_need()
    work(queues=("urgent", "default", "low"))
    [offer] = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["assignments"]
    return {
        "volunteer_id": volunteer["id"],
        "need_id": need["id"],
        "offer_id": offer["offer_id"],
        "code": need["tracking_code"],
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
        "/readyz",
        "/healthz",
    ):
        assert path in paths, path


def operation_labels() -> list[tuple[str, bool]]:
    """('METHOD /path', takes input?) for every operation in the OpenAPI document, read at collection
    time from an app that is never given a request needing Redis (the document itself is static)."""
    from service import create_app
    from service.config import Settings

    app = create_app(
        {"TESTING": True, "SETTINGS": Settings.from_env({}, redis_url="redis://127.0.0.1:1/0", rate_limit="")}
    )
    document = app.test_client().get(OPENAPI).get_json()
    return [
        (f"{method.upper()} {path}", bool(item.get("parameters") or spec.get("parameters") or spec.get("requestBody")))
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = [label for label, _ in operation_labels()]
CASES = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label, takes_input in operation_labels()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if takes_input or mode is GenerationMode.POSITIVE  # nothing to get wrong without input
]
CHECKS = [not_a_server_error, response_schema_conformance]
READINESS = "GET /readyz"  # 503 is its documented answer while no worker runs: the probe, not a failure


@pytest.mark.parametrize("label, mode", CASES)
def test_operation_conforms_to_the_openapi_document(
    label: str, mode: GenerationMode, app: Any, tokens: Tokens, known_ids: dict[str, str]
) -> None:
    """Valid (positive) and invalid (negative) requests, as a dispatcher: never a 5xx, and every
    documented answer has the documented shape. Valid requests address real records (a volunteer,
    a need with a pending offer, its tracking code), so they reach past the 404s."""
    method, path = label.split(" ", 1)
    operation = schemathesis.openapi.from_wsgi(OPENAPI, app)[path][method]
    real = {name: value for name, value in known_ids.items() if "{" + name + "}" in path}
    strategy = (
        operation.as_strategy(generation_mode=mode, path_parameters=real or None)
        if (mode is GenerationMode.POSITIVE)
        else operation.as_strategy(generation_mode=mode)
    )

    @given(case=strategy)
    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def requests_conform(case: Any) -> None:
        if label == READINESS:
            response = case.call_and_validate(headers=tokens.dispatcher, checks=[response_schema_conformance])
            assert response.status_code in (200, 503)
        else:
            case.call_and_validate(headers=tokens.dispatcher, checks=CHECKS)

    try:
        requests_conform()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"the document leaves no way to send {label} an invalid request")


def test_every_operation_is_exercised() -> None:
    assert len(OPERATIONS) >= 20
    assert "POST /api/v1/needs" in OPERATIONS
    assert "POST /api/v1/track/{code}/feedback" in OPERATIONS


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
