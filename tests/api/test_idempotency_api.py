"""Idempotency-Key: a retry of the same request gets the first answer; a body refused as sent leaves the key free."""

from __future__ import annotations

import json
from typing import Any

from service.api.ops import body_fingerprint
from tests.conftest import NEED

URL = "/api/v1/needs"


def stored_needs(deps: Any) -> int:
    return sum(deps.store.needs.count_by_status().values())


def post(client: Any, headers: dict[str, str], data: str | bytes) -> Any:
    return client.post(URL, data=data, headers=headers, content_type="application/json")


def test_the_same_json_in_another_key_order_and_spacing_is_the_same_body(client, tokens, deps):
    headers = {**tokens.dispatcher, "Idempotency-Key": "call-0412-zhang"}
    first = post(client, headers, json.dumps(NEED))
    assert first.status_code == 201

    respelled = json.dumps(dict(reversed(NEED.items())), indent=2, ensure_ascii=False)
    again = post(client, headers, respelled)

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert stored_needs(deps) == 1


def test_another_value_under_the_same_key_is_still_another_body(client, tokens, deps):
    headers = {**tokens.dispatcher, "Idempotency-Key": "call-0413"}
    assert post(client, headers, json.dumps(NEED)).status_code == 201

    other = post(client, headers, json.dumps({**NEED, "address": "Station 2, house 15"}))

    assert other.status_code == 422
    assert other.get_json()["errors"] == {"headers": {"Idempotency-Key": ["Already used with another body."]}}
    assert stored_needs(deps) == 1


def test_a_body_refused_by_validation_leaves_the_key_for_the_corrected_body(client, tokens, deps):
    headers = {**tokens.dispatcher, "Idempotency-Key": "call-0414"}
    invalid = post(client, headers, json.dumps({**NEED, "priority": "whenever"}))
    assert invalid.status_code == 422
    assert "priority" in invalid.get_json()["errors"]["json"]

    corrected = post(client, headers, json.dumps(NEED))
    again = post(client, headers, json.dumps(NEED))

    assert corrected.status_code == 201 and "Idempotent-Replayed" not in corrected.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == corrected.get_json()
    assert stored_needs(deps) == 1


def test_a_body_that_is_not_json_leaves_the_key_for_the_corrected_body(client, tokens, deps):
    headers = {**tokens.dispatcher, "Idempotency-Key": "call-0415"}
    broken = post(client, headers, json.dumps(NEED)[:-1])
    assert broken.status_code == 400

    corrected = post(client, headers, json.dumps(NEED))

    assert corrected.status_code == 201 and "Idempotent-Replayed" not in corrected.headers
    assert stored_needs(deps) == 1


def test_an_answer_of_an_executed_request_is_replayed_even_when_it_refuses(client, tokens, deps):
    headers = {**tokens.dispatcher, "Idempotency-Key": "cancel-unknown"}
    url = "/api/v1/needs/N000000000000000000000000/cancel"
    first = client.post(url, json={"reason": "duplicate"}, headers=headers)
    assert first.status_code == 404

    again = client.post(url, json={"reason": "duplicate"}, headers=headers)

    assert again.status_code == 404 and again.headers["Idempotent-Replayed"] == "true"


def test_bodies_that_are_not_json_are_compared_as_sent():
    assert body_fingerprint(b'{"a": 1, "b": [1, 2]}') == body_fingerprint(b'{"b":[1,2],"a":1}')
    assert body_fingerprint(b'{"a": 1}') != body_fingerprint(b'{"a": 1.0}')
    assert body_fingerprint(b"name=zhang&x=1") != body_fingerprint(b"x=1&name=zhang")
    assert body_fingerprint(b"name=zhang") == body_fingerprint(b"name=zhang")
