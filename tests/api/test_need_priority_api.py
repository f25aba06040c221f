"""POST /needs/{id}/priority, and the grid filter of GET /volunteers."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tokens


def test_a_dispatcher_changes_the_priority(client: Any, tokens: Tokens, make_need: Any) -> None:
    need = make_need(priority="low")

    response = client.post(f"/api/v1/needs/{need['id']}/priority", json={"priority": "high"}, headers=tokens.dispatcher)

    assert response.status_code == 200
    assert response.get_json()["priority"] == "high"
    events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    assert events[-1]["type"] == "priority_changed"


def test_priority_refusals(client: Any, tokens: Tokens, make_need: Any) -> None:
    need = make_need()
    path = f"/api/v1/needs/{need['id']}/priority"

    assert client.post(path, json={"priority": "urgent"}, headers=tokens.dispatcher).status_code == 422
    assert client.post(path, json={"priority": "low"}, headers=tokens.intake).status_code == 403
    assert (
        client.post("/api/v1/needs/need_nope/priority", json={"priority": "low"}, headers=tokens.dispatcher).status_code
        == 404
    )
    client.post(f"/api/v1/needs/{need['id']}/cancel", json={"reason": "dup"}, headers=tokens.dispatcher)
    refused = client.post(path, json={"priority": "low"}, headers=tokens.dispatcher)
    assert refused.status_code == 409
    assert refused.get_json()["message"] == "cannot change the priority of a cancelled need"


def test_volunteers_are_filtered_by_grid(client: Any, tokens: Tokens, make_volunteer: Any) -> None:
    one = make_volunteer(grid="grid-1")
    make_volunteer(grid="grid-2", phone="+8613800000031")

    items = client.get("/api/v1/volunteers?grid=grid-1", headers=tokens.dispatcher).get_json()["items"]

    assert [v["id"] for v in items] == [one["id"]]
