"""The captain role: a volunteer (answers its own offers, changes its own record) who also sees and handles
the needs, households and visits of its grids, and no others."""

from __future__ import annotations

from typing import Any

import pytest

from service import clock as clocks
from service import visits
from tests.conftest import HOUSEHOLD, NEED


@pytest.fixture
def captain(make_captain: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return make_captain("grid-2", "grid-4", name="Wang Captain", phone="+8613800000071", on_duty=True)


@pytest.fixture
def needs(make_need: Any) -> dict[str, dict[str, Any]]:
    """A need in grid-2 (the captain's), one in grid-3 (not), one without a grid."""
    return {
        "mine": make_need(grid="grid-2"),
        "other": make_need(grid="grid-3"),
        "none": make_need(grid=None),
    }


def test_a_captain_lists_only_the_needs_of_their_grids(client: Any, captain: Any, needs: Any) -> None:
    response = client.get("/api/v1/needs", headers=captain[1])

    assert response.status_code == 200
    assert [n["id"] for n in response.get_json()["items"]] == [needs["mine"]["id"]]


def test_a_captain_reads_a_need_of_their_grid_with_its_private_details(client: Any, captain: Any, needs: Any) -> None:
    mine = client.get(f"/api/v1/needs/{needs['mine']['id']}", headers=captain[1])
    other = client.get(f"/api/v1/needs/{needs['other']['id']}", headers=captain[1])
    events = client.get(f"/api/v1/needs/{needs['mine']['id']}/events", headers=captain[1])

    assert mine.status_code == 200
    assert mine.get_json()["requester"]["phone"] == NEED["requester"]["phone"]
    assert mine.get_json()["address"] == NEED["address"]
    assert events.status_code == 200
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("defer", {"reason": "after the frost"}),
        ("cancel", {"reason": "solved by the family"}),
        ("rematch", None),
    ],
)
def test_a_captain_acts_on_the_needs_of_their_grid_only(
    client: Any, captain: Any, needs: Any, action: str, body: dict[str, str] | None
) -> None:
    mine = client.post(f"/api/v1/needs/{needs['mine']['id']}/{action}", json=body, headers=captain[1])
    other = client.post(f"/api/v1/needs/{needs['other']['id']}/{action}", json=body, headers=captain[1])
    gridless = client.post(f"/api/v1/needs/{needs['none']['id']}/{action}", json=body, headers=captain[1])

    assert mine.status_code == 200, mine.get_json()
    assert other.status_code == 403
    assert gridless.status_code == 403


def test_a_captain_reopens_and_assigns_in_their_grid(
    client: Any, captain: Any, needs: Any, make_volunteer: Any
) -> None:
    helper = make_volunteer(name="Sun Wei", phone="+8613800000002", on_duty=True)
    need_id = needs["mine"]["id"]
    client.post(f"/api/v1/needs/{need_id}/defer", json={"reason": "wait"}, headers=captain[1])

    reopened = client.post(f"/api/v1/needs/{need_id}/reopen", json={}, headers=captain[1])
    assigned = client.post(f"/api/v1/needs/{need_id}/assign", json={"volunteer_id": helper["id"]}, headers=captain[1])
    elsewhere = client.post(
        f"/api/v1/needs/{needs['other']['id']}/assign", json={"volunteer_id": helper["id"]}, headers=captain[1]
    )

    assert reopened.status_code == 200, reopened.get_json()
    assert assigned.status_code == 200, assigned.get_json()
    assert assigned.get_json()["status"] == "assigned"
    assert elsewhere.status_code == 403


def test_a_captain_is_a_volunteer_for_their_own_record_and_offers(
    client: Any, captain: Any, make_volunteer: Any
) -> None:
    volunteer, headers = captain
    other = make_volunteer(name="Sun Wei", phone="+8613800000002")

    assert client.get(f"/api/v1/volunteers/{volunteer['id']}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/volunteers/{volunteer['id']}/offers", headers=headers).status_code == 200
    assert (
        client.put(f"/api/v1/volunteers/{volunteer['id']}/availability", json={"on_duty": False}, headers=headers)
    ).status_code == 200
    assert client.get(f"/api/v1/volunteers/{other['id']}", headers=headers).status_code == 403
    assert (
        client.put(
            f"/api/v1/volunteers/{other['id']}/availability", json={"on_duty": False}, headers=headers
        ).status_code
        == 403
    )


def test_a_captain_answers_their_own_offer_and_reports_progress(
    client: Any, captain: Any, make_need: Any, work: Any
) -> None:
    volunteer, headers = captain
    need = make_need(grid="grid-9")  # another grid: the captain takes it as a volunteer
    work()
    offers = client.get(f"/api/v1/volunteers/{volunteer['id']}/offers", headers=headers).get_json()["items"]

    accepted = client.post(f"/api/v1/offers/{offers[0]['id']}/accept", headers=headers)
    progress = client.post(f"/api/v1/needs/{need['id']}/progress", json={"status": "en_route"}, headers=headers)

    assert accepted.status_code == 200, accepted.get_json()
    assert progress.status_code == 200, progress.get_json()
    assert client.get(f"/api/v1/needs/{need['id']}", headers=headers).get_json()["status"] == "en_route"


