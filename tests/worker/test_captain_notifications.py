"""The escalation ladder's messages, delivered to a real HTTP receiver: the on-call captain first (with the code
to reply ACK with), then the grid's dispatchers, then a district lead; an SMS 'ACK <code>' stops the climb."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from service import captains
from service.deps import Deps
from tests.worker.conftest import INBOUND_SECRET, Api, Receiver

CAPTAIN_PHONE = "+8613800000071"
URL = "/api/v1/inbound/sms"
SECRET = {"X-Aidline-Secret": INBOUND_SECRET}


@pytest.fixture
def notify_env(notify_env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    """grid-2 climbs to a district lead, told at /lead, after its dispatchers (/grid-2)."""
    ladder = {
        "grid-2": [
            {"tier": "captain"},
            {"tier": "dispatchers"},
            {"tier": "district_lead", "channels": [receiver.url("/lead")]},
        ]
    }
    return {**notify_env, "AIDLINE_ESCALATION_LADDER": json.dumps(ladder)}


@pytest.fixture
def captain(make_captain: Any, receiver: Receiver, client: Any, tokens: Any, clock: Any) -> dict[str, Any]:
    """A captain of grid-2, told at /captain, on call from an hour ago to a day from now."""
    return on_call(make_captain, receiver, client, tokens, clock, locale="en")


def on_call(make_captain: Any, receiver: Receiver, client: Any, tokens: Any, clock: Any, locale: str) -> dict[str, Any]:
    volunteer, _ = make_captain(
        "grid-2", name="Wang Captain", phone=CAPTAIN_PHONE, channels=[receiver.url("/captain")], locale=locale
    )
    window = [clock.now() - timedelta(hours=1), clock.now() + timedelta(days=1)]
    body = {
        "overrides": [
            {
                "from": window[0].strftime("%Y-%m-%dT%H:%M"),
                "to": window[1].strftime("%Y-%m-%dT%H:%M"),
                "volunteer_id": volunteer["id"],
            }
        ]
    }
    assert client.put("/api/v1/grids/grid-2/rota", json=body, headers=tokens.dispatcher).status_code == 200
    return volunteer


@pytest.fixture
def escalated(make_need: Any, work: Any, api: Api) -> dict[str, Any]:
    need = make_need(grid="grid-2", kind="heating_repair")
    work()
    assert api.need(need["id"])["status"] == "escalated"
    return need


def code_of(deps: Deps, need_id: str) -> str:
    return captains.ack_code(deps=deps, need_id=need_id)


def test_the_on_call_captain_hears_first_with_the_code_to_acknowledge(
    deps: Deps, captain: dict[str, Any], escalated: dict[str, Any], receiver: Receiver
) -> None:
    [message] = receiver.messages("/captain")

    assert f"Reply ACK {code_of(deps, escalated['id'])} to take it" in message
    assert "heating repair" in message
    assert receiver.messages("/grid-2") == []
    assert receiver.messages("/dispatch") == []


def test_a_chinese_captain_hears_why_in_chinese_skills_and_radius_by_their_names(
    make_captain: Any, receiver: Receiver, client: Any, tokens: Any, clock: Any, make_need: Any, work: Any, api: Api
) -> None:
    on_call(make_captain, receiver, client, tokens, clock, locale="zh")
    need = make_need(grid="grid-2", kind="heating_repair", skills=["heating", "driving"], radius_km=12.5)
    work()
    assert api.need(need["id"])["status_reason"] == "no available volunteer with driving, heating within 12.5 km"

    [message] = receiver.messages("/captain")

    assert "暖气维修（高），12.5公里内没有空闲的驾驶、供暖志愿者。" in message
    assert "volunteer" not in message and "km" not in message


def test_unacknowledged_it_climbs_to_the_grids_dispatchers_then_the_district_lead(
    deps: Deps, clock: Any, captain: dict[str, Any], escalated: dict[str, Any], receiver: Receiver, work: Any
) -> None:
    clock.advance(601)
    captains.advance_due_ladders(deps=deps)
    work()
    assert len(receiver.messages("/grid-2")) == 1
    assert receiver.messages("/lead") == []

    clock.advance(601)
    captains.advance_due_ladders(deps=deps)
    work()
    [lead] = receiver.messages("/lead")
    assert "升级至district_lead" in lead and "仍无人确认" in lead
    assert len(receiver.messages("/captain")) == 1


def test_an_sms_ack_from_the_captains_phone_stops_the_climb(
    deps: Deps,
    clock: Any,
    client: Any,
    captain: dict[str, Any],
    escalated: dict[str, Any],
    receiver: Receiver,
    work: Any,
    api: Api,
) -> None:
    code = code_of(deps, escalated["id"])

    response = client.post(URL, json={"from": CAPTAIN_PHONE, "body": f"ACK {code}"}, headers=SECRET)
    clock.advance(3600)
    captains.advance_due_ladders(deps=deps)
    work()

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"result": "acknowledged", "need_id": escalated["id"]}
    acknowledged = [e for e in api.events(escalated["id"]) if e["type"] == "escalation_acknowledged"]
    assert [e["actor"] for e in acknowledged] == [f"captain:{captain['id']} (sms)"]
    assert receiver.messages("/grid-2") == []
    assert receiver.messages("/lead") == []


@pytest.mark.parametrize("word", ["ack", "确认", "收到"])
def test_the_ways_of_acknowledging_by_sms(
    deps: Deps, client: Any, captain: dict[str, Any], escalated: dict[str, Any], word: str
) -> None:
    response = client.post(
        URL, json={"from": CAPTAIN_PHONE, "body": f"{word} {code_of(deps, escalated['id'])}"}, headers=SECRET
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "acknowledged"


def test_an_ack_from_another_phone_or_with_a_wrong_code_is_not_found(
    deps: Deps, client: Any, captain: dict[str, Any], escalated: dict[str, Any]
) -> None:
    code = code_of(deps, escalated["id"])
    wrong = "000000" if code != "000000" else "111111"

    other_phone = client.post(URL, json={"from": "+8613800000099", "body": f"ACK {code}"}, headers=SECRET)
    wrong_code = client.post(URL, json={"from": CAPTAIN_PHONE, "body": f"ACK {wrong}"}, headers=SECRET)

    assert other_phone.status_code == 404
    assert wrong_code.status_code == 404
    assert deps.store.captains.ladder(escalated["id"])["status"] == "running"
