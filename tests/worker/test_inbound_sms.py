"""Answering an offer by SMS: the gateway posts 'YES 4821' or 'NO 4821' from the volunteer's phone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service import create_app
from service.config import Settings
from service.deps import Deps
from tests.worker.conftest import INBOUND_SECRET, Api, Receiver

URL = "/api/v1/inbound/sms"
SECRET = {"X-Aidline-Secret": INBOUND_SECRET}
NEAR_PHONE, FAR_PHONE = "+8613800000011", "+8613800000022"


@pytest.fixture
def near(volunteer: Any) -> dict[str, Any]:
    """The volunteer a few hundred metres from the standard need: offered first."""
    return volunteer("/near", name="Mei Chen", phone=NEAR_PHONE, location={"lat": 46.341, "lon": 132.251})


@pytest.fixture
def far(volunteer: Any) -> dict[str, Any]:
    """A second volunteer about 4 km away: offered when the first says no."""
    return volunteer("/far", name="Wei Zhao", phone=FAR_PHONE, location={"lat": 46.36, "lon": 132.30})


@pytest.fixture
def offered(near: dict[str, Any], far: dict[str, Any], make_need: Any, work: Any, api: Api) -> dict[str, Any]:
    """A need offered to the near volunteer; returns that offer."""
    make_need()
    work()
    return api.pending_offer(near["id"])


def sms(client: Any, text: str, sender: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(URL, json={"from": sender, "body": text}, headers=SECRET if headers is None else headers)


def test_yes_with_the_code_from_the_volunteers_phone_accepts_the_offer(
    client: Any, offered: dict[str, Any], work: Any, api: Api, receiver: Receiver
) -> None:
    response = sms(client, f"YES {offered['code']}", NEAR_PHONE)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"result": "accepted", "offer_id": offered["id"], "need_id": offered["need_id"]}
    need = api.need(offered["need_id"])
    assert need["status"] == "assigned"
    assert [(a["volunteer_id"], a["status"]) for a in need["assignments"]] == [(offered["volunteer_id"], "accepted")]
    accepted = [e for e in api.events(offered["need_id"]) if e["type"] == "accepted"]
    assert [e["actor"] for e in accepted] == [f"volunteer:{offered['volunteer_id']} (sms)"]
    work()
    assert "志愿者Mei已接单" in receiver.messages("/sms")[-1]


def test_no_with_the_code_declines_and_the_next_volunteer_is_offered(
    client: Any, offered: dict[str, Any], far: dict[str, Any], work: Any, api: Api, receiver: Receiver
) -> None:
    assert receiver.delivered("/far") == []

    response = sms(client, f"NO {offered['code']}", NEAR_PHONE)
    work()

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "declined"
    declined = [o for o in api.offers(offered["volunteer_id"]) if o["id"] == offered["id"]]
    assert [(o["status"], o["reason"]) for o in declined] == [("declined", "declined by SMS")]
    next_offer = api.pending_offer(far["id"])
    [message] = receiver.messages("/far")
    assert f"YES {next_offer['code']}" in message
    assert api.need(offered["need_id"])["status"] == "offered"


@pytest.mark.parametrize("text", ["yes {code}", "Y#{code}", " ok:{code} ", "接受 {code}", "是{code}", "ACCEPT {code}"])
def test_the_ways_of_saying_yes(client: Any, offered: dict[str, Any], text: str) -> None:
    response = sms(client, text.format(code=offered["code"]), NEAR_PHONE)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "accepted"


@pytest.mark.parametrize("text", ["no {code}", "N {code}", "拒绝 {code}", "DECLINE #{code}"])
def test_the_ways_of_saying_no(client: Any, offered: dict[str, Any], text: str) -> None:
    response = sms(client, text.format(code=offered["code"]), NEAR_PHONE)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "declined"


def test_a_gateways_form_post_with_from_and_body_works(client: Any, offered: dict[str, Any], api: Api) -> None:
    form = {"From": NEAR_PHONE, "Body": f"YES {offered['code']}", "To": "+8610655", "MessageSid": "SM123"}

    response = client.post(URL, data=form, headers=SECRET)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "accepted"
    assert api.need(offered["need_id"])["status"] == "assigned"


def test_the_secret_may_come_as_a_query_parameter(client: Any, offered: dict[str, Any]) -> None:
    response = client.post(
        f"{URL}?secret={INBOUND_SECRET}", json={"from": NEAR_PHONE, "body": f"YES {offered['code']}"}
    )

    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("headers", [{"X-Aidline-Secret": "wrong"}, {}], ids=["wrong", "missing"])
def test_a_wrong_or_missing_secret_is_forbidden_and_changes_nothing(
    client: Any, offered: dict[str, Any], api: Api, headers: dict[str, str]
) -> None:
    response = sms(client, f"YES {offered['code']}", NEAR_PHONE, headers=headers)

    assert response.status_code == 403, response.get_json()
    assert api.need(offered["need_id"])["status"] == "offered"


def test_inbound_sms_is_forbidden_when_no_secret_is_configured(
    settings: Settings, deps: Deps, offered: dict[str, Any]
) -> None:
    unconfigured = dataclasses.replace(settings, inbound_sms_secret="")
    app = create_app(
        {"TESTING": True, "SETTINGS": unconfigured, "DEPS": dataclasses.replace(deps, settings=unconfigured)}
    )

    response = sms(app.test_client(), f"YES {offered['code']}", NEAR_PHONE, headers={"X-Aidline-Secret": ""})

    assert response.status_code == 403, response.get_json()


def test_a_code_sent_from_another_phone_is_not_found(client: Any, offered: dict[str, Any], api: Api) -> None:
    response = sms(client, f"YES {offered['code']}", FAR_PHONE)

    assert response.status_code == 404, response.get_json()
    assert api.need(offered["need_id"])["status"] == "offered"


def test_an_unknown_code_is_not_found(client: Any, offered: dict[str, Any]) -> None:
    unknown = "9999" if offered["code"] != "9999" else "8888"

    response = sms(client, f"YES {unknown}", NEAR_PHONE)

    assert response.status_code == 404, response.get_json()


@pytest.mark.parametrize("text", ["hello", "YES", "YES please", "MAYBE 4821", "YES 12", "YES 123456789"])
def test_text_that_is_not_yes_or_no_with_a_code_is_rejected(client: Any, offered: dict[str, Any], text: str) -> None:
    response = sms(client, text, NEAR_PHONE)

    assert response.status_code == 422, response.get_json()


@pytest.mark.parametrize("body", [{"from": NEAR_PHONE}, {"body": "YES 4821"}], ids=["no-text", "no-sender"])
def test_a_post_missing_the_sender_or_the_text_is_rejected(client: Any, body: dict[str, str]) -> None:
    response = client.post(URL, json=body, headers=SECRET)

    assert response.status_code == 422, response.get_json()


def test_answering_an_offer_already_accepted_is_a_conflict(client: Any, offered: dict[str, Any]) -> None:
    assert sms(client, f"YES {offered['code']}", NEAR_PHONE).status_code == 200

    response = sms(client, f"NO {offered['code']}", NEAR_PHONE)

    assert response.status_code == 409, response.get_json()