def test_a_captain_may_not_do_what_only_dispatchers_do(client: Any, captain: Any, needs: Any) -> None:
    headers = captain[1]

    assert client.post("/api/v1/needs", json=NEED, headers=headers).status_code == 403
    assert client.get("/api/v1/volunteers", headers=headers).status_code == 403
    assert client.post("/api/v1/incidents", json={}, headers=headers).status_code == 403
    assert client.get(f"/api/v1/needs/{needs['mine']['id']}/notifications", headers=headers).status_code == 403


# ---- the care register: households and visits of their grids ---------------------------------------------

HOUSEHOLDS = "/api/v1/households"


@pytest.fixture
def households(make_household: Any) -> dict[str, dict[str, Any]]:
    """A household in grid-2 and one in grid-4 (the captain's), one in grid-3 (not)."""
    return {
        "mine": make_household(grid="grid-2"),
        "also_mine": make_household(grid="grid-4", attention_level="green"),
        "other": make_household(grid="grid-3"),
    }


def due(client: Any, tokens: Any, deps: Any, clock: Any, household: dict[str, Any]) -> dict[str, Any]:
    """Let the household's planned visit fall due (the sweep records its need); the visit as the API shows it."""
    url = f"{HOUSEHOLDS}/{household['id']}/visits"
    [planned] = client.get(url, headers=tokens.dispatcher).get_json()["items"]
    clock.set(max(clock.now(), clocks.parse(planned["due_at"])))
    visits.sweep_visits(deps=deps)
    [visit] = [v for v in client.get(url, headers=tokens.dispatcher).get_json()["items"] if v["status"] == "due"]
    return visit


def test_a_captain_lists_only_the_households_of_their_grids(client: Any, captain: Any, households: Any) -> None:
    def ids(**query: Any) -> list[str]:
        response = client.get(HOUSEHOLDS, query_string=query, headers=captain[1])
        assert response.status_code == 200, response.get_json()
        return [h["id"] for h in response.get_json()["items"]]

    assert ids() == [households["also_mine"]["id"], households["mine"]["id"]]
    assert ids(grid="grid-2") == [households["mine"]["id"]]
    assert ids(grid="grid-3") == []
    assert ids(attention_level="red") == [households["mine"]["id"]]


def test_a_captain_of_one_grid_pages_through_its_households(
    client: Any, make_captain: Any, make_household: Any
) -> None:
    _, headers = make_captain("grid-3", phone="+8613800000072")
    theirs = [make_household(grid="grid-3") for _ in range(3)]
    make_household(grid="grid-2")

    first = client.get(HOUSEHOLDS, query_string={"limit": 2}, headers=headers).get_json()
    rest = client.get(HOUSEHOLDS, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)

    listed = [h["id"] for h in first["items"] + rest.get_json()["items"]]
    assert listed == [h["id"] for h in reversed(theirs)]


def test_a_captain_reads_a_household_of_their_grid_with_its_private_details(
    client: Any, captain: Any, households: Any
) -> None:
    mine = client.get(f"{HOUSEHOLDS}/{households['mine']['id']}", headers=captain[1])
    other = client.get(f"{HOUSEHOLDS}/{households['other']['id']}", headers=captain[1])

    assert mine.status_code == 200
    assert mine.get_json() == households["mine"], "the contact's phone, the exact place and the notes"
    assert mine.get_json()["contact"]["phone"] is not None
    assert other.status_code == 404
    assert client.get(f"{HOUSEHOLDS}/{households['mine']['id']}/visits", headers=captain[1]).status_code == 200
    assert client.get(f"{HOUSEHOLDS}/{households['other']['id']}/visits", headers=captain[1]).status_code == 404


def test_a_captain_registers_households_in_their_grids_only(client: Any, captain: Any) -> None:
    body = {**HOUSEHOLD, "contact": {"name": "Liu", "phone": "+8613700000071"}}

    mine = client.post(HOUSEHOLDS, json={**body, "grid": "grid-4"}, headers=captain[1])
    other = client.post(
        HOUSEHOLDS,
        json={**body, "grid": "grid-3", "contact": {"name": "Liu", "phone": "+8613700000072"}},
        headers=captain[1],
    )
    gridless = client.post(
        HOUSEHOLDS,
        json={k: v for k, v in body.items() if k != "grid"} | {"contact": {"name": "Liu", "phone": "+8613700000073"}},
        headers=captain[1],
    )

    assert mine.status_code == 201, mine.get_json()
    assert mine.get_json()["grid"] == "grid-4"
    assert other.status_code == 403
    assert "grid-3" in other.get_json()["message"] and "grid-2, grid-4" in other.get_json()["message"]
    assert gridless.status_code == 403
    assert "(none)" in gridless.get_json()["message"]


