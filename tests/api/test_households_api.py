"""Households API: the care register (create, read, change, delete, lists with filters), privacy of contact
details, a need naming its household, and each household's visits."""

from __future__ import annotations

from typing import Any

from service import households
from tests.api.validation import assert_rejects

URL = "/api/v1/households"


def test_a_registered_household_reads_back_as_sent_with_its_first_visit_planned(client, tokens, make_household) -> None:
    household = make_household()

    assert household["id"].startswith("hh_")
    assert {k: household[k] for k in ("address", "location", "grid", "vulnerability", "contact", "notes")} == {
        "address": "Station 2, house 14",
        "location": {"lat": 46.34, "lon": 132.25},
        "grid": "grid-2",
        "vulnerability": ["elderly_alone"],
        "contact": {"name": "Zhang Guilan", "phone": household["contact"]["phone"]},
        "notes": "Hard of hearing: knock loudly",
    }
    assert (household["attention_level"], household["preferred_volunteers"]) == ("red", [])
    got = client.get(f"{URL}/{household['id']}", headers=tokens.dispatcher)
    assert got.status_code == 200 and got.get_json() == household
    visits = client.get(f"{URL}/{household['id']}/visits", headers=tokens.dispatcher).get_json()["items"]
    assert [(v["status"], v["need_id"]) for v in visits] == [("planned", None)]
    assert set(visits[0]) >= {"id", "need_id", "due_at", "status"}


def test_changing_one_field_of_the_contact_keeps_the_other(client, tokens, deps, make_household) -> None:
    household = make_household()

    phone = client.patch(
        f"{URL}/{household['id']}", json={"contact": {"phone": "+8613900000777"}}, headers=tokens.dispatcher
    )
    name = client.patch(f"{URL}/{household['id']}", json={"contact": {"name": "Zhang Wei"}}, headers=tokens.dispatcher)
    bad = client.patch(f"{URL}/{household['id']}", json={"contact": {"phone": "123"}}, headers=tokens.dispatcher)

    assert phone.status_code == 200, phone.get_json()
    assert phone.get_json()["contact"] == {"name": "Zhang Guilan", "phone": "+8613900000777"}
    assert name.status_code == 200, name.get_json()
    assert name.get_json()["contact"] == {"name": "Zhang Wei", "phone": "+8613900000777"}
    assert bad.status_code == 422
    assert list(bad.get_json()["errors"]["json"]["contact"]) == ["phone"]
    found = households.find_household_by_phone(deps=deps, phone="+8613900000777")
    assert found is not None and found.id == household["id"], "the register finds it by the new phone"


def test_ops_reads_households_without_phone_exact_place_or_notes(client, tokens, make_household) -> None:
    household = make_household(location={"lat": 46.34123, "lon": 132.25678})

    seen = client.get(f"{URL}/{household['id']}", headers=tokens.ops).get_json()

    assert seen["contact"] == {"name": "Zhang Guilan", "phone": None}
    assert (seen["address"], seen["notes"]) == (None, None)
    assert seen["location"] == {"lat": 46.34, "lon": 132.26}, "rounded to about 1 km"
    listed = client.get(URL, headers=tokens.ops).get_json()["items"]
    assert [h["contact"]["phone"] for h in listed] == [None]


def test_only_dispatchers_change_the_register_and_volunteers_and_intake_do_not_read_it(
    client, tokens, make_household, make_volunteer
) -> None:
    household = make_household()
    volunteer = make_volunteer()
    for headers in (tokens.intake, tokens.volunteer(volunteer["id"])):
        assert client.get(URL, headers=headers).status_code == 403
        assert client.get(f"{URL}/{household['id']}", headers=headers).status_code == 403
    assert client.patch(f"{URL}/{household['id']}", json={"notes": "x"}, headers=tokens.ops).status_code == 403
    assert client.delete(f"{URL}/{household['id']}", headers=tokens.ops).status_code == 403


