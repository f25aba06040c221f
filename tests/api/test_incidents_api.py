"""Incidents API: lists, one incident, declaring and closing; a need's incident_id; the requester's view;
the catalog's families; the metrics."""

from __future__ import annotations

from typing import Any

import pytest

from service.incidents import km_between
from service.models import Location
from tests.api.validation import assert_rejects

URL = "/api/v1/incidents"
HERE = {"lat": 46.34, "lon": 132.25}


def near(km_north: float, km_east: float = 0.0) -> dict[str, float]:
    return {"lat": HERE["lat"] + km_north / 111.19, "lon": HERE["lon"] + km_east / 76.8}


@pytest.fixture
def cluster(make_need: Any) -> list[dict[str, Any]]:
    """Five water needs within a kilometre, the last arriving: they form an incident."""
    return [make_need(location=near(0.2 * i), vulnerability=["elderly_alone"] if i < 2 else []) for i in range(5)]


def test_needs_that_form_an_incident_show_it_and_the_incident_lists_them(client, tokens, cluster) -> None:
    incident_id = cluster[-1]["incident_id"]
    assert incident_id and incident_id.startswith("inc_")
    assert [n["incident_id"] for n in cluster[:4]] == [None] * 4, "the answer at intake: not yet"
    for need in cluster:
        got = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()
        assert got["incident_id"] == incident_id
        events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
        assert [e["detail"] for e in events if e["type"] == "incident_joined"] == [{"incident_id": incident_id}]

    response = client.get(f"{URL}/{incident_id}", headers=tokens.ops)

    assert response.status_code == 200, response.get_json()
    incident = response.get_json()
    assert incident["id"] == incident_id
    assert (incident["family"], incident["status"], incident["declared_by"], incident["closed_at"]) == (
        "water",
        "open",
        None,
        None,
    )
    assert sorted(incident["need_ids"]) == sorted(n["id"] for n in cluster)
    assert incident["counts"] == {"queued": 5}
    assert incident["vulnerable"] == 2
    assert incident["radius_km"] == 2.0
    assert incident["opened_at"].endswith("Z")
    centre = Location(**incident["centre"])
    assert km_between(centre, Location(**near(0.4))) < 0.01, "the mean of its needs"
    assert incident["area"]["type"] == "Polygon"
    [ring] = incident["area"]["coordinates"]
    assert ring[0] == ring[-1] and len(ring) > 8
    for lon, lat in ring:
        assert km_between(centre, Location(lat, lon)) == pytest.approx(2.0, rel=1e-2)


