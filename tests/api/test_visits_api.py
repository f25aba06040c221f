"""Visits API: each household's visits, the visits due or overdue, recording an outcome (by the visiting
volunteer or a dispatcher), the linked need of needs_help, continuity (the previous visitor is preferred when
nearly as near), the timeline and the metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service import clock as clocks
from service import visits
from tests.api.validation import assert_rejects

KM_PER_DEGREE_LAT = 111.19
HOME = {"lat": 46.34, "lon": 132.25}


def north(km: float) -> dict[str, float]:
    return {"lat": HOME["lat"] + km / KM_PER_DEGREE_LAT, "lon": HOME["lon"]}


@pytest.fixture
def due_visit(client, tokens, deps, clock, make_household) -> Any:
    """Make a household's planned visit due (the sweep records its need); its visit as the API shows it."""

    def _due(household: dict[str, Any]) -> dict[str, Any]:
        url = f"/api/v1/households/{household['id']}/visits"
        planned = client.get(url, headers=tokens.dispatcher).get_json()["items"][0]
        clock.set(max(clock.now(), clocks.parse(planned["due_at"])))
        visits.sweep_visits(deps=deps)
        [visit] = [v for v in client.get(url, headers=tokens.dispatcher).get_json()["items"] if v["status"] == "due"]
        return visit

    return _due


def accept_offer(client: Any, tokens: Any, volunteer_id: str, need_id: str) -> None:
    offers = client.get(f"/api/v1/volunteers/{volunteer_id}/offers", headers=tokens.volunteer(volunteer_id))
    [offer] = [o for o in offers.get_json()["items"] if o["need_id"] == need_id and o["status"] == "pending"]
    accepted = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=tokens.volunteer(volunteer_id))
    assert accepted.status_code == 200, accepted.get_json()


def test_the_visiting_volunteer_records_all_well_and_is_preferred_for_the_next_visit(
    client, tokens, deps, clock, work, make_household, make_volunteer, due_visit
) -> None:
    household = make_household()
    visitor = make_volunteer(location=north(0.25), on_duty=True, phone="+8613800000011")
    visit = due_visit(household)
    work()
    accept_offer(client, tokens, visitor["id"], visit["need_id"])

    response = client.post(
        f"/api/v1/visits/{visit['id']}/outcome",
        json={"outcome": "all_well", "note": "Tea and a chat"},
        headers=tokens.volunteer(visitor["id"]),
    )

    assert response.status_code == 200, response.get_json()
    done = response.get_json()
    assert (done["status"], done["outcome"], done["kind"], done["visitor_id"]) == (
        "done",
        "all_well",
        None,
        visitor["id"],
    )
    need = client.get(f"/api/v1/needs/{visit['need_id']}", headers=tokens.dispatcher).get_json()
    assert (need["status"], need["household_id"], need["visit_id"]) == ("done", household["id"], visit["id"])
    events = client.get(f"/api/v1/needs/{visit['need_id']}/events", headers=tokens.dispatcher).get_json()["items"]
    [recorded] = [e for e in events if e["type"] == "visit_outcome"]
    assert recorded["detail"] == {"visit_id": visit["id"], "outcome": "all_well", "note": "Tea and a chat"}
    assert (
        client.get(f"/api/v1/households/{household['id']}", headers=tokens.dispatcher).get_json()["last_visitor"]
        == visitor["id"]
    )

    # the next visit: a nearer volunteer is now on duty, but the previous visitor is nearly as near
    make_volunteer(location=north(0.2), on_duty=True, phone="+8613800000012")
    following = due_visit(household)
    work()
    need = client.get(f"/api/v1/needs/{following['need_id']}", headers=tokens.dispatcher).get_json()
    assert [a["volunteer_id"] for a in need["assignments"]] == [visitor["id"]], "continuity"


def test_the_previous_visitor_is_not_preferred_when_much_further_than_the_nearest(
    client, tokens, work, make_household, make_volunteer, due_visit
) -> None:
    far = make_volunteer(location=north(5.0), on_duty=True, phone="+8613800000021")
    near = make_volunteer(location=north(0.2), on_duty=True, phone="+8613800000022")
    household = make_household(preferred_volunteers=[far["id"]])

    visit = due_visit(household)
    work()

    need = client.get(f"/api/v1/needs/{visit['need_id']}", headers=tokens.dispatcher).get_json()
    assert [a["volunteer_id"] for a in need["assignments"]] == [near["id"]]


