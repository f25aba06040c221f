"""Acknowledging an escalation: POST /api/v1/needs/{id}/ack, and the ladder's steps in /metrics."""

from __future__ import annotations

from typing import Any

import pytest

MATCH_QUEUES = ("urgent", "default", "low")


@pytest.fixture
def captain(make_captain: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return make_captain("grid-2", name="Wang Captain", phone="+8613800000071")


@pytest.fixture
def escalated(make_need: Any, work: Any) -> dict[str, Any]:
    """A need of grid-2 nobody can take, escalated by the matcher."""
    need = make_need(grid="grid-2", kind="heating_repair")
    work(queues=MATCH_QUEUES)
    return need


def ack(client: Any, need_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/needs/{need_id}/ack", headers=headers)


def test_a_captain_of_the_grid_acknowledges_and_the_ladder_stops(
    client: Any, tokens: Any, captain: Any, escalated: dict[str, Any]
) -> None:
    volunteer, headers = captain

    response = ack(client, escalated["id"], headers)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["need_id"] == escalated["id"]
    assert body["acknowledged_by"] == f"captain:{volunteer['id']}"
    assert body["tier"] == "dispatchers"  # nobody was on call: the dispatchers were told first
    assert body["first"] is True
    events = client.get(f"/api/v1/needs/{escalated['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    assert events[-1]["type"] == "escalation_acknowledged"
    assert client.get(f"/api/v1/needs/{escalated['id']}", headers=tokens.dispatcher).get_json()["status"] == (
        "escalated"
    )


def test_acknowledging_twice_answers_the_first_acknowledgement(
    client: Any, tokens: Any, captain: Any, escalated: dict[str, Any]
) -> None:
    first = ack(client, escalated["id"], captain[1]).get_json()

    again = ack(client, escalated["id"], tokens.dispatcher)

    assert again.status_code == 200
    assert again.get_json() == {**first, "first": False}


def test_nothing_to_acknowledge_is_a_409(client: Any, tokens: Any, make_need: Any) -> None:
    need = make_need(grid="grid-2")  # queued, never escalated

    response = ack(client, need["id"], tokens.dispatcher)

    assert response.status_code == 409
    assert "nothing to acknowledge" in response.get_json()["message"]


def test_a_captain_of_another_grid_or_another_role_may_not_acknowledge(
    client: Any, tokens: Any, make_captain: Any, escalated: dict[str, Any], make_volunteer: Any
) -> None:
    _, elsewhere = make_captain("grid-3", phone="+8613800000073")
    volunteer = make_volunteer()

    assert ack(client, escalated["id"], elsewhere).status_code == 403
    assert ack(client, escalated["id"], tokens.intake).status_code == 403
    assert ack(client, escalated["id"], tokens.ops).status_code == 403
    assert ack(client, escalated["id"], tokens.volunteer(volunteer["id"])).status_code == 403


def test_an_unknown_need_is_a_404(client: Any, tokens: Any) -> None:
    assert ack(client, "need_nope", tokens.dispatcher).status_code == 404


def test_the_ladders_steps_and_acknowledgements_are_counted_in_metrics(
    client: Any, tokens: Any, captain: Any, escalated: dict[str, Any]
) -> None:
    ack(client, escalated["id"], captain[1])

    text = client.get("/metrics").get_data(as_text=True)

    assert 'aidline_escalation_steps_total{outcome="skipped",tier="captain"} 1.0' in text
    assert 'aidline_escalation_steps_total{outcome="notified",tier="dispatchers"} 1.0' in text
    assert 'aidline_escalation_acks_total{tier="dispatchers"} 1.0' in text