def test_lists_filter_by_grid_level_and_nearness_and_page(client, tokens, make_household) -> None:
    red = make_household(grid="grid-1")
    green = make_household(attention_level="green", location={"lat": 46.50, "lon": 132.25})
    yellow = make_household(attention_level="yellow", grid="grid-1", location={"lat": 46.341, "lon": 132.25})

    def ids(**query: Any) -> list[str]:
        response = client.get(URL, query_string=query, headers=tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return [h["id"] for h in response.get_json()["items"]]

    assert ids() == [yellow["id"], green["id"], red["id"]], "newest first"
    assert ids(grid="grid-1") == [yellow["id"], red["id"]]
    assert ids(attention_level="green") == [green["id"]]
    assert ids(grid="grid-1", attention_level="red") == [red["id"]]
    assert ids(near="46.34,132.25", radius_km=1) == [yellow["id"], red["id"]]
    first = client.get(URL, query_string={"limit": 2}, headers=tokens.dispatcher).get_json()
    assert [h["id"] for h in first["items"]] == [yellow["id"], green["id"]]
    rest = client.get(URL, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=tokens.dispatcher)
    assert [h["id"] for h in rest.get_json()["items"]] == [red["id"]]


def test_changing_fields_changes_only_those(client, tokens, make_household) -> None:
    household = make_household()

    response = client.patch(
        f"{URL}/{household['id']}",
        json={"notes": "Moved to the ground floor", "grid": "grid-3", "vulnerability": ["disabled", "medical"]},
        headers=tokens.dispatcher,
    )

    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert (changed["notes"], changed["grid"], changed["vulnerability"]) == (
        "Moved to the ground floor",
        "grid-3",
        ["disabled", "medical"],
    )
    assert {k: changed[k] for k in ("address", "contact", "attention_level")} == {
        k: household[k] for k in ("address", "contact", "attention_level")
    }
    in_grid = client.get(URL, query_string={"grid": "grid-3"}, headers=tokens.dispatcher).get_json()["items"]
    assert [h["id"] for h in in_grid] == [household["id"]]
    assert client.get(URL, query_string={"grid": "grid-2"}, headers=tokens.dispatcher).get_json()["items"] == []


def test_a_contact_phone_belongs_to_one_household_and_can_be_looked_up(client, tokens, deps, make_household) -> None:
    from service.households import find_household_by_phone

    household = make_household(contact={"name": "Li", "phone": "+8613700000001"})

    again = client.post(
        URL,
        json={**household, "id": None} | {"contact": {"name": "Li", "phone": "+8613700000001"}},
        headers=tokens.dispatcher,
    )
    duplicate = client.post(
        URL,
        json={
            "address": "elsewhere",
            "location": {"lat": 46.3, "lon": 132.2},
            "contact": {"name": "Li", "phone": "+8613700000001"},
            "attention_level": "green",
        },
        headers=tokens.dispatcher,
    )

    assert again.status_code == 422, "unknown fields are refused"
    assert duplicate.status_code == 409
    assert household["id"] in duplicate.get_json()["message"]
    assert "phone" in duplicate.get_json()["errors"]["json"]["contact"]
    found = find_household_by_phone(deps=deps, phone="+8613700000001")
    assert found is not None and found.id == household["id"]
    moved = client.patch(
        f"{URL}/{household['id']}",
        json={"contact": {"name": "Li", "phone": "+8613700000002"}},
        headers=tokens.dispatcher,
    )
    assert moved.status_code == 200
    assert find_household_by_phone(deps=deps, phone="+8613700000001") is None
    assert find_household_by_phone(deps=deps, phone="+8613700000002").id == household["id"]


def test_preferred_volunteers_must_exist(client, tokens, make_household, make_volunteer) -> None:
    volunteer = make_volunteer()
    household = make_household(preferred_volunteers=[volunteer["id"]])
    assert household["preferred_volunteers"] == [volunteer["id"]]

    response = client.patch(
        f"{URL}/{household['id']}", json={"preferred_volunteers": ["vol_nobody"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 422
    assert "preferred_volunteers" in response.get_json()["errors"]["json"]


def test_bad_input_is_a_422_naming_the_field(client, tokens) -> None:
    body = {
        "address": "Station 2",
        "location": {"lat": 46.34, "lon": 132.25},
        "contact": {"name": "Zhang", "phone": "+8613900000003"},
        "attention_level": "red",
    }

    def post(sent: dict[str, Any]) -> Any:
        return client.post(URL, json=sent, headers=tokens.dispatcher)

    assert_rejects(post({**body, "attention_level": "purple"}), "attention_level")
    assert_rejects(post({**body, "contact": {"name": "Zhang", "phone": "123"}}), "contact.phone")
    assert_rejects(post({**body, "vulnerability": ["tall"]}), "vulnerability")
    assert_rejects(post({k: v for k, v in body.items() if k != "address"}), "address")
    assert_rejects(
        client.get(URL, query_string={"attention_level": "blue"}, headers=tokens.dispatcher), "attention_level"
    )


def test_deleting_a_household_cancels_its_open_visit_and_forgets_it(client, tokens, make_household) -> None:
    household = make_household()
    [visit] = client.get(f"{URL}/{household['id']}/visits", headers=tokens.dispatcher).get_json()["items"]

    response = client.delete(f"{URL}/{household['id']}", headers=tokens.dispatcher)

    assert response.status_code == 204
    assert client.get(f"{URL}/{household['id']}", headers=tokens.dispatcher).status_code == 404
    assert client.delete(f"{URL}/{household['id']}", headers=tokens.dispatcher).status_code == 404
    assert client.get(URL, headers=tokens.dispatcher).get_json()["items"] == []
    cancelled = client.get("/api/v1/visits", query_string={"status": "cancelled"}, headers=tokens.dispatcher)
    assert [v["id"] for v in cancelled.get_json()["items"]] == [visit["id"]]


def test_a_need_may_name_its_household_and_takes_its_place_and_contact(client, tokens, make_household) -> None:
    household = make_household()

    response = client.post(
        "/api/v1/needs", json={"kind": "coal_hauling", "household_id": household["id"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 201, response.get_json()
    need = response.get_json()
    assert (need["household_id"], need["visit_id"], need["grid"]) == (household["id"], None, "grid-2")
    assert need["location"] == household["location"] and need["address"] == household["address"]
    assert need["requester"] == {"name": "Zhang Guilan", "phone": household["contact"]["phone"]}
    unknown = client.post(
        "/api/v1/needs", json={"kind": "coal_hauling", "household_id": "hh_nobody"}, headers=tokens.dispatcher
    )
    assert unknown.status_code == 422
    assert "household_id" in unknown.get_json()["errors"]["json"]


def test_a_need_for_a_household_is_for_its_vulnerable_people_too(client, tokens, make_household) -> None:
    household = make_household(vulnerability=["elderly_alone", "medical"])

    def need(**body: Any) -> dict[str, Any]:
        body = {"kind": "coal_hauling", "priority": "normal", "household_id": household["id"], **body}
        response = client.post("/api/v1/needs", json=body, headers=tokens.dispatcher)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    assert need()["vulnerability"] == ["elderly_alone", "medical"]
    assert need(vulnerability=[])["vulnerability"] == ["elderly_alone", "medical"]
    assert need(vulnerability=["child", "medical"])["vulnerability"] == ["child", "elderly_alone", "medical"]