def test_needs_help_records_a_linked_need_of_that_kind(client, tokens, make_household, due_visit) -> None:
    household = make_household()
    visit = due_visit(household)
    url = f"/api/v1/visits/{visit['id']}/outcome"

    assert_rejects(client.post(url, json={"outcome": "needs_help"}, headers=tokens.dispatcher), "kind")
    assert_rejects(client.post(url, json={"outcome": "fine"}, headers=tokens.dispatcher), "outcome")
    response = client.post(
        url,
        json={"outcome": "needs_help", "kind": "heating_repair", "note": "Radiator cold"},
        headers=tokens.dispatcher,
    )

    assert response.status_code == 200, response.get_json()
    done = response.get_json()
    assert (done["outcome"], done["kind"]) == ("needs_help", "heating_repair")
    help_need = client.get(f"/api/v1/needs/{done['help_need_id']}", headers=tokens.dispatcher).get_json()
    assert (help_need["kind"], help_need["household_id"], help_need["visit_id"]) == (
        "heating_repair",
        household["id"],
        visit["id"],
    )
    assert help_need["description"] == "Radiator cold"
    assert help_need["vulnerability"] == ["elderly_alone"], "a real need: the household's people as they are"
    again = client.post(url, json={"outcome": "all_well"}, headers=tokens.dispatcher)
    assert again.status_code == 409, "recorded once"


def test_only_the_visiting_volunteer_or_a_dispatcher_records_an_outcome(
    client, tokens, make_household, make_volunteer, due_visit
) -> None:
    household = make_household()
    stranger = make_volunteer(location=north(30.0), on_duty=True)
    visit = due_visit(household)
    url = f"/api/v1/visits/{visit['id']}/outcome"

    assert client.post(url, json={"outcome": "all_well"}, headers=tokens.volunteer(stranger["id"])).status_code == 403
    assert client.post(url, json={"outcome": "all_well"}, headers=tokens.ops).status_code == 403
    assert client.post(url, json={"outcome": "all_well"}, headers=tokens.intake).status_code == 403
    assert (
        client.post(
            "/api/v1/visits/vis_nobody/outcome", json={"outcome": "all_well"}, headers=tokens.dispatcher
        ).status_code
        == 404
    )


def test_a_planned_visit_takes_no_outcome_yet(client, tokens, make_household) -> None:
    household = make_household()
    [planned] = client.get(f"/api/v1/households/{household['id']}/visits", headers=tokens.dispatcher).get_json()[
        "items"
    ]

    response = client.post(
        f"/api/v1/visits/{planned['id']}/outcome", json={"outcome": "all_well"}, headers=tokens.dispatcher
    )

    assert response.status_code == 409
    assert response.get_json()["errors"] == {"status": ["current status is planned"]}


def test_visits_due_and_overdue_are_listed_and_overdue_ones_are_counted(
    client, tokens, deps, clock, make_household, due_visit
) -> None:
    first = due_visit(make_household())
    second = due_visit(make_household(grid="grid-1"))

    def listed(status: str | None = None, headers: dict[str, str] | None = None) -> list[str]:
        query = {"status": status} if status else {}
        response = client.get("/api/v1/visits", query_string=query, headers=headers or tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return [v["id"] for v in response.get_json()["items"]]

    assert sorted(listed()) == sorted([first["id"], second["id"]]), "due by default"
    assert sorted(listed("due", tokens.ops)) == sorted([first["id"], second["id"]])
    assert listed("overdue") == []
    clock.set(max(clocks.parse(first["period_end"]), clocks.parse(second["period_end"])) + timedelta(seconds=1))
    visits.sweep_visits(deps=deps)
    assert sorted(listed("overdue")) == sorted([first["id"], second["id"]])
    assert client.get("/api/v1/visits", query_string={"status": "late"}, headers=tokens.dispatcher).status_code == 422
    assert client.get("/api/v1/visits", headers=tokens.intake).status_code == 403

    text = client.get("/metrics").get_data(as_text=True)
    assert 'aidline_visits_total{event="overdue"} 2.0' in text
    assert 'aidline_visits_by_status{status="overdue"} 2.0' in text
    assert 'aidline_visits_total{event="planned"}' in text


def test_an_overdue_visit_still_takes_its_outcome(client, tokens, deps, clock, make_household, due_visit) -> None:
    visit = due_visit(make_household())
    clock.set(clocks.parse(visit["period_end"]) + timedelta(seconds=1))
    visits.sweep_visits(deps=deps)

    response = client.post(
        f"/api/v1/visits/{visit['id']}/outcome", json={"outcome": "all_well"}, headers=tokens.dispatcher
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "done"