def test_the_list_is_newest_first_paged_and_filtered(client, tokens, cluster, make_need) -> None:
    automatic = cluster[-1]["incident_id"]
    declared = []
    for i, family in enumerate(["heat", "power", "heat"]):
        body = {"family": family, "centre": near(30 * (i + 1)), "radius_km": 1.0}
        response = client.post(URL, json=body, headers=tokens.dispatcher)
        assert response.status_code == 201, response.get_json()
        declared.append(response.get_json()["id"])
    client.post(f"{URL}/{declared[0]}/close", headers=tokens.dispatcher)

    everything = client.get(URL, headers=tokens.dispatcher).get_json()
    assert [i["id"] for i in everything["items"]] == [*reversed(declared), automatic]
    assert everything["next_cursor"] is None

    first = client.get(URL, query_string={"limit": 2}, headers=tokens.ops).get_json()
    second = client.get(URL, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=tokens.ops)
    assert [i["id"] for i in first["items"] + second.get_json()["items"]] == [*reversed(declared), automatic]

    def ids(**query: Any) -> list[str]:
        response = client.get(URL, query_string=query, headers=tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return [i["id"] for i in response.get_json()["items"]]

    assert ids(status="open") == [declared[2], declared[1], automatic]
    assert ids(status="closed") == [declared[0]]
    assert ids(family="heat") == [declared[2], declared[0]]
    assert ids(family="heat", status="open") == [declared[2]]
    assert ids(near=f"{HERE['lat']},{HERE['lon']}", radius_km=5) == [automatic]


def test_a_dispatcher_declares_an_incident_and_the_open_needs_inside_join_it(client, tokens, make_need) -> None:
    inside = make_need(kind="heating_repair", location=near(0.5))
    coal = make_need(kind="coal_hauling", location=near(-0.5))
    other = make_need(kind="water_delivery", location=near(0.5))
    outside = make_need(kind="heating_repair", location=near(5))

    response = client.post(
        URL,
        json={"family": "heat", "centre": HERE, "radius_km": 2, "note": "boiler house 3 down"},
        headers=tokens.dispatcher,
    )

    assert response.status_code == 201, response.get_json()
    incident = response.get_json()
    assert sorted(incident["need_ids"]) == sorted([inside["id"], coal["id"]])
    assert (incident["family"], incident["radius_km"], incident["note"]) == ("heat", 2.0, "boiler house 3 down")
    assert incident["declared_by"].startswith("dispatcher:")
    assert incident["centre"] == HERE
    for need, expected in ((inside, incident["id"]), (other, None), (outside, None)):
        got = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()
        assert got["incident_id"] == expected


def test_closing_answers_the_closed_incident_then_409(client, tokens, cluster) -> None:
    incident_id = cluster[-1]["incident_id"]

    response = client.post(f"{URL}/{incident_id}/close", headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "closed" and response.get_json()["closed_at"]
    again = client.post(f"{URL}/{incident_id}/close", headers=tokens.dispatcher)
    assert again.status_code == 409
    assert again.get_json()["code"] == 409 and "closed" in again.get_json()["message"]


@pytest.mark.parametrize(("method", "path"), [("get", "/inc_unknown"), ("post", "/inc_unknown/close")])
def test_an_unknown_incident_is_a_json_404(client, tokens, method: str, path: str) -> None:
    response = getattr(client, method)(URL + path, headers=tokens.dispatcher)

    assert response.status_code == 404
    assert response.get_json()["code"] == 404 and "inc_unknown" in response.get_json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"centre": HERE, "radius_km": 1}, "family"),
        ({"family": "fire", "centre": HERE, "radius_km": 1}, "family"),
        ({"family": "water", "radius_km": 1}, "centre"),
        ({"family": "water", "centre": {"lat": 91, "lon": 0}, "radius_km": 1}, "centre.lat"),
        ({"family": "water", "centre": HERE}, "radius_km"),
        ({"family": "water", "centre": HERE, "radius_km": 0}, "radius_km"),
        ({"family": "water", "centre": HERE, "radius_km": 51}, "radius_km"),
        ({"family": "water", "centre": HERE, "radius_km": "2"}, "radius_km"),
        ({"family": "water", "centre": HERE, "radius_km": 1, "note": "x" * 1001}, "note"),
        ({"family": "water", "centre": HERE, "radius_km": 1, "colour": "red"}, "colour"),
    ],
)
def test_declaring_with_bad_input_is_a_422_naming_the_field(client, tokens, body: dict[str, Any], field: str) -> None:
    assert_rejects(client.post(URL, json=body, headers=tokens.dispatcher), field)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "burning"}, "status"),
        ({"family": "fire"}, "family"),
        ({"near": "north"}, "near"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_listing_with_bad_arguments_is_a_422_naming_the_field(client, tokens, query, field) -> None:
    assert_rejects(client.get(URL, query_string=query, headers=tokens.dispatcher), field)


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("get", "", "intake", 403),
        ("get", "", "volunteer", 403),
        ("post", "", "ops", 403),
        ("post", "", "intake", 403),
        ("post", "/inc_x/close", "ops", 403),
        ("get", "/inc_x", None, 401),
    ],
)
def test_only_dispatchers_change_incidents_and_dispatchers_and_ops_read_them(
    client, tokens, method: str, path: str, role: str | None, status: int
) -> None:
    headers = {}
    if role == "volunteer":
        headers = tokens.volunteer("vol_x")
    elif role:
        headers = tokens.headers(role)
    body = {"family": "water", "centre": HERE, "radius_km": 1}
    response = (
        client.post(URL + path, json=body, headers=headers)
        if method == "post"
        else client.get(URL + path, headers=headers)
    )
    assert response.status_code == status, response.get_json()


def test_a_need_in_no_incident_says_so(make_need) -> None:
    assert make_need()["incident_id"] is None


# ---- the requester ---------------------------------------------------------------------------------


def test_the_tracking_page_tells_the_requester_their_need_is_part_of_a_wider_incident(client, cluster) -> None:
    response = client.get(f"/api/v1/track/{cluster[0]['tracking_code']}")

    assert response.status_code == 200
    incident = response.get_json()["incident"]
    assert (incident["size"], incident["family"]) == (5, "water")
    assert incident["message"] == {
        "zh": "您的求助属于一起停水事件（共5个求助），我们正在统一处理。",
        "en": "Your request is part of a wider water incident (5 requests) that is being handled together.",
    }
    assert "incident_joined" in [e["type"] for e in response.get_json()["timeline"]]


def test_the_tracking_page_of_a_need_in_no_incident_shows_none(client, make_need) -> None:
    need = make_need()
    assert client.get(f"/api/v1/track/{need['tracking_code']}").get_json()["incident"] is None


# ---- the catalog and the metrics -------------------------------------------------------------------


def test_the_catalog_shows_each_kind_s_family(client, tokens) -> None:
    kinds = {k["name"]: k for k in client.get("/api/v1/catalog", headers=tokens.intake).get_json()["kinds"]}
    assert kinds["water_delivery"]["family"] == "water"
    assert kinds["coal_hauling"]["family"] == kinds["heating_repair"]["family"] == "heat"
    assert kinds["mediation"]["family"] == "care"


def test_metrics_count_incidents_opened_by_family_and_origin_and_those_open(client, tokens, cluster) -> None:
    client.post(URL, json={"family": "heat", "centre": near(30), "radius_km": 1}, headers=tokens.dispatcher)
    declared = client.post(URL, json={"family": "heat", "centre": near(60), "radius_km": 1}, headers=tokens.dispatcher)
    client.post(f"{URL}/{declared.get_json()['id']}/close", headers=tokens.dispatcher)

    text = client.get("/metrics").get_data(as_text=True)

    assert 'aidline_incidents_opened_total{family="water",origin="automatic"} 1.0' in text
    assert 'aidline_incidents_opened_total{family="heat",origin="declared"} 2.0' in text
    assert 'aidline_incidents_opened_total{family="water",origin="declared"} 0.0' in text
    assert 'aidline_incidents_open{family="water"} 1.0' in text
    assert 'aidline_incidents_open{family="heat"} 1.0' in text
