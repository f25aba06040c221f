"""The captain role: a volunteer (answers its own offers, changes its own record) who also sees and handles
the needs of its grids, and no others."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NEED


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
