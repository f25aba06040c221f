"""Needs API: intake with defaults from the catalog, geocoding, field limits, lists, timeline, cancel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from service import create_app
from service.bootstrap import bootstrap
from service.config import Settings
from tests.api.validation import assert_rejects, failed_fields
from tests.conftest import NEED, free_port

URL = "/api/v1/needs"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def catalog(client, tokens) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/catalog", headers=tokens.dispatcher)
    assert response.status_code == 200
    return {kind["name"]: kind for kind in response.get_json()["kinds"]}


# ---- submitting ----------------------------------------------------------------------------------


def test_submitting_a_need_answers_201_queued_with_id_and_tracking_code(client, tokens, clock):
    response = client.post(URL, json=NEED, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    need = response.get_json()
    assert need["id"].startswith("need_")
    assert need["status"] == "queued"
    assert isinstance(need["tracking_code"], str) and len(need["tracking_code"]) >= 8
    now = clock.now()
    assert parse_time(need["created_at"]) == now.replace(microsecond=now.microsecond // 1000 * 1000), (
        "stamped at intake, in milliseconds"
    )
    assert need["kind"] == NEED["kind"]
    assert need["priority"] == NEED["priority"]
    assert need["location"] == NEED["location"]
    assert need["address"] == NEED["address"]
    assert need["vulnerability"] == NEED["vulnerability"]
    assert need["volunteers_needed"] == 1
    assert need["description"] == NEED["description"]
    assert need["requester"] == NEED["requester"]
    assert need["assignments"] == []
    assert need["offers_made"] == 0
    assert need["flagged"] is False
    assert need["rating"] is None


def test_each_need_gets_its_own_id_and_tracking_code(make_need):
    first, second = make_need(), make_need()

    assert first["id"] != second["id"]
    assert first["tracking_code"] != second["tracking_code"]


def test_submitted_need_can_be_read_back(client, tokens, make_need):
    need = make_need()

    response = client.get(f"{URL}/{need['id']}", headers=tokens.dispatcher)

    assert response.status_code == 200
    assert response.get_json() == need


@pytest.mark.parametrize("priority", ["critical", "high", "normal", "low"])
@pytest.mark.parametrize("kind", ["water_delivery", "plumbing_repair", "home_cleaning", "coal_hauling"])
def test_deadline_defaults_to_the_kinds_deadline_for_the_priority(make_need, catalog, kind, priority):
    need = make_need(kind=kind, priority=priority)

    minutes = catalog[kind]["deadlines"][priority]
    assert parse_time(need["deadline"]) - parse_time(need["created_at"]) == timedelta(minutes=minutes)


def test_priority_defaults_to_normal(client, tokens, catalog):
    body = {"kind": "meal_delivery", "location": NEED["location"]}

    need = client.post(URL, json=body, headers=tokens.dispatcher).get_json()

    assert need["priority"] == "normal"
    minutes = catalog["meal_delivery"]["deadlines"]["normal"]
    assert parse_time(need["deadline"]) - parse_time(need["created_at"]) == timedelta(minutes=minutes)


def test_a_minimal_need_takes_every_default(client, tokens):
    response = client.post(URL, json={"kind": "other", "location": {"lat": 46.3, "lon": 132.2}}, headers=tokens.intake)

    assert response.status_code == 201, response.get_json()
    need = response.get_json()
    assert need["volunteers_needed"] == 1
    assert need["vulnerability"] == []
    assert need["address"] is None
    assert need["description"] is None
    assert need["requester"] == {"name": None, "phone": None}


def test_an_explicit_deadline_is_kept(make_need):
    deadline = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

    need = make_need(deadline=deadline.isoformat())

    assert parse_time(need["deadline"]) == deadline


def test_a_deadline_in_another_timezone_is_kept_as_the_same_instant(make_need):
    deadline = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    in_china = deadline.astimezone(timezone(timedelta(hours=8)))

    need = make_need(deadline=in_china.isoformat())

    assert parse_time(need["deadline"]) == deadline
    assert need["deadline"].endswith("Z"), "stored and shown in UTC"


@pytest.mark.parametrize("kind", ["water_delivery", "plumbing_repair", "heating_repair", "tutoring", "other"])
def test_skills_default_to_the_kinds_skills(client, tokens, catalog, kind):
    body = {k: v for k, v in NEED.items() if k != "skills"}

    need = client.post(URL, json={**body, "kind": kind}, headers=tokens.dispatcher).get_json()

    assert sorted(need["skills"]) == sorted(catalog[kind]["skills"])


def test_explicit_skills_replace_the_kinds_skills(make_need):
    need = make_need(kind="water_delivery", skills=["tanker_truck", "heavy_lifting", "tanker_truck"])

    assert need["skills"] == ["heavy_lifting", "tanker_truck"]


def test_address_is_kept_as_given_next_to_the_location(make_need):
    address = "Station 2, house 14 — 第二站 14 号, back door"

    need = make_need(address=address)

    assert need["address"] == address
    assert need["location"] == NEED["location"]


# ---- location and geocoding ----------------------------------------------------------------------


def test_address_without_location_and_no_geocoder_is_422_about_location(client, tokens):
    body = {k: v for k, v in NEED.items() if k != "location"}

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert_rejects(response, "location")
    assert "location" in response.get_json()["message"]


def test_a_need_with_neither_location_nor_address_is_422_about_location(client, tokens):
    body = {k: v for k, v in NEED.items() if k not in ("location", "address")}

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert_rejects(response, "location")


class FakeNominatim:
    """A real HTTP server answering /search like Nominatim does; records the queries it got."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        self.answer: list[dict[str, Any]] = [
            {
                "place_id": 1,
                "lat": "46.3",
                "lon": "132.2",
                "display_name": "Station 2, Raohe, Heilongjiang",
                "boundingbox": ["46.29", "46.31", "132.19", "132.21"],
                "class": "place",
                "type": "house",
                "importance": 0.5,
            }
        ]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                url = urlparse(self.path)
                fake.queries.append({"path": [url.path], **parse_qs(url.query)})
                body = json.dumps(fake.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeNominatim:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    with FakeNominatim() as server:
        yield server


def geocoding_client(settings: Settings, connection: Any, domain: str) -> Any:
    s = Settings.from_env(
        {},
        redis_url=settings.redis_url,
        public_url=settings.public_url,
        geocoder="nominatim",
        geocoder_domain=domain,
        geocoder_scheme="http",
        geocoder_timeout=2.0,
    )
    app = create_app({"TESTING": True, "SETTINGS": s, "DEPS": bootstrap(s, connection=connection)})
    return app.test_client()


@pytest.fixture
def geo_client(settings, connection, deps, nominatim) -> Any:
    return geocoding_client(settings, connection, f"127.0.0.1:{nominatim.port}")


def test_an_address_without_location_is_geocoded_through_the_configured_geocoder(geo_client, tokens, nominatim):
    body = {k: v for k, v in NEED.items() if k != "location"}

    response = geo_client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    need = response.get_json()
    assert need["location"] == {"lat": 46.3, "lon": 132.2}
    assert need["address"] == NEED["address"], "the address is kept as given, not replaced by the geocoder's"
    assert len(nominatim.queries) == 1
    query = nominatim.queries[0]
    assert query["path"] == ["/search"]
    assert query["q"] == [NEED["address"]]


def test_a_sent_location_is_used_without_asking_the_geocoder(geo_client, tokens, nominatim):
    response = geo_client.post(URL, json=NEED, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["location"] == NEED["location"]
    assert nominatim.queries == []


def test_an_address_the_geocoder_cannot_find_is_422_about_the_address(geo_client, tokens, nominatim):
    nominatim.answer = []
    body = {k: v for k, v in NEED.items() if k != "location"}

    response = geo_client.post(URL, json=body, headers=tokens.dispatcher)

    assert_rejects(response, "address")
    assert len(nominatim.queries) == 1


def test_an_unreachable_geocoder_is_503_and_nothing_is_stored(settings, connection, deps, client, tokens):
    down = geocoding_client(settings, connection, f"127.0.0.1:{free_port()}")
    body = {k: v for k, v in NEED.items() if k != "location"}

    response = down.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["code"] == 503
    assert client.get(URL, headers=tokens.dispatcher).get_json()["items"] == []


# ---- field limits --------------------------------------------------------------------------------

PAST = "2020-01-01T00:00:00Z"
FUTURE_NAIVE = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0).isoformat()

INVALID_NEEDS = [
    ("kind-missing", {"kind": None}, "kind"),
    ("kind-unknown", {"kind": "space_travel"}, "kind"),
    ("address-301", {"address": "a" * 301}, "address"),
    ("address-empty", {"address": ""}, "address"),
    ("address-number", {"address": 14}, "address"),
    ("description-2001", {"description": "d" * 2001}, "description"),
    ("description-list", {"description": ["no water"]}, "description"),
    ("volunteers-needed-0", {"volunteers_needed": 0}, "volunteers_needed"),
    ("volunteers-needed-21", {"volunteers_needed": 21}, "volunteers_needed"),
    ("volunteers-needed-string", {"volunteers_needed": "2"}, "volunteers_needed"),
    ("volunteers-needed-float", {"volunteers_needed": 1.5}, "volunteers_needed"),
    ("priority-unknown", {"priority": "urgent"}, "priority"),
    ("priority-uppercase", {"priority": "HIGH"}, "priority"),
    ("vulnerability-unknown", {"vulnerability": ["pregnant"]}, "vulnerability"),
    ("vulnerability-string", {"vulnerability": "elderly_alone"}, "vulnerability"),
    ("vulnerability-too-many", {"vulnerability": ["child"] * 6}, "vulnerability"),
    ("skills-unknown", {"skills": ["flying"]}, "skills"),
    ("skills-too-many", {"skills": ["driving"] * 21}, "skills"),
    ("deadline-past", {"deadline": PAST}, "deadline"),
    ("deadline-naive", {"deadline": FUTURE_NAIVE}, "deadline"),
    ("deadline-not-a-date", {"deadline": "tomorrow"}, "deadline"),
    ("deadline-number", {"deadline": 1893456000}, "deadline"),
    ("lat-91", {"location": {"lat": 91, "lon": 132.2}}, "location.lat"),
    ("lon-181", {"location": {"lat": 46.3, "lon": 181}}, "location.lon"),
    ("lat-string", {"location": {"lat": "north", "lon": 132.2}}, "location.lat"),
    ("location-list", {"location": [46.3, 132.2]}, "location"),
    ("requester-phone", {"requester": {"name": "Zhang", "phone": "13900000002"}}, "requester.phone"),
    ("requester-name-101", {"requester": {"name": "z" * 101}}, "requester.name"),
    ("requester-locale", {"requester": {"locale": "fr"}}, "requester.locale"),
    ("requester-unknown", {"requester": {"email": "a@b.c"}}, "requester.email"),
    ("grid-51", {"grid": "g" * 51}, "grid"),
    ("status-not-writable", {"status": "done"}, "status"),
    ("tracking-code-not-writable", {"tracking_code": "mine"}, "tracking_code"),
    ("unknown-field", {"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(
    ("overrides", "field"), [(o, f) for _, o, f in INVALID_NEEDS], ids=[i for i, _, _ in INVALID_NEEDS]
)
def test_submission_rejects_an_invalid_field_naming_it(client, tokens, overrides, field):
    body = {**NEED, **overrides}
    body = {k: v for k, v in body.items() if v is not None or k != "kind"}

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert_rejects(response, field)
    assert client.get(URL, headers=tokens.dispatcher).get_json()["items"] == [], "nothing was stored"


def test_a_past_deadline_is_refused_with_a_message_saying_so(client, tokens):
    response = client.post(URL, json={**NEED, "deadline": PAST}, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert "future" in response.get_json()["message"]


@pytest.mark.parametrize("field", ["deadline", "arrive_by"])
def test_a_time_more_than_a_year_ahead_is_422_naming_the_field(client, tokens, clock, field):
    now = clock.now()

    far = client.post(URL, json={**NEED, field: "9999-12-31T23:59:59-12:00"}, headers=tokens.dispatcher)
    just_over = client.post(
        URL, json={**NEED, field: (now + timedelta(days=366, minutes=1)).isoformat()}, headers=tokens.dispatcher
    )
    within = client.post(URL, json={**NEED, field: (now + timedelta(days=365)).isoformat()}, headers=tokens.dispatcher)

    for refused in (far, just_over):
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["errors"] == {"json": {field: ["Must be within 366 days of now."]}}
    assert within.status_code == 201, within.get_json()


@pytest.mark.parametrize(
    "overrides",
    [
        {"address": "a" * 300},
        {"description": "d" * 2000},
        {"description": None},
        {"description": ""},
        {"volunteers_needed": 1},
        {"volunteers_needed": 20},
        {"vulnerability": ["elderly_alone", "disabled", "child", "livestock", "medical"]},
        {"priority": "critical"},
        {"priority": "low"},
        {"requester": {"name": None, "phone": None}},
        {"requester": {"name": "Zhang", "phone": "+8613900000002", "locale": "en"}},
        {"grid": None},
    ],
    ids=lambda o: ",".join(f"{k}={str(v)[:12]}" for k, v in o.items()),
)
def test_values_at_the_limits_are_accepted(client, tokens, overrides):
    response = client.post(URL, json={**NEED, **overrides}, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    need = response.get_json()
    for key in ("address", "description", "volunteers_needed", "priority"):
        if key in overrides:
            assert need[key] == overrides[key], key


# ---- lists ---------------------------------------------------------------------------------------


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [n["id"] for n in response.get_json()["items"]]


def make_in_order(make_need: Any, count: int, **overrides: Any) -> list[str]:
    """Needs created one after the other (ids are ordered by millisecond)."""
    made = []
    for _ in range(count):
        made.append(make_need(**overrides)["id"])
        time.sleep(0.003)
    return made


def test_list_returns_needs_newest_first(client, tokens, make_need):
    made = make_in_order(make_need, 4)

    assert ids_of(client.get(URL, headers=tokens.dispatcher)) == list(reversed(made))


def test_list_filters_by_status(client, tokens, make_need):
    kept, cancelled = make_need(), make_need()
    client.post(f"{URL}/{cancelled['id']}/cancel", json={"reason": "duplicate"}, headers=tokens.dispatcher)

    assert ids_of(client.get(f"{URL}?status=cancelled", headers=tokens.dispatcher)) == [cancelled["id"]]
    assert ids_of(client.get(f"{URL}?status=queued", headers=tokens.dispatcher)) == [kept["id"]]
    assert ids_of(client.get(f"{URL}?status=done", headers=tokens.dispatcher)) == []


def test_list_filters_by_kind(client, tokens, make_need):
    water = make_need(kind="water_delivery")
    coal = make_need(kind="coal_hauling")

    assert ids_of(client.get(f"{URL}?kind=water_delivery", headers=tokens.dispatcher)) == [water["id"]]
    assert ids_of(client.get(f"{URL}?kind=coal_hauling", headers=tokens.dispatcher)) == [coal["id"]]
    assert ids_of(client.get(f"{URL}?kind=tutoring", headers=tokens.dispatcher)) == []


def test_list_filters_by_priority(client, tokens, make_need):
    critical = make_need(priority="critical")
    low = make_need(priority="low")

    assert ids_of(client.get(f"{URL}?priority=critical", headers=tokens.dispatcher)) == [critical["id"]]
    assert ids_of(client.get(f"{URL}?priority=low", headers=tokens.dispatcher)) == [low["id"]]


def test_list_filters_by_nearness(client, tokens, make_need):
    here = make_need(location={"lat": 46.34, "lon": 132.25})
    make_need(location={"lat": 47.50, "lon": 134.00})  # over 150 km away

    assert ids_of(client.get(f"{URL}?near=46.33,132.25&radius_km=5", headers=tokens.dispatcher)) == [here["id"]]
    assert len(ids_of(client.get(f"{URL}?near=46.33,132.25&radius_km=300", headers=tokens.dispatcher))) == 2


def test_list_combines_filters(client, tokens, make_need):
    wanted = make_need(kind="transport", priority="high")
    make_need(kind="transport", priority="low")
    make_need(kind="farm_help", priority="high")

    response = client.get(f"{URL}?kind=transport&priority=high&status=queued", headers=tokens.dispatcher)

    assert ids_of(response) == [wanted["id"]]


def walk_pages(client: Any, headers: dict[str, str], query: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(100):
        url = f"{URL}?limit={limit}" + (f"&{query}" if query else "") + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= limit
        pages.append([n["id"] for n in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    pytest.fail("the cursor never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 6, 50])
def test_cursor_pagination_walks_every_need_once_newest_first(client, tokens, make_need, limit):
    made = make_in_order(make_need, 5)

    pages = walk_pages(client, tokens.dispatcher, "", limit)

    assert [nid for page in pages for nid in page] == list(reversed(made))


def test_cursor_pagination_with_a_filter_walks_only_matching_needs_once(client, tokens, make_need):
    high = []
    for i in range(6):
        need = make_need(priority="high" if i % 2 == 0 else "low")
        if i % 2 == 0:
            high.append(need["id"])
        time.sleep(0.003)

    seen = [nid for page in walk_pages(client, tokens.dispatcher, "priority=high", 2) for nid in page]

    assert seen == list(reversed(high))


def test_cursor_pagination_near_a_point_walks_every_need_once_newest_first(client, tokens, make_need):
    made = make_in_order(make_need, 5, location={"lat": 46.34, "lon": 132.25})
    make_need(location={"lat": 40.0, "lon": 120.0})

    seen = [nid for page in walk_pages(client, tokens.dispatcher, "near=46.34,132.25&radius_km=10", 2) for nid in page]

    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("kind=space_travel", "kind"),
        ("priority=urgent", "priority"),
        ("near=here", "near"),
        ("near=91,0", "near"),
        ("near=46.3,132.2&radius_km=-1", "radius_km"),
        ("near=46.3,132.2&radius_km=1000", "radius_km"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("cursor=%%%", "cursor"),
        ("sort=oldest", "sort"),
    ],
)
def test_list_rejects_invalid_query_arguments_naming_them(client, tokens, query, field):
    response = client.get(f"{URL}?{query}", headers=tokens.dispatcher)

    assert_rejects(response, field)


# ---- one need, its timeline, cancelling -----------------------------------------------------------


def test_reading_an_unknown_need_is_404(client, tokens):
    response = client.get(f"{URL}/need_doesnotexist", headers=tokens.dispatcher)

    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_events_start_with_the_creation(client, tokens, make_need):
    need = make_need()

    response = client.get(f"{URL}/{need['id']}/events", headers=tokens.dispatcher)

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert len(items) >= 1
    for item in items:
        assert set(item) == {"at", "type", "actor", "detail"}
        assert isinstance(item["detail"], dict)
        parse_time(item["at"])
    first = items[0]
    assert first["type"] == "created"
    assert first["actor"].startswith("dispatcher")
    assert first["detail"]["kind"] == NEED["kind"]
    assert first["detail"]["priority"] == NEED["priority"]


def test_events_record_a_cancellation_with_its_reason_and_actor(client, tokens, make_need):
    need = make_need(headers=tokens.intake)
    client.post(f"{URL}/{need['id']}/cancel", json={"reason": "solved by a neighbour"}, headers=tokens.dispatcher)

    items = client.get(f"{URL}/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]

    assert [e["type"] for e in items][0] == "created"
    assert items[0]["actor"].startswith("intake")
    cancelled = [e for e in items if e["type"] == "cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["detail"]["reason"] == "solved by a neighbour"
    assert cancelled[0]["actor"].startswith("dispatcher")
    assert [e["at"] for e in items] == sorted(e["at"] for e in items), "oldest first"


def test_events_of_an_unknown_need_is_404(client, tokens):
    assert client.get(f"{URL}/need_doesnotexist/events", headers=tokens.dispatcher).status_code == 404


def test_cancel_with_a_reason_cancels_the_need(client, tokens, make_need):
    need = make_need()

    response = client.post(f"{URL}/{need['id']}/cancel", json={"reason": "duplicate call"}, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == need["id"]
    assert body["status"] == "cancelled"
    assert body["status_reason"] == "duplicate call"
    assert client.get(f"{URL}/{need['id']}", headers=tokens.dispatcher).get_json()["status"] == "cancelled"


def test_the_intake_that_sent_a_need_may_cancel_it(client, tokens, make_need):
    need = make_need(headers=tokens.intake)

    response = client.post(f"{URL}/{need['id']}/cancel", json={"reason": "caller hung up"}, headers=tokens.intake)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "body",
    [None, {}, {"reason": ""}, {"reason": None}, {"reason": "r" * 501}, {"reason": 5}, {"reason": "x", "why": "y"}],
    ids=["no-body", "empty-object", "empty-reason", "null-reason", "reason-501", "reason-number", "unknown-field"],
)
def test_cancel_requires_a_reason(client, tokens, make_need, body):
    need = make_need()

    if body is None:
        response = client.post(f"{URL}/{need['id']}/cancel", headers=tokens.dispatcher)
    else:
        response = client.post(f"{URL}/{need['id']}/cancel", json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) & {"reason", "why"}
    assert client.get(f"{URL}/{need['id']}", headers=tokens.dispatcher).get_json()["status"] == "queued"


def test_cancelling_twice_is_409_naming_the_status(client, tokens, make_need):
    need = make_need()
    url = f"{URL}/{need['id']}/cancel"
    assert client.post(url, json={"reason": "first"}, headers=tokens.dispatcher).status_code == 200

    response = client.post(url, json={"reason": "second"}, headers=tokens.dispatcher)

    assert response.status_code == 409, response.get_json()
    assert "cancelled" in response.get_json()["message"]


def test_cancelling_an_unknown_need_is_404(client, tokens):
    response = client.post(f"{URL}/need_doesnotexist/cancel", json={"reason": "x"}, headers=tokens.dispatcher)

    assert response.status_code == 404
