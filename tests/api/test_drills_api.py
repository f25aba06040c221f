"""Drill marking and cleaning through the API: `drill: true` on needs and volunteers, POST /drills/clean."""

from __future__ import annotations

from typing import Any

from tests.conftest import NEED

CLEAN = "/api/v1/drills/clean"


def test_needs_and_volunteers_are_not_drill_unless_marked(make_need, make_volunteer):
    assert make_need()["drill"] is False
    assert make_volunteer()["drill"] is False


def test_a_drill_mark_is_stored_and_shown(client, tokens, make_need, make_volunteer):
    need = make_need(drill=True)
    volunteer = make_volunteer(drill=True)

    assert need["drill"] is True and volunteer["drill"] is True
    assert client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["drill"] is True
    assert client.get(f"/api/v1/volunteers/{volunteer['id']}", headers=tokens.dispatcher).get_json()["drill"] is True


def test_drill_must_be_a_boolean(client, tokens):
    response = client.post("/api/v1/needs", json={**NEED, "drill": "yes"}, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert "drill" in response.get_json()["errors"]["json"]


def test_a_need_may_carry_its_own_accept_window(client, tokens, make_need, make_volunteer, work):
    volunteer = make_volunteer(on_duty=True, location=NEED["location"])
    need = make_need(accept_seconds=30)
    work()

    offers = client.get(f"/api/v1/volunteers/{volunteer['id']}/offers", headers=tokens.dispatcher).get_json()["items"]
    assert len(offers) == 1
    created, expires = offers[0]["created_at"], offers[0]["expires_at"]
    from service.clock import parse

    assert (parse(expires) - parse(created)).total_seconds() == 30
    assert offers[0]["need_id"] == need["id"]


def test_an_accept_window_outside_10_seconds_to_a_day_is_refused(client, tokens):
    for bad in (9, 86401, 30.5, "30"):
        response = client.post("/api/v1/needs", json={**NEED, "accept_seconds": bad}, headers=tokens.dispatcher)
        assert response.status_code == 422, bad
        assert "accept_seconds" in response.get_json()["errors"]["json"]


def test_clean_removes_drill_records_and_answers_counts(client, tokens, make_need, make_volunteer, work):
    kept_need = make_need()
    kept_volunteer = make_volunteer(phone="+8613800000009")
    drill_volunteer = make_volunteer(drill=True, on_duty=True, location=NEED["location"])
    drill_need = make_need(drill=True)
    work()

    response = client.post(CLEAN, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "needs_removed": 1,
        "volunteers_removed": 1,
        "volunteers_kept": [],
        "needs_rematched": [kept_need["id"]],  # it was offered to the drill volunteer, the only one on duty
    }
    d = tokens.dispatcher
    assert client.get(f"/api/v1/needs/{drill_need['id']}", headers=d).status_code == 404
    assert client.get(f"/api/v1/volunteers/{drill_volunteer['id']}", headers=d).status_code == 404
    assert client.get(f"/api/v1/track/{drill_need['tracking_code']}").status_code == 404
    assert client.get(f"/api/v1/needs/{kept_need['id']}", headers=d).status_code == 200
    assert client.get(f"/api/v1/volunteers/{kept_volunteer['id']}", headers=d).status_code == 200
    listed = [n["id"] for n in client.get("/api/v1/needs", headers=d).get_json()["items"]]
    assert listed == [kept_need["id"]]


def test_clean_keeps_a_drill_volunteer_working_on_a_real_need_and_says_why(
    client, tokens, make_need, make_volunteer, work
):
    drill_volunteer = make_volunteer(drill=True, on_duty=True, location=NEED["location"])
    real_need = make_need()
    work()
    offer = client.get(f"/api/v1/volunteers/{drill_volunteer['id']}/offers", headers=tokens.dispatcher).get_json()
    assert client.post(f"/api/v1/offers/{offer['items'][0]['id']}/accept", headers=tokens.dispatcher).status_code == 200

    answer: dict[str, Any] = client.post(CLEAN, headers=tokens.dispatcher).get_json()

    assert answer["volunteers_removed"] == 0
    assert answer["volunteers_kept"] == [
        {
            "id": drill_volunteer["id"],
            "reason": f"holds an accepted offer on need {real_need['id']}, which is not from a drill",
        }
    ]
    need = client.get(f"/api/v1/needs/{real_need['id']}", headers=tokens.dispatcher).get_json()
    assert need["status"] == "assigned"
    assert need["assignments"][0]["volunteer_id"] == drill_volunteer["id"]


def test_clean_withdraws_a_drill_volunteers_pending_offer_on_a_real_need_and_matches_it_again(
    client, tokens, make_need, make_volunteer, work
):
    make_volunteer(drill=True, on_duty=True, location=NEED["location"])
    real_need = make_need()
    work()
    real_volunteer = make_volunteer(phone="+8613800000009", on_duty=True, location=NEED["location"])

    answer = client.post(CLEAN, headers=tokens.dispatcher).get_json()
    work()

    assert answer["volunteers_removed"] == 1
    assert answer["needs_rematched"] == [real_need["id"]]
    need = client.get(f"/api/v1/needs/{real_need['id']}", headers=tokens.dispatcher).get_json()
    assert [a["volunteer_id"] for a in need["assignments"] if a["status"] == "pending"] == [real_volunteer["id"]]
    events = client.get(f"/api/v1/needs/{real_need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    assert any(e["type"] == "offer_withdrawn" and e["detail"]["reason"] == "drill cleaned up" for e in events)


def test_clean_frees_a_real_volunteer_offered_a_drill_need(client, tokens, make_need, make_volunteer, work):
    real_volunteer = make_volunteer(on_duty=True, location=NEED["location"], capacity=1)
    make_need(drill=True)
    work()
    assert client.get(f"/api/v1/volunteers/{real_volunteer['id']}", headers=tokens.dispatcher).get_json()["load"] == 1

    assert client.post(CLEAN, headers=tokens.dispatcher).get_json()["needs_removed"] == 1

    after = client.get(f"/api/v1/volunteers/{real_volunteer['id']}", headers=tokens.dispatcher).get_json()
    assert after["load"] == 0
    offers = client.get(f"/api/v1/volunteers/{real_volunteer['id']}/offers", headers=tokens.dispatcher).get_json()
    assert offers["items"] == []


def test_clean_twice_removes_nothing_the_second_time(client, tokens, make_need):
    make_need(drill=True)
    assert client.post(CLEAN, headers=tokens.dispatcher).get_json()["needs_removed"] == 1

    again = client.post(CLEAN, headers=tokens.dispatcher).get_json()

    assert again["needs_removed"] == 0 and again["volunteers_removed"] == 0


def test_only_dispatchers_clean(client, tokens):
    assert client.post(CLEAN).status_code == 401
    for headers in (tokens.intake, tokens.ops):
        assert client.post(CLEAN, headers=headers).status_code == 403
