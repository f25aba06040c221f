"""One JSON error format everywhere, and no 500 for hostile bodies."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from werkzeug.http import HTTP_STATUS_CODES

from tests.conftest import NEED, VOLUNTEER

VOLUNTEER_BODY = {**VOLUNTEER, "channels": []}


def assert_error(response: Any, code: int) -> dict[str, Any]:
    """The answer is `code` in the one error format: JSON {code, status, message, errors?}, never HTML."""
    assert response.status_code == code, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json", response.mimetype
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    body = json.loads(text)
    assert isinstance(body, dict)
    assert set(body) <= {"code", "status", "message", "errors"}, body
    assert {"code", "status", "message"} <= set(body), body
    assert body["code"] == code
    assert body["status"] == HTTP_STATUS_CODES[code]
    assert isinstance(body["message"], str) and body["message"].strip()
    if "errors" in body:
        assert isinstance(body["errors"], dict) and body["errors"]
    return body


def send(
    client: Any, method: str, url: str, text: str | bytes, headers: dict[str, str], ctype: str = "application/json"
) -> Any:
    return client.open(url, method=method, data=text, content_type=ctype, headers=headers)


@pytest.fixture
def volunteer_id(make_volunteer) -> str:
    return make_volunteer()["id"]


@pytest.fixture
def need_id(make_need) -> str:
    return make_need()["id"]


@pytest.fixture
def body_endpoints(volunteer_id, need_id) -> list[tuple[str, str]]:
    """Every endpoint that takes a JSON body, with a real record behind it."""
    return [
        ("POST", "/api/v1/volunteers"),
        ("PATCH", f"/api/v1/volunteers/{volunteer_id}"),
        ("PUT", f"/api/v1/volunteers/{volunteer_id}/location"),
        ("PUT", f"/api/v1/volunteers/{volunteer_id}/availability"),
        ("POST", "/api/v1/needs"),
        ("POST", f"/api/v1/needs/{need_id}/cancel"),
        ("POST", f"/api/v1/needs/{need_id}/defer"),
        ("POST", f"/api/v1/needs/{need_id}/assign"),
        ("POST", f"/api/v1/needs/{need_id}/progress"),
    ]


# ---- each status in the one format ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["{bad", '{"name": ', "{'name': 'single quotes'}", "nul", '{"a": 1,}'])
def test_malformed_json_is_400_in_the_error_format(client, tokens, text):
    response = send(client, "POST", "/api/v1/volunteers", text, tokens.dispatcher)

    assert_error(response, 400)


def test_malformed_json_is_400_on_every_body_endpoint(client, tokens, body_endpoints):
    for method, url in body_endpoints:
        assert_error(send(client, method, url, "{not json", tokens.dispatcher), 400)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 5000},
        {"Authorization": "Bearer ald_\u00e9\u00e8"},
    ],
    ids=["none", "empty", "scheme-only", "blank-token", "garbage", "basic", "huge", "non-ascii"],
)
def test_missing_or_bad_token_is_401_in_the_error_format_with_a_challenge(client, headers):
    response = client.get("/api/v1/needs", headers=headers)

    assert_error(response, 401)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_401_comes_before_body_validation(client):
    response = send(client, "POST", "/api/v1/needs", "{not json", {})

    assert_error(response, 401)


def test_wrong_role_is_403_in_the_error_format(client, tokens):
    assert_error(client.get("/api/v1/volunteers", headers=tokens.intake), 403)
    assert_error(client.post("/api/v1/volunteers", json=VOLUNTEER_BODY, headers=tokens.ops), 403)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/volunteers/vol_doesnotexist",
        "/api/v1/needs/need_doesnotexist",
        "/api/v1/needs/need_doesnotexist/events",
        "/api/v1/track/no-such-code",
        "/api/v1/volunteers/" + "v" * 2000,
    ],
)
def test_unknown_record_is_404_in_the_error_format(client, tokens, url):
    assert_error(client.get(url, headers=tokens.dispatcher), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/volunteers",
        "/needs",
        "/incidents",
        "/households",
        "/visits",
        "/volunteers/{volunteer}/offers",
        "/needs/{need}/events",
        "/needs/{need}/notifications",
        "/households/{household}/visits",
    ],
)
def test_every_list_refuses_a_query_parameter_it_does_not_know_naming_it(
    client, tokens, make_volunteer, make_need, make_household, path
):
    ids = {"volunteer": make_volunteer()["id"], "need": make_need()["id"], "household": make_household()["id"]}
    url = "/api/v1" + path.format(**ids)
    assert client.get(url, headers=tokens.dispatcher).status_code == 200

    body = assert_error(client.get(url, query_string={"statuss": "pending"}, headers=tokens.dispatcher), 422)

    assert body["errors"] == {"query": {"statuss": ["Unknown field."]}}


@pytest.mark.parametrize("url", ["/nope", "/api/v1/nope", "/api/v2/needs", "/api/v1/needs/x/y/z", "/api/v1/"])
def test_unknown_route_is_404_in_the_error_format(client, tokens, url):
    assert_error(client.get(url, headers=tokens.dispatcher), 404)
    assert_error(client.get(url), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("DELETE", "/api/v1/volunteers"),
        ("PUT", "/api/v1/needs"),
        ("GET", "/api/v1/needs/need_x/cancel"),
        ("DELETE", "/api/v1/needs/need_x"),
        ("POST", "/api/v1/catalog"),
        ("POST", "/healthz"),
    ],
)
def test_wrong_method_is_405_in_the_error_format_with_allow(client, tokens, method, url):
    response = client.open(url, method=method, headers=tokens.dispatcher)

    assert_error(response, 405)
    assert response.headers.get("Allow")
    assert method not in response.headers["Allow"]


def test_body_over_64_kb_is_413_in_the_error_format(client, tokens):
    text = json.dumps({**VOLUNTEER_BODY, "name": "x" * (65 * 1024)})

    response = send(client, "POST", "/api/v1/volunteers", text, tokens.dispatcher)

    assert_error(response, 413)
    assert response.get_json()["message"] == "the body is larger than this endpoint takes: 64 KB"


def test_body_over_64_kb_is_413_on_every_body_endpoint(client, tokens, body_endpoints):
    text = json.dumps({"padding": "x" * (70 * 1024)})
    for method, url in body_endpoints:
        assert_error(send(client, method, url, text, tokens.dispatcher), 413)


def send_chunked(client: Any, url: str, text: str, headers: dict[str, str]) -> Any:
    """A body with Transfer-Encoding: chunked and no Content-Length, as a server that ends the stream passes it."""
    return client.post(
        url,
        input_stream=io.BytesIO(text.encode()),
        headers={**headers, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_64_kb_is_the_same_413(client, tokens):
    text = json.dumps({**NEED, "description": "x" * (70 * 1024)})

    response = send_chunked(client, "/api/v1/needs", text, tokens.dispatcher)

    assert_error(response, 413)
    assert response.get_json()["message"] == "the body is larger than this endpoint takes: 64 KB"


def test_a_chunked_body_under_the_limit_is_read_whole(client, tokens):
    small = send_chunked(client, "/api/v1/needs", json.dumps(NEED), tokens.dispatcher)
    text = json.dumps({**NEED, "pad": "p" * (60 * 1024)})
    padded = send_chunked(client, "/api/v1/needs", text, tokens.dispatcher)

    assert small.status_code == 201, small.get_json()
    assert assert_error(padded, 422)["errors"] == {"json": {"pad": ["Unknown field."]}}


def test_body_just_under_64_kb_is_not_413(client, tokens):
    text = json.dumps({**NEED, "description": "d" * 2000, "address": "a" * 300})
    text = text[:-1] + "," + '"pad": "' + "p" * (60 * 1024) + '"}'

    assert_error(send(client, "POST", "/api/v1/needs", text, tokens.dispatcher), 422)


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]
)
def test_body_that_is_not_json_is_415_in_the_error_format(client, tokens, ctype):
    response = send(client, "POST", "/api/v1/needs", json.dumps(NEED), tokens.dispatcher, ctype)

    body = assert_error(response, 415)
    assert "JSON" in body["message"]


def test_text_plain_is_415_on_every_body_endpoint(client, tokens, body_endpoints):
    for method, url in body_endpoints:
        assert_error(send(client, method, url, '{"reason": "x"}', tokens.dispatcher, "text/plain"), 415)


def test_invalid_input_is_422_with_errors_by_location_and_field(client, tokens):
    response = client.post(
        "/api/v1/volunteers", json={**VOLUNTEER_BODY, "capacity": 0, "phone": "1"}, headers=tokens.dispatcher
    )

    body = assert_error(response, 422)
    assert set(body["errors"]) == {"json"}
    assert set(body["errors"]["json"]) == {"capacity", "phone"}
    assert "capacity" in body["message"] and "phone" in body["message"]


def test_invalid_query_is_422_with_errors_under_query(client, tokens):
    body = assert_error(client.get("/api/v1/needs?limit=0", headers=tokens.dispatcher), 422)

    assert set(body["errors"]) == {"query"}
    assert "limit" in body["errors"]["query"]


def test_a_lifecycle_conflict_is_409_in_the_error_format(client, tokens, need_id):
    url = f"/api/v1/needs/{need_id}/cancel"
    client.post(url, json={"reason": "once"}, headers=tokens.dispatcher)

    assert_error(client.post(url, json={"reason": "twice"}, headers=tokens.dispatcher), 409)


# ---- hostile bodies never cause a 500 ------------------------------------------------------------

HOSTILE_BODIES = {
    "null": "null",
    "array": json.dumps([VOLUNTEER_BODY]),
    "empty-array": "[]",
    "string": '"hello"',
    "number": "42",
    "true": "true",
    "empty-object": "{}",
    "huge-string-field": json.dumps({"name": "x" * 60000}),
    "huge-unknown-key": json.dumps({"k" * 60000: 1}),
    "many-unknown-keys": json.dumps({f"k{i}": i for i in range(5000)}),
    "huge-array-field": json.dumps({"skills": ["general"] * 5000}),
    "huge-array-of-objects": json.dumps({"location": [{"lat": 1}] * 3000}),
    "deeply-nested-objects": '{"a":' * 3000 + "1" + "}" * 3000,
    "deeply-nested-arrays": "[" * 5000 + "]" * 5000,
    "deeply-nested-in-a-field": '{"location": ' + "[" * 5000 + "]" * 5000 + "}",
    "huge-number": '{"capacity": ' + "9" * 5000 + "}",
    "huge-float": '{"location": {"lat": 1e999, "lon": 0}}',
    "negative-huge-float": '{"location": {"lat": -1e999, "lon": 0}}',
    "nan": '{"location": {"lat": NaN, "lon": NaN}}',
    "duplicate-keys": '{"name": "a", "name": "b"}',
    "unicode-escapes": '{"name": "\\ud800\\udc00\\u0000"}',
    "lone-surrogate": '{"name": "\\ud800"}',
    "null-byte-key": '{"\\u0000": 1}',
    "utf8-bom": "\ufeff{}",
}


def assert_not_500(response: Any) -> None:
    """Never a server error; anything refused is refused in the error format."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert response.status_code in (400, 404, 409, 413, 422), response.get_data(as_text=True)[:500]
        assert_error(response, response.status_code)


