"""POST /api/v1/needs/batch: many needs at once, all or none, each as POST /needs takes and answers it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from service.needs import MAX_BATCH
from tests.api.validation import failed_fields
from tests.conftest import NEED

URL = "/api/v1/needs/batch"


def batch(count: int, **overrides: Any) -> dict[str, Any]:
    return {"needs": [{**NEED, "description": f"house {i}", **overrides} for i in range(count)]}


def stored_needs(deps: Any) -> int:
    return sum(deps.store.needs.count_by_status().values())


def test_a_batch_answers_201_with_every_need_in_the_order_sent(client, tokens, deps):
    response = client.post(URL, json=batch(30), headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    items = response.get_json()["items"]
    assert [n["description"] for n in items] == [f"house {i}" for i in range(30)]
    assert {n["status"] for n in items} == {"queued"}
    assert len({n["id"] for n in items}) == len({n["tracking_code"] for n in items}) == 30
    assert stored_needs(deps) == 30
    assert deps.store.backlog.waiting_ids() == [n["id"] for n in items]


def test_each_item_has_the_shape_a_single_submission_answers(client, tokens):
    single = client.post("/api/v1/needs", json=NEED, headers=tokens.intake).get_json()
    [batched] = client.post(URL, json={"needs": [NEED]}, headers=tokens.intake).get_json()["items"]

    assert set(batched) == set(single)
    different = {"id", "tracking_code", "created_at", "updated_at", "deadline"}
    assert {k: v for k, v in batched.items() if k not in different} == {
        k: v for k, v in single.items() if k not in different
    }
    read = client.get(f"/api/v1/needs/{batched['id']}", headers=tokens.intake)
    assert read.status_code == 200
    assert read.get_json() == batched, "the intake client reads back what it was answered"


def test_every_bad_item_is_named_by_its_index_and_nothing_is_created(client, tokens, deps):
    body = batch(10)
    body["needs"][2]["kind"] = "space_travel"
    body["needs"][5]["location"] = {"lat": 91, "lon": 0}
    body["needs"][7].pop("location")
    body["needs"][7].pop("address")  # neither place: the schema's own rule, per item
    body["needs"][9]["unknown"] = 1

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) == {"needs.2.kind", "needs.5.location.lat", "needs.7.location", "needs.9.unknown"}
    errors = response.get_json()["errors"]["json"]["needs"]
    assert errors["7"] == {"location": ["Send location {lat, lon}, an address, or a household_id."]}
    assert stored_needs(deps) == 0
    assert deps.store.backlog.waiting_count() == 0


def test_items_with_a_past_deadline_are_named_and_nothing_is_created(client, tokens, deps):
    body = batch(4)
    body["needs"][1]["deadline"] = "2020-01-01T00:00:00Z"
    body["needs"][3]["deadline"] = "2020-01-01T00:00:00Z"

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) == {"needs.1.deadline", "needs.3.deadline"}
    assert "nothing was created" in response.get_json()["message"]
    assert stored_needs(deps) == 0


def test_an_address_without_a_geocoder_names_that_item_and_nothing_is_created(client, tokens, deps):
    body = batch(40)
    body["needs"][37].pop("location")

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) == {"needs.37.location"}
    assert stored_needs(deps) == 0


@pytest.mark.parametrize("body", [{"needs": []}, batch(MAX_BATCH + 1), {"needs": None}, {}, {"needs": NEED}])
def test_an_empty_oversized_or_missing_list_is_422_on_needs(client, tokens, deps, body):
    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) == {"needs"}
    assert stored_needs(deps) == 0


def test_500_needs_fit_in_one_request_though_the_body_is_over_64_kb(client, tokens, deps):
    body = batch(MAX_BATCH)
    assert len(json.dumps(body)) > 64 * 1024

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["items"]) == MAX_BATCH
    assert stored_needs(deps) == MAX_BATCH


def test_a_body_over_the_bulk_limit_is_413_json(client, tokens, settings):
    text = json.dumps({"needs": [{**NEED, "description": "d" * 2000}] * 100})
    text = text[:-1] + ', "pad": "' + "p" * settings.max_bulk_content_length + '"}'

    response = client.post(URL, data=text, content_type="application/json", headers=tokens.dispatcher)

    assert response.status_code == 413
    assert response.mimetype == "application/json"
    assert response.get_json()["code"] == 413
    assert response.get_json()["message"].endswith("takes: 4 MB"), "the batch's own limit is named"


@pytest.mark.parametrize(("padding", "answer"), [(4_450_000, 413), (4_350_000, 413), (4_100_000, 422)])
def test_a_chunked_batch_is_held_to_the_same_limit(client, tokens, padding, answer):
    text = json.dumps({"needs": [NEED] * 10, "pad": "p" * padding})

    response = client.post(
        URL,
        input_stream=io.BytesIO(text.encode()),
        headers={**tokens.dispatcher, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == answer
    if answer == 413:
        assert response.get_json()["message"].endswith("takes: 4 MB")
    else:  # read whole: what is wrong is the unknown field, not the JSON
        assert response.get_json()["errors"] == {"json": {"pad": ["Unknown field."]}}


def test_the_larger_body_is_for_the_batch_only(client, tokens):
    text = json.dumps({**NEED, "description": "d" * 100, "pad": "p" * (100 * 1024)})

    response = client.post("/api/v1/needs", data=text, content_type="application/json", headers=tokens.dispatcher)

    assert response.status_code == 413


@pytest.mark.parametrize("role", ["ops", "volunteer"])
def test_only_dispatchers_and_intake_clients_submit_batches(client, tokens, deps, role):
    headers = tokens.ops if role == "ops" else tokens.volunteer("vol_x")

    assert client.post(URL, json=batch(2), headers=headers).status_code == 403
    assert client.post(URL, json=batch(2)).status_code == 401
    assert stored_needs(deps) == 0


def test_a_retry_with_the_same_idempotency_key_answers_the_same_needs_and_creates_nothing(client, tokens, deps):
    headers = {**tokens.intake, "Idempotency-Key": "hotline-list-0412"}
    first = client.post(URL, json=batch(20), headers=headers)
    assert first.status_code == 201

    again = client.post(URL, json=batch(20), headers=headers)

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert stored_needs(deps) == 20
    assert deps.store.backlog.waiting_count() == 20
    other = client.post(URL, json=batch(21), headers=headers)
    assert other.status_code == 422, "the same key with another body"
    assert stored_needs(deps) == 20


def test_the_batch_is_documented_with_its_items_rules_and_limits(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/needs/batch"]["post"]
    body = spec["components"]["schemas"]["NeedBatch"]["properties"]["needs"]

    assert body["minItems"] == 1 and body["maxItems"] == MAX_BATCH
    assert body["items"]["allOf"] == [{"$ref": "#/components/schemas/NeedCreate"}]
    assert body["items"]["anyOf"] == [
        {"required": ["location"]},
        {"required": ["address"]},
        {"required": ["household_id"]},
    ]
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NeedBatchResult"
    }
    assert "4 MB" in operation["responses"]["413"]["description"]
    assert "64 KB" in spec["paths"]["/api/v1/needs"]["post"]["responses"]["413"]["description"]
    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}


def test_the_batch_is_a_resource_of_its_own_not_a_need_id(client, tokens):
    response = client.get(URL, headers=tokens.dispatcher)

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert client.get("/api/v1/needs/batchy", headers=tokens.dispatcher).status_code == 404
