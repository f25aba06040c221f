"""The OpenAPI document states each rule the API enforces, and the API enforces exactly what it states: the
`near` and `cursor` patterns, channel URLs, a deadline in the future, required bodies sent, a need with a
place, inbound SMS with a sender and a YES/NO reply, and the answers every operation can give through
the app's shared machinery (400, 409, 413, 415, 422 and the Idempotency-Key, 429, 503)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from service import create_app
from tests.api.validation import assert_rejects
from tests.conftest import NEED, VOLUNTEER

pytestmark = [
    # apprise (validating notification channels) imports the stdlib imghdr module, deprecated in 3.11
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]

SPEC_URL = "/api/v1/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")
SMS_SECRET = "inbound-secret"


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    response = client.get(SPEC_URL)
    assert response.status_code == 200
    return response.get_json()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in spec["paths"].items() for m, op in item.items() if m in METHODS]


def parameter(op: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p for p in op.get("parameters", []) if p["name"] == name]
    return found


def body_schema(spec: dict[str, Any], path: str, method: str, media_type: str = "application/json") -> dict[str, Any]:
    return spec["paths"][path][method]["requestBody"]["content"][media_type]["schema"]


def component(spec: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


# ---- near=lat,lon ------------------------------------------------------------------------------------


NEAR_VALUES = [
    "46.33,132.21",
    "0,0",
    "-85.05112,-180",
    "85.05112,180",
    "85.0511199,179.999",
    "85.05113,0",
    "85.1,0",
    "90,0",
    "0,180.5",
    "0,181",
    "46.33, 132.21",
    "+46.33,132.21",
    "1e1,1",
    "nan,nan",
    "46.33",
    "somewhere",
    "46.33,132.21,5",
]


@pytest.mark.parametrize("url", ["/api/v1/volunteers", "/api/v1/needs"])
def test_near_is_documented_with_the_pattern_the_api_enforces(client, tokens, spec, url):
    pattern = parameter(spec["paths"][url]["get"], "near")["schema"]["pattern"]

    for value in NEAR_VALUES:
        response = client.get(f"{url}?near={quote(value, safe=',')}", headers=tokens.dispatcher)
        if re.search(pattern, value):
            assert response.status_code == 200, (value, response.get_json())
        else:
            assert_rejects(response, "near")


def test_cursor_is_documented_with_the_pattern_the_api_enforces(client, tokens, spec):
    pattern = parameter(spec["paths"]["/api/v1/needs"]["get"], "cursor")["schema"]["pattern"]

    assert not re.search(pattern, "%%%")
    assert_rejects(client.get("/api/v1/needs?cursor=%25%25%25", headers=tokens.dispatcher), "cursor")
    assert_rejects(client.get("/api/v1/needs?cursor=a.b", headers=tokens.dispatcher), "cursor")


# ---- channels ----------------------------------------------------------------------------------------


def test_channels_are_documented_as_apprise_urls(spec):
    for name in ("VolunteerCreate", "VolunteerUpdate"):
        channels = spec["components"]["schemas"][name]["properties"]["channels"]
        assert "apprise" in channels["description"]
        assert "422" in channels["description"]
        assert channels["items"]["pattern"] == "^[A-Za-z0-9]+://"
        assert channels["maxItems"] == 5


@pytest.mark.parametrize(
    ("channel", "accepted"),
    [
        ("json://hooks.example.org/aidline", True),
        ("JSON://hooks.example.org/aidline", True),
        ("hooks.example.org/aidline", False),  # not the documented pattern
        (" json://hooks.example.org/aidline", False),
        ("nosuchscheme://hooks.example.org", False),  # the pattern, but not a URL apprise understands
    ],
)
def test_a_channel_is_accepted_when_it_matches_the_pattern_and_apprise_understands_it(
    client, tokens, channel, accepted
):
    response = client.post("/api/v1/volunteers", json={**VOLUNTEER, "channels": [channel]}, headers=tokens.dispatcher)

    if accepted:
        assert response.status_code == 201, response.get_json()
    else:
        assert_rejects(response, "channels")


# ---- needs: deadline, a place ------------------------------------------------------------------------


def test_the_deadline_is_documented_as_in_the_future_and_a_past_one_is_422(client, tokens, spec):
    deadline = component(spec, body_schema(spec, "/api/v1/needs", "post")["allOf"][0])["properties"]["deadline"]
    assert deadline["format"] == "date-time"
    assert "future" in deadline["description"]
    assert "422" in spec["paths"]["/api/v1/needs"]["post"]["responses"]

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_rejects(client.post("/api/v1/needs", json={**NEED, "deadline": past}, headers=tokens.dispatcher), "deadline")
    future = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    assert client.post("/api/v1/needs", json={**NEED, "deadline": future}, headers=tokens.dispatcher).status_code == 201


def test_a_need_is_documented_to_need_a_location_or_an_address(client, tokens, spec):
    schema = body_schema(spec, "/api/v1/needs", "post")

    assert schema["anyOf"] == [{"required": ["location"]}, {"required": ["address"]}, {"required": ["household_id"]}]
    placeless = {k: v for k, v in NEED.items() if k not in ("location", "address")}
    assert_rejects(client.post("/api/v1/needs", json=placeless, headers=tokens.dispatcher), "location")


# ---- required bodies --------------------------------------------------------------------------------


def test_a_volunteer_patch_documents_a_required_body_that_may_be_an_empty_object(spec):
    op = spec["paths"]["/api/v1/volunteers/{volunteer_id}"]["patch"]

    assert op["requestBody"]["required"] is True
    assert "minProperties" not in body_schema(spec, "/api/v1/volunteers/{volunteer_id}", "patch")


def test_every_required_json_body_must_be_sent(client, tokens, make_volunteer, make_need, spec):
    ids = {"volunteer_id": make_volunteer()["id"], "need_id": make_need()["id"]}
    required = [
        (path, method)
        for path, method, op in operations(spec)
        if op.get("requestBody", {}).get("required")
        and "application/json" in op["requestBody"]["content"]
        and set(re.findall(r"{(\w+)}", path)) <= set(ids)
        and "inbound" not in path  # JSON or a form post: its own tests below
    ]
    assert len(required) >= 8

    for path, method in required:
        url = path.format(**ids)
        response = client.open(url, method=method.upper(), headers=tokens.dispatcher)
        assert response.status_code == 422, (method, path, response.get_json())
        assert set(response.get_json()["errors"]) == {"json"}, (method, path)  # the body, or its required fields


def test_a_volunteer_patch_without_a_body_is_422_and_with_an_empty_object_changes_nothing(
    client, tokens, make_volunteer
):
    volunteer = make_volunteer()
    url = f"/api/v1/volunteers/{volunteer['id']}"

    response = client.patch(url, headers=tokens.dispatcher)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"] == {"json": ["Missing request body."]}
    assert client.get(url, headers=tokens.dispatcher).get_json()["updated_at"] == volunteer["updated_at"]
    assert client.patch(url, json={}, headers=tokens.dispatcher).status_code == 200


# ---- inbound SMS -------------------------------------------------------------------------------------


@pytest.fixture
def sms_client(settings: Any, deps: Any) -> Any:
    configured = dataclasses.replace(settings, inbound_sms_secret=SMS_SECRET)
    app = create_app({"TESTING": True, "SETTINGS": configured, "DEPS": dataclasses.replace(deps, settings=configured)})
    return app.test_client()


def test_inbound_sms_documents_sender_and_text_as_required_and_non_empty(spec):
    op = spec["paths"]["/api/v1/inbound/sms"]["post"]
    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        schema = body_schema(spec, "/api/v1/inbound/sms", "post", media_type)
        fields = component(spec, schema["allOf"][0])["properties"]
        assert {"anyOf": [{"required": ["from"]}, {"required": ["From"]}]} in schema["allOf"]
        assert {"anyOf": [{"required": ["body"]}, {"required": ["Body"]}]} in schema["allOf"]
        for name in ("from", "From", "body", "Body"):
            assert fields[name]["minLength"] == 1, name
        assert fields["body"]["pattern"] == fields["Body"]["pattern"]
    assert {"X-Aidline-Secret", "secret", "Idempotency-Key"} <= {p["name"] for p in op["parameters"]}
    assert "403" in op["responses"]


@pytest.mark.parametrize(
    "body",
    [
        {"from": "", "body": "YES 4821"},
        {"From": "", "Body": "YES 4821"},
        {"from": "+8613800000001", "body": ""},
        {"from": "+8613800000001"},
        {"body": "YES 4821"},
        {"from": "+8613800000001", "body": "MAYBE 4821"},
    ],
)
def test_inbound_sms_breaking_the_documented_body_is_422(sms_client, body):
    response = sms_client.post("/api/v1/inbound/sms", json=body, headers={"X-Aidline-Secret": SMS_SECRET})

    assert response.status_code == 422, response.get_json()


@pytest.mark.parametrize(
    "text", ["YES 4821", "yes 4821", "Y:4821", "ok #4821", "no 4821", "是 4821", " DECLINE 48210 "]
)
def test_a_reply_matching_the_documented_pattern_reaches_the_offer_lookup(sms_client, spec, text):
    fields = component(spec, body_schema(spec, "/api/v1/inbound/sms", "post")["allOf"][0])["properties"]
    assert re.search(fields["body"]["pattern"], text)

    response = sms_client.post(
        "/api/v1/inbound/sms", json={"from": "+8613800000001", "body": text}, headers={"X-Aidline-Secret": SMS_SECRET}
    )

    assert response.status_code == 404, response.get_json()  # no offer has this code: valid, but nothing to answer


# ---- answers every operation can give -----------------------------------------------------------------


def test_every_operation_documents_the_answers_of_the_shared_machinery(spec):
    for path, method, op in operations(spec):
        codes = set(op["responses"])
        label = f"{method.upper()} {path}"
        if path not in ("/healthz", "/readyz"):
            assert {"429", "503"} <= codes, label
        if method in ("post", "put", "patch"):
            assert "413" in codes, label
            if "inbound" not in path:
                assert "415" in codes, label
            if "requestBody" in op:
                assert {"400", "422"} <= codes, label
        if method == "post":
            assert {"409", "422"} <= codes, label
            key = parameter(op, "Idempotency-Key")
            assert key["in"] == "header" and key["schema"]["maxLength"] == 200, label
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    label,
                    code,
                )


def test_an_idempotency_key_longer_than_documented_is_422(client, tokens, spec):
    limit = parameter(spec["paths"]["/api/v1/needs"]["post"], "Idempotency-Key")["schema"]["maxLength"]
    headers = {**tokens.dispatcher, "Idempotency-Key": "k" * (limit + 1)}

    response = client.post("/api/v1/needs", json=NEED, headers=headers)

    assert response.status_code == 422, response.get_json()
    ok = client.post("/api/v1/needs", json=NEED, headers={**tokens.dispatcher, "Idempotency-Key": "k" * limit})
    assert ok.status_code == 201, ok.get_json()