@pytest.mark.parametrize("text", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_hostile_bodies_never_cause_a_500_on_any_body_endpoint(client, tokens, body_endpoints, text):
    for method, url in body_endpoints:
        response = send(client, method, url, text, tokens.dispatcher)
        assert_not_500(response)


@pytest.mark.parametrize("text", ["null", "[]", '"x"', "1"], ids=["null", "array", "string", "number"])
def test_a_body_that_is_not_an_object_is_422(client, tokens, text):
    body = assert_error(send(client, "POST", "/api/v1/needs", text, tokens.dispatcher), 422)

    assert "errors" in body


def test_huge_strings_in_every_need_field_are_422_not_500(client, tokens):
    big = "z" * 20000
    for field in ("kind", "address", "description", "priority", "grid"):
        response = client.post("/api/v1/needs", json={**NEED, field: big}, headers=tokens.dispatcher)
        assert_error(response, 422)
    response = client.post("/api/v1/needs", json={**NEED, "requester": {"name": big}}, headers=tokens.dispatcher)
    assert_error(response, 422)


@pytest.mark.parametrize(
    "query",
    [
        "limit=" + "9" * 400,
        "near=" + "1" * 50 + "," + "2" * 50,
        "near=1e999,1e999",
        "radius_km=1e999",
        "radius_km=nan",
        "cursor=" + "A" * 5000,
        "cursor=" + "eyJhIjpbMSwyXX0",  # a well-formed cursor with a list inside
        "cursor=" + "eyJvIjotMX0",  # {"o":-1}
        "status=" + "q" * 5000,
        "a=" * 2000,
    ],
    ids=[
        "huge-limit",
        "long-near",
        "infinite-near",
        "infinite-radius",
        "nan-radius",
        "huge-cursor",
        "cursor-with-list",
        "negative-offset-cursor",
        "huge-status",
        "many-params",
    ],
)
def test_hostile_queries_get_a_4xx_in_the_error_format(client, tokens, query):
    for url in ("/api/v1/needs", "/api/v1/volunteers"):
        response = client.get(f"{url}?{query}", headers=tokens.dispatcher)
        assert_not_500(response)


def test_a_forged_offset_cursor_on_a_near_list_is_422_not_500(client, tokens, make_volunteer):
    make_volunteer()
    import base64

    for payload in ('{"o":-5}', '{"o":"1"}', '{"o":true}', '{"a":"vol_x"}', "[1]", '"o"'):
        cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        response = client.get(f"/api/v1/volunteers?near=46.33,132.21&cursor={cursor}", headers=tokens.dispatcher)
        assert_error(response, 422)


@pytest.mark.parametrize(
    ("url", "field", "base"),
    [
        ("/api/v1/volunteers", "name", VOLUNTEER_BODY),
        ("/api/v1/volunteers", "team", VOLUNTEER_BODY),
        ("/api/v1/needs", "description", NEED),
        ("/api/v1/needs", "address", NEED),
    ],
)
def test_text_that_cannot_be_stored_as_utf8_is_refused_not_500(client, tokens, url, field, base):
    """A lone surrogate (valid JSON escape, invalid Unicode text) in an otherwise valid body."""
    text = json.dumps({**base, field: "PLACEHOLDER"}).replace("PLACEHOLDER", "\\ud800")

    response = send(client, "POST", url, text, tokens.dispatcher)

    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert_error(response, response.status_code)


def test_nesting_too_deep_for_the_json_parser_is_400_not_500(client, tokens):
    deep = '{"name": ' + "[" * 20000 + "]" * 20000 + "}"  # 40 KB: under the body limit, over the recursion limit

    response = send(client, "POST", "/api/v1/volunteers", deep, tokens.dispatcher)

    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert_error(response, response.status_code)


def test_an_integer_too_long_to_convert_is_refused_not_500(client, tokens):
    text = json.dumps({**VOLUNTEER_BODY, "capacity": 0}).replace('"capacity": 0', '"capacity": ' + "1" * 5000)

    response = send(client, "POST", "/api/v1/volunteers", text, tokens.dispatcher)

    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert_error(response, response.status_code)


@pytest.mark.parametrize("character", ["\u0000", "\u001b", "\u0007", "\u007f", "\u0085"])
@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/api/v1/needs", NEED, ("description",)),
        ("/api/v1/needs", NEED, ("address",)),
        ("/api/v1/needs", NEED, ("requester", "name")),
        ("/api/v1/volunteers", VOLUNTEER_BODY, ("name",)),
    ],
)
def test_control_characters_in_text_are_422_naming_the_field(client, tokens, url, body, path, character):
    sent = json.loads(json.dumps(body))
    holder = sent
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = f"Zhang{character}Wei"

    response = client.post(url, json=sent, headers=tokens.dispatcher)

    error = assert_error(response, 422)
    expected: Any = ["Contains control characters (only newline and tab are allowed)."]
    for key in reversed(path):
        expected = {key: expected}
    assert error["errors"] == {"json": expected}
    assert error["message"] == "invalid input: " + ".".join(path)


def test_newlines_and_tabs_in_text_are_kept(client, tokens):
    text = "No water since Monday.\r\nPump\tbroken."

    response = client.post("/api/v1/needs", json={**NEED, "description": text}, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["description"] == text


def test_a_control_character_in_a_batch_names_the_need_and_the_field(client, tokens):
    response = client.post(
        "/api/v1/needs/batch", json={"needs": [NEED, {**NEED, "address": "house\u000014"}]}, headers=tokens.dispatcher
    )

    error = assert_error(response, 422)
    assert error["errors"] == {
        "json": {"needs": {"1": {"address": ["Contains control characters (only newline and tab are allowed)."]}}}
    }