def test_a_captain_changes_households_of_their_grid_and_moves_them_only_among_their_grids(
    client: Any, tokens: Any, captain: Any, households: Any
) -> None:
    url = f"{HOUSEHOLDS}/{households['mine']['id']}"

    changed = client.patch(
        url, json={"attention_level": "orange", "notes": "Daughter visits Sundays"}, headers=captain[1]
    )
    moved_away = client.patch(url, json={"grid": "grid-3"}, headers=captain[1])
    moved_within = client.patch(url, json={"grid": "grid-4"}, headers=captain[1])
    other = client.patch(f"{HOUSEHOLDS}/{households['other']['id']}", json={"notes": "x"}, headers=captain[1])

    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["attention_level"], changed.get_json()["notes"]) == ("orange", "Daughter visits Sundays")
    assert moved_away.status_code == 403
    assert "grid-3" in moved_away.get_json()["message"]
    assert moved_within.status_code == 200
    assert client.get(url, headers=tokens.dispatcher).get_json()["grid"] == "grid-4"
    assert other.status_code == 403
    assert (
        client.get(f"{HOUSEHOLDS}/{households['other']['id']}", headers=tokens.dispatcher).get_json()["notes"]
        == (households["other"]["notes"])
    )


def test_a_captain_removes_households_of_their_grids_only(
    client: Any, tokens: Any, captain: Any, households: Any
) -> None:
    other = client.delete(f"{HOUSEHOLDS}/{households['other']['id']}", headers=captain[1])
    mine = client.delete(f"{HOUSEHOLDS}/{households['mine']['id']}", headers=captain[1])

    assert other.status_code == 403
    assert client.get(f"{HOUSEHOLDS}/{households['other']['id']}", headers=tokens.dispatcher).status_code == 200
    assert mine.status_code == 204
    assert client.get(f"{HOUSEHOLDS}/{households['mine']['id']}", headers=tokens.dispatcher).status_code == 404
    assert client.delete(f"{HOUSEHOLDS}/hh_nobody", headers=captain[1]).status_code == 404


def test_a_captain_lists_the_visits_of_their_grids_and_records_their_outcomes(
    client: Any, tokens: Any, deps: Any, clock: Any, captain: Any, make_household: Any
) -> None:
    # every household weekly (red): each visit falls due within the week, and none is past its period when the
    # last falls due, whatever day and hour the household's id gives it
    households = {
        "mine": make_household(grid="grid-2"),
        "also_mine": make_household(grid="grid-4"),
        "other": make_household(grid="grid-3"),
    }
    mine, also_mine, other = (due(client, tokens, deps, clock, households[h]) for h in ("mine", "also_mine", "other"))

    listed = client.get("/api/v1/visits", headers=captain[1])
    elsewhere = client.post(f"/api/v1/visits/{other['id']}/outcome", json={"outcome": "all_well"}, headers=captain[1])
    recorded = client.post(
        f"/api/v1/visits/{mine['id']}/outcome",
        json={"outcome": "needs_help", "kind": "heating_repair", "note": "The stove smokes"},
        headers=captain[1],
    )

    assert listed.status_code == 200
    assert sorted(v["id"] for v in listed.get_json()["items"]) == sorted([mine["id"], also_mine["id"]])
    assert elsewhere.status_code == 403
    assert recorded.status_code == 200, recorded.get_json()
    assert (recorded.get_json()["status"], recorded.get_json()["outcome"]) == ("done", "needs_help")
    help_need = client.get(f"/api/v1/needs/{recorded.get_json()['help_need_id']}", headers=tokens.dispatcher)
    assert help_need.status_code == 200
    assert (help_need.get_json()["household_id"], help_need.get_json()["visit_id"]) == (
        households["mine"]["id"],
        mine["id"],
    )
    events = client.get(f"/api/v1/needs/{mine['need_id']}/events", headers=captain[1]).get_json()["items"]
    assert any(e["type"] == "visit_outcome" and e["actor"].startswith("captain:") for e in events)


def test_a_captain_who_made_a_visit_elsewhere_records_its_outcome_as_its_visitor(
    client: Any, tokens: Any, deps: Any, clock: Any, work: Any, captain: Any, make_household: Any
) -> None:
    volunteer, headers = captain
    household = make_household(grid="grid-9", location=volunteer["location"])
    visit = due(client, tokens, deps, clock, household)
    work()
    offers = client.get(f"/api/v1/volunteers/{volunteer['id']}/offers", headers=headers).get_json()["items"]
    [offer] = [o for o in offers if o["need_id"] == visit["need_id"]]
    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=headers).status_code == 200

    recorded = client.post(f"/api/v1/visits/{visit['id']}/outcome", json={"outcome": "all_well"}, headers=headers)

    assert recorded.status_code == 200, recorded.get_json()
    assert (recorded.get_json()["status"], recorded.get_json()["visitor_id"]) == ("done", volunteer["id"])
    assert client.get(f"/api/v1/needs/{visit['need_id']}", headers=tokens.dispatcher).get_json()["status"] == "done"
    assert client.get(f"{HOUSEHOLDS}/{household['id']}", headers=headers).status_code == 404, "not their grid's"
