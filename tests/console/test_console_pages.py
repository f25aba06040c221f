"""The console's pages and actions through the Flask test client: each action does what the API's endpoint does,
shows the domain's refusal next to the action, and everything people typed is escaped."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from markupsafe import escape

from service import needs
from service.models import NeedStatus, Principal, Role
from tests.conftest import Tokens
from tests.console.conftest import Console

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>alert(2)</script>",
]


def escalate(deps: Any, need_id: str, reason: str = "nobody within reach") -> None:
    from service.dispatch import escalate as escalate_need

    need = needs.load_need(deps=deps, need_id=need_id)
    assert escalate_need(deps=deps, need=need, reason=reason)


def test_the_board_counts_needs_and_lists_escalated_ones_with_their_reason(
    console: Console, make_need: Any, deps: Any
) -> None:
    waiting, escalated = make_need(), make_need(priority="critical")
    escalate(deps, escalated["id"], reason="no driver within 25 km")

    page = console.html("/console/board")

    assert f'data-need-id="{escalated["id"]}"' in page
    assert "no driver within 25 km" in page
    assert 'data-testid="count-escalated"><span>escalated</span> <b>1</b>' in page
    queue = page.split("Latest needs")[0]
    assert escalated["id"] in queue and waiting["id"] not in queue
    assert waiting["id"] in page.split("Latest needs")[1]


def test_the_queue_holds_deferred_flagged_and_at_risk_needs_most_pressing_first(
    console: Console, make_need: Any, deps: Any, clock: Any, tokens: Tokens
) -> None:
    deferred, flagged, escalated = make_need(), make_need(priority="low"), make_need()
    late = make_need(priority="critical")
    escalate(deps, escalated["id"])
    needs.defer_need(deps=deps, need_id=deferred["id"], reason="road closed", principal=Principal(Role.DISPATCHER, "t"))
    deps.store.needs.flag(flagged["id"], at_epoch=1.0)
    clock.advance(3600)  # the critical need is far into its deadline, still unassigned; the low one is not

    page = console.html("/console/board").split("Latest needs")[0]

    order = [page.index(f'data-need-id="{n["id"]}"') for n in (escalated, late, flagged, deferred)]
    assert order == sorted(order)
    assert "deadline at risk" in page and "notification failed" in page and "road closed" in page


def test_the_need_panel_shows_details_timeline_offers_and_notifications(
    console: Console, make_need: Any, make_volunteer: Any, work: Any
) -> None:
    make_volunteer(on_duty=True, location={"lat": 46.34, "lon": 132.25})
    need = make_need()
    work()

    page = console.html(f"/console/needs/{need['id']}")

    assert 'data-testid="need-panel"' in page
    assert "Station 2, house 14" in page and "+8613900000002" in page
    assert 'data-event="created"' in page and 'data-event="offered"' in page
    assert 'data-testid="offer"' in page
    for action in ("assign", "rematch", "defer", "cancel", "reopen", "priority"):
        assert f'data-testid="action-{action}"' in page


def test_the_assign_picker_lists_the_nearest_eligible_volunteers(
    console: Console, make_need: Any, make_volunteer: Any, deps: Any
) -> None:
    near = make_volunteer(on_duty=True, location={"lat": 46.341, "lon": 132.25}, name="Near")
    far = make_volunteer(on_duty=True, location={"lat": 46.40, "lon": 132.25}, name="Far", phone="+8613800000009")
    make_volunteer(on_duty=False, location={"lat": 46.34, "lon": 132.25}, name="Off", phone="+8613800000008")
    make_volunteer(
        on_duty=True, skills=["cooking"], location={"lat": 46.34, "lon": 132.25}, name="Cook", phone="+8613800000007"
    )
    need = make_need(kind="plumbing_repair")

    page = console.html(f"/console/needs/{need['id']}")

    assert page.index(f'data-volunteer-id="{near["id"]}"') < page.index(f'data-volunteer-id="{far["id"]}"')
    assert page.count('data-testid="candidate"') == 2


def test_assigning_from_the_panel_makes_the_offer_the_api_shows(
    console: Console, make_need: Any, make_volunteer: Any, deps: Any, client: Any, tokens: Tokens
) -> None:
    volunteer = make_volunteer(on_duty=True)
    need = make_need()
    escalate(deps, need["id"])

    response = console.post(f"/console/needs/{need['id']}/assign", {"volunteer_id": volunteer["id"]}, htmx=True)

    assert response.status_code == 200
    assert 'data-testid="flash"' in response.get_data(as_text=True)
    shown = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()
    assert shown["status"] == "assigned"
    assert [a["volunteer_id"] for a in shown["assignments"]] == [volunteer["id"]]


@pytest.mark.parametrize("action", ["defer", "cancel"])
def test_defer_and_cancel_need_a_reason_and_the_requester_sees_it(
    console: Console, make_need: Any, client: Any, action: str
) -> None:
    need = make_need()

    refused = console.post(f"/console/needs/{need['id']}/{action}", {"reason": ""})
    done = console.post(f"/console/needs/{need['id']}/{action}", {"reason": "the bridge is flooded"})

    assert refused.status_code == 422
    assert "reason" in refused.get_data(as_text=True) and 'data-testid="action-error"' in refused.get_data(as_text=True)
    assert done.status_code == 200
    tracked = client.get(f"/api/v1/track/{need['tracking_code']}").get_json()
    assert tracked["status"] == ("deferred" if action == "defer" else "cancelled")
    assert any(e["detail"].get("reason") == "the bridge is flooded" for e in tracked["timeline"])


def test_a_refused_action_shows_the_apis_reason_next_to_it_in_the_consoles_words(
    console: Console, make_need: Any, client: Any, tokens: Tokens
) -> None:
    need = make_need()
    api = client.post(f"/api/v1/needs/{need['id']}/reopen", headers=tokens.dispatcher)

    response = console.post(f"/console/needs/{need['id']}/reopen")

    assert api.status_code == 409
    assert api.get_json()["message"] == "a need that is queued cannot be reopened"
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "A need that is queued cannot be reopened." in page
    console.post("/console/lang", {"lang": "zh"})
    in_chinese = console.post(f"/console/needs/{need['id']}/reopen").get_data(as_text=True)
    assert "状态为“排队中”的需求不能重新打开。" in in_chinese
    assert "<details open>" in page.replace("<details  open>", "<details open>") or "details open" in page


def test_rematch_reopen_and_priority_change_the_need(
    console: Console, make_need: Any, client: Any, tokens: Tokens, deps: Any
) -> None:
    need = make_need()
    escalate(deps, need["id"])

    assert console.post(f"/console/needs/{need['id']}/rematch").status_code == 200
    assert console.post(f"/console/needs/{need['id']}/cancel", {"reason": "duplicate"}).status_code == 200
    assert console.post(f"/console/needs/{need['id']}/reopen", {"reason": "not a duplicate"}).status_code == 200
    assert console.post(f"/console/needs/{need['id']}/priority", {"priority": "critical"}).status_code == 200
    assert console.post(f"/console/needs/{need['id']}/priority", {"priority": "urgent!"}).status_code == 422

    events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    assert [e["type"] for e in events][-4:] == ["rematch", "cancelled", "reopened", "priority_changed"]
    assert client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["priority"] == "critical"


def test_an_unknown_need_is_a_404_page(console: Console) -> None:
    assert console.get("/console/needs/need_nope").status_code == 404
    assert console.post("/console/needs/need_nope/defer", {"reason": "x"}).status_code == 404
    assert console.post("/console/needs/need_nope/explode").status_code == 404


def test_the_new_need_form_submits_through_the_apis_schema(console: Console, client: Any, tokens: Tokens) -> None:
    form = {
        "kind": "water_delivery",
        "lat": "46.34",
        "lon": "132.25",
        "priority": "high",
        "vulnerability": ["elderly_alone"],
        "description": "pump failed",
        "requester_name": "Zhang",
        "requester_phone": "+8613900000002",
        "skills": ["driving"],
    }

    response = console.post("/console/needs/new", form)

    assert response.status_code == 303
    need_id = response.headers["Location"].rsplit("/", 1)[1]
    shown = client.get(f"/api/v1/needs/{need_id}", headers=tokens.dispatcher).get_json()
    assert (shown["kind"], shown["priority"], shown["skills"], shown["vulnerability"]) == (
        "water_delivery",
        "high",
        ["driving"],
        ["elderly_alone"],
    )


def test_the_new_need_form_shows_the_apis_field_errors_inline(console: Console, client: Any, tokens: Tokens) -> None:
    bad = {"kind": "water_delivery", "lat": "200", "lon": "east", "requester_phone": "12345"}
    api = client.post(
        "/api/v1/needs",
        json={"kind": "water_delivery", "location": {"lat": 200, "lon": "east"}, "requester": {"phone": "12345"}},
        headers=tokens.dispatcher,
    ).get_json()

    response = console.post("/console/needs/new", bad)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("location.lat", "location.lon", "requester.phone"):
        assert f'data-testid="error-{field}"' in page
    assert api["errors"]["json"]["location"]["lat"][0].startswith("Must be greater than or equal to -85.05112")
    assert "Must be from -85.05112 to 85.05112." in page, "the API's message, in the console's words"
    assert 'value="east"' in page  # what was typed stays in the form
    no_place = client.post("/api/v1/needs", json={"kind": "water_delivery"}, headers=tokens.dispatcher).get_json()
    missing = console.post("/console/needs/new", {"kind": "water_delivery"})
    assert missing.status_code == 422
    assert no_place["errors"]["json"]["location"][0].startswith("Send location")
    assert "Give the place: a point on the map" in missing.get_data(as_text=True)


def test_the_new_need_forms_field_errors_are_in_chinese_on_a_chinese_console(console: Console) -> None:
    console.post("/console/lang", {"lang": "zh"})

    response = console.post(
        "/console/needs/new", {"kind": "water_delivery", "lat": "200", "lon": "east", "volunteers_needed": "two"}
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "必须在 -85.05112 到 85.05112 之间。" in page
    assert "不是有效的数字。" in page and "不是整数。" in page
    assert "Must be" not in page and "Not a valid" not in page


def test_volunteers_are_filtered_and_put_on_or_off_duty(
    console: Console, make_volunteer: Any, client: Any, tokens: Tokens
) -> None:
    on = make_volunteer(on_duty=True, grid="grid-1")
    off = make_volunteer(on_duty=False, grid="grid-2", phone="+8613800000005", skills=["cooking"])

    assert on["id"] in console.html("/console/volunteers?grid=grid-1")
    assert off["id"] not in console.html("/console/volunteers?grid=grid-1")
    assert off["id"] in console.html("/console/volunteers?skill=cooking&on_duty=no")
    response = console.post(f"/console/volunteers/{off['id']}/duty", {"on_duty": "true"}, htmx=True)

    assert response.status_code == 200 and 'data-testid="volunteer-row"' in response.get_data(as_text=True)
    assert client.get(f"/api/v1/volunteers/{off['id']}", headers=tokens.dispatcher).get_json()["on_duty"] is True


def test_the_map_data_is_geojson_of_needs_volunteers_incidents_and_grids(
    console: Console, make_need: Any, make_volunteer: Any, client: Any, tokens: Tokens
) -> None:
    volunteer = make_volunteer(on_duty=True, grid="grid-2")
    need = make_need(grid="grid-2")
    client.post(
        "/api/v1/incidents",
        json={"family": "water", "centre": {"lat": 46.34, "lon": 132.25}, "radius_km": 1},
        headers=tokens.dispatcher,
    )

    data = json.loads(console.html("/console/map/data"))

    assert data["type"] == "FeatureCollection"
    layers = {(f["properties"]["layer"], f["properties"]["id"]) for f in data["features"]}
    assert ("need", need["id"]) in layers and ("volunteer", volunteer["id"]) in layers and ("grid", "grid-2") in layers
    assert any(f["properties"]["layer"] == "incident" and f["geometry"]["type"] == "Polygon" for f in data["features"])


def test_the_map_shows_a_volunteer_whose_offers_took_all_their_room_with_that_load(
    console: Console, make_need: Any, make_volunteer: Any, client: Any, tokens: Tokens, work: Any
) -> None:
    volunteer = make_volunteer(on_duty=True, capacity=1, grid="grid-2")
    make_need(grid="grid-2")
    work()
    assert client.get(f"/api/v1/volunteers/{volunteer['id']}", headers=tokens.dispatcher).get_json()["load"] == 1

    data = json.loads(console.html("/console/map/data"))

    [shown] = [f for f in data["features"] if f["properties"]["id"] == volunteer["id"]]
    assert (shown["properties"]["load"], shown["properties"]["capacity"]) == (1, 1)


def test_incidents_list_and_detail_with_their_needs(
    console: Console, make_need: Any, client: Any, tokens: Tokens
) -> None:
    need = make_need()
    incident = client.post(
        "/api/v1/incidents",
        json={"family": "water", "centre": {"lat": 46.34, "lon": 132.25}, "radius_km": 1, "note": "pump station"},
        headers=tokens.dispatcher,
    ).get_json()

    assert f'data-incident-id="{incident["id"]}"' in console.html("/console/incidents")
    detail = console.html(f"/console/incidents/{incident['id']}")
    assert "pump station" in detail and f'data-need-id="{need["id"]}"' in detail
    assert console.get("/console/incidents/inc_nope").status_code == 404


@pytest.mark.parametrize("evil", XSS)
def test_everything_people_typed_is_escaped(
    console: Console, make_need: Any, make_volunteer: Any, deps: Any, evil: str
) -> None:
    grid = re.sub(r"[\s,/]", "", evil)[:50]  # a grid's name has no spaces, commas or slashes, but may have the rest
    volunteer = make_volunteer(on_duty=True, name=evil, grid=grid, location={"lat": 46.34, "lon": 132.25})
    need = make_need(
        description=evil, address=evil, requester={"name": evil[:100], "phone": "+8613900000002"}, grid=grid
    )
    escalate(deps, need["id"], reason=evil)
    console.post(f"/console/needs/{need['id']}/defer", {"reason": evil})
    console.post(f"/console/volunteers/{volunteer['id']}/duty", {"on_duty": "true"})

    pages = [console.html(p) for p in ("/console/", f"/console/needs/{need['id']}", "/console/volunteers")]
    pages.append(
        console.post(
            "/console/needs/new",
            {"kind": "other", "description": evil, "address": evil, "requester_name": evil, "lat": evil},
        ).get_data(as_text=True)
    )

    for page in pages:
        assert evil not in page
        assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page
    assert str(escape(evil)) in pages[1]


def test_need_status_vocabulary_is_shown_for_every_status(console: Console) -> None:
    page = console.html("/console/board")

    for status in NeedStatus:
        assert f'data-testid="count-{status.value}"' in page
