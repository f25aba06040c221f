"""Needs with roles: a team of several kinds of volunteer, each role matched on its own, the need assigned once
every role is filled, and the team's contact list for those in it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.validation import assert_rejects
from tests.conftest import NEED

URL = "/api/v1/needs"
TANKER = {"skills": ["driving", "tanker_truck"], "count": 1}
LIFTERS = {"skills": ["heavy_lifting"], "count": 2}
BODY = {k: v for k, v in NEED.items() if k != "volunteers_needed"} | {"priority": "normal", "vulnerability": []}


def near(km_north: float) -> dict[str, float]:
    return {"lat": NEED["location"]["lat"] + km_north / 111.19, "lon": NEED["location"]["lon"]}


@pytest.fixture
def crew(make_volunteer: Any) -> dict[str, str]:
    """A tanker driver, a driver without a tanker, and three lifters, the third furthest away."""
    made = {
        "tanker": make_volunteer(
            name="Wang Lei", phone="+8613800000011", skills=["driving", "tanker_truck"], location=near(0.3)
        ),
        "driver": make_volunteer(name="Zhao Min", phone="+8613800000012", skills=["driving"], location=near(0.1)),
        "lifter1": make_volunteer(name="李金凤", phone="+8613800000013", skills=["heavy_lifting"], location=near(0.2)),
        "lifter2": make_volunteer(
            name="Chen Hua", phone="+8613800000014", skills=["heavy_lifting", "driving"], location=near(0.4)
        ),
        "lifter3": make_volunteer(name="Sun Li", phone="+8613800000015", skills=["heavy_lifting"], location=near(2.0)),
    }
    for volunteer in made.values():
        assert volunteer["on_duty"] is False
    return {name: v["id"] for name, v in made.items()}


@pytest.fixture
def on_duty(client: Any, tokens: Any, crew: dict[str, str]) -> dict[str, str]:
    for vid in crew.values():
        answer = client.put(f"/api/v1/volunteers/{vid}/availability", json={"on_duty": True}, headers=tokens.dispatcher)
        assert answer.status_code == 200, answer.get_json()
    return crew


def submit(client: Any, tokens: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(URL, json={**BODY, "roles": [TANKER, LIFTERS], **overrides}, headers=tokens.dispatcher)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def read(client: Any, headers: dict[str, str], need_id: str) -> Any:
    return client.get(f"{URL}/{need_id}", headers=headers)


def pending_by_volunteer(client: Any, tokens: Any, need_id: str) -> dict[str, dict[str, Any]]:
    need = read(client, tokens.dispatcher, need_id).get_json()
    return {a["volunteer_id"]: a for a in need["assignments"] if a["status"] == "pending"}


def accept(client: Any, tokens: Any, volunteer_id: str, offer_id: str) -> Any:
    return client.post(f"/api/v1/offers/{offer_id}/accept", headers=tokens.volunteer(volunteer_id))


# ---- intake --------------------------------------------------------------------------------------


def test_a_need_with_roles_answers_them_normalized_with_nothing_filled(client, tokens):
    need = submit(client, tokens, roles=[{"skills": ["tanker_truck", "driving", "driving"], "count": 1}, LIFTERS])

    assert need["roles"] == [
        {"skills": ["driving", "tanker_truck"], "count": 1, "filled": 0},
        {"skills": ["heavy_lifting"], "count": 2, "filled": 0},
    ]
    assert need["volunteers_needed"] == 3, "every role's count together"
    assert need["skills"] == ["driving", "heavy_lifting", "tanker_truck"], "every skill a role asks for"


def test_a_need_without_roles_has_one_from_its_skills_and_volunteers_needed(client, tokens):
    response = client.post(
        URL, json={**BODY, "skills": ["plumbing"], "volunteers_needed": 2}, headers=tokens.dispatcher
    )

    assert response.get_json()["roles"] == [{"skills": ["plumbing"], "count": 2, "filled": 0}]


INVALID_ROLES = [
    ("with-skills", {"roles": [TANKER], "skills": ["driving"]}, "roles"),
    ("with-volunteers-needed", {"roles": [TANKER], "volunteers_needed": 1}, "roles"),
    ("empty", {"roles": []}, "roles"),
    ("six", {"roles": [TANKER] * 6}, "roles"),
    ("count-0", {"roles": [{"skills": ["driving"], "count": 0}]}, "roles.0.count"),
    ("count-21", {"roles": [{"skills": ["driving"], "count": 21}]}, "roles.0.count"),
    ("count-text", {"roles": [{"skills": ["driving"], "count": "2"}]}, "roles.0.count"),
    ("count-missing", {"roles": [{"skills": ["driving"]}]}, "roles.0.count"),
    ("unknown-skill", {"roles": [TANKER, {"skills": ["juggling"], "count": 1}]}, "roles.1.skills.0"),
    ("unknown-field", {"roles": [{**TANKER, "name": "driver"}]}, "roles.0.name"),
]


@pytest.mark.parametrize(
    ("overrides", "field"), [(o, f) for _, o, f in INVALID_ROLES], ids=[i for i, _, _ in INVALID_ROLES]
)
def test_invalid_roles_are_422_naming_the_field(client, tokens, overrides, field):
    response = client.post(URL, json={**BODY, **overrides}, headers=tokens.dispatcher)

    assert_rejects(response, field)
    assert client.get(URL, headers=tokens.dispatcher).get_json()["items"] == [], "nothing was stored"


# ---- matching and accepting ----------------------------------------------------------------------


def test_each_role_is_offered_to_the_nearest_volunteers_with_its_skills(client, tokens, on_duty, work):
    need = submit(client, tokens)

    work()

    pending = pending_by_volunteer(client, tokens, need["id"])
    assert {vid: a["role"] for vid, a in pending.items()} == {
        on_duty["tanker"]: 0,
        on_duty["lifter1"]: 1,
        on_duty["lifter2"]: 1,
    }, "the driver without a tanker is not offered it, nor the furthest lifter"
    offered = [e for e in client.get(f"{URL}/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]]
    assert {(e["detail"]["volunteer_id"], e["detail"]["role"]) for e in offered if e["type"] == "offered"} == {
        (on_duty["tanker"], 0),
        (on_duty["lifter1"], 1),
        (on_duty["lifter2"], 1),
    }
    offers = client.get(f"/api/v1/volunteers/{on_duty['lifter1']}/offers", headers=tokens.dispatcher).get_json()
    assert [(o["role"], o["need"]["skills"]) for o in offers["items"]] == [(1, ["heavy_lifting"])]


def test_the_need_is_assigned_only_once_every_role_is_filled(client, tokens, on_duty, work):
    need = submit(client, tokens)
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])

    steps = []
    for name in ("lifter1", "tanker", "lifter2"):
        assert accept(client, tokens, on_duty[name], pending[on_duty[name]]["offer_id"]).status_code == 200
        now = read(client, tokens.dispatcher, need["id"]).get_json()
        steps.append((now["status"], [r["filled"] for r in now["roles"]]))

    assert steps == [("offered", [0, 1]), ("offered", [1, 1]), ("assigned", [1, 2])]


def staffed(client, tokens, on_duty, work):
    """The tanker, then both lifters, accept their offers of a new need; answers the need."""
    need = submit(client, tokens)
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])
    for name in ("tanker", "lifter1", "lifter2"):
        assert accept(client, tokens, on_duty[name], pending[on_duty[name]]["offer_id"]).status_code == 200
    return need


def test_a_done_need_still_shows_who_filled_each_role(client, tokens, on_duty, work):
    need = staffed(client, tokens, on_duty, work)

    for step in ("en_route", "on_site", "done"):
        moved = client.post(f"{URL}/{need['id']}/progress", json={"status": step}, headers=tokens.dispatcher)
        assert moved.status_code == 200, moved.get_json()

    done = read(client, tokens.dispatcher, need["id"]).get_json()
    assert done["status"] == "done"
    assert [r["filled"] for r in done["roles"]] == [1, 2], "the volunteers who did the work, not zero"


def test_a_declined_place_is_offered_again_in_its_own_role(client, tokens, on_duty, work):
    need = submit(client, tokens)
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])

    declined = client.post(
        f"/api/v1/offers/{pending[on_duty['lifter2']]['offer_id']}/decline",
        headers=tokens.volunteer(on_duty["lifter2"]),
    )
    assert declined.status_code == 200
    work()

    now = pending_by_volunteer(client, tokens, need["id"])
    assert {vid: a["role"] for vid, a in now.items()} == {
        on_duty["tanker"]: 0,
        on_duty["lifter1"]: 1,
        on_duty["lifter3"]: 1,
    }


def test_once_a_role_is_filled_its_other_offers_are_withdrawn_and_the_other_role_keeps_its_own(
    client, tokens, on_duty, work
):
    """Critical: each place is offered to several at once; the first acceptances fill a role."""
    need = submit(
        client,
        tokens,
        priority="critical",
        roles=[{"skills": ["driving"], "count": 1}, {"skills": ["heavy_lifting"], "count": 1}],
    )
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])
    drivers = [vid for vid, a in pending.items() if a["role"] == 0]
    lifters = [vid for vid, a in pending.items() if a["role"] == 1]
    assert len(drivers) == 3, "three offers for each place"
    assert len(lifters) == 2, "the lifter who drives was chosen as a driver: nobody is offered two roles"

    assert accept(client, tokens, drivers[0], pending[drivers[0]]["offer_id"]).status_code == 200

    after = {
        a["volunteer_id"]: a["status"] for a in read(client, tokens.dispatcher, need["id"]).get_json()["assignments"]
    }
    assert [after.get(vid) for vid in drivers] == ["accepted", None, None], "the other drivers' offers are withdrawn"
    assert [after[vid] for vid in lifters] == ["pending"] * 2
    late = accept(client, tokens, drivers[1], pending[drivers[1]]["offer_id"])
    assert late.status_code == 409
    assert "withdrawn" in late.get_json()["message"]


def test_a_dispatcher_assigns_a_volunteer_to_the_first_open_role_they_fit(client, tokens, on_duty):
    crew = on_duty
    need = submit(client, tokens)

    first = client.post(f"{URL}/{need['id']}/assign", json={"volunteer_id": crew["lifter3"]}, headers=tokens.dispatcher)
    chosen = client.post(
        f"{URL}/{need['id']}/assign", json={"volunteer_id": crew["lifter2"], "role": 1}, headers=tokens.dispatcher
    )
    no_such_role = client.post(
        f"{URL}/{need['id']}/assign", json={"volunteer_id": crew["tanker"], "role": 2}, headers=tokens.dispatcher
    )
    unfit = client.post(f"{URL}/{need['id']}/assign", json={"volunteer_id": crew["driver"]}, headers=tokens.dispatcher)

    assert first.status_code == 200 and chosen.status_code == 200
    assert [r["filled"] for r in chosen.get_json()["roles"]] == [0, 2], "lifter2 takes the role they were given"
    assert no_such_role.status_code == 422
    assert no_such_role.get_json()["errors"] == {"json": {"role": ["The need has roles 0..1."]}}
    assert unfit.status_code == 409
    assert unfit.get_json()["message"] == f"{crew['driver']} lacks the skills of every open role: driving, tanker_truck"
    tanker = client.post(f"{URL}/{need['id']}/assign", json={"volunteer_id": crew["tanker"]}, headers=tokens.dispatcher)
    assert tanker.status_code == 200
    assert tanker.get_json()["status"] == "assigned"
    assert {m["volunteer_id"]: m["role"] for m in tanker.get_json()["team"]} == {
        crew["lifter3"]: 1,
        crew["lifter2"]: 1,
        crew["tanker"]: 0,
    }


# ---- the team's contact list ---------------------------------------------------------------------


def test_the_team_sees_each_others_first_names_and_phones(client, tokens, on_duty, work):
    need = staffed(client, tokens, on_duty, work)

    seen = read(client, tokens.volunteer(on_duty["lifter2"]), need["id"]).get_json()

    assert sorted(seen["team"], key=lambda m: m["phone"]) == [
        {
            "volunteer_id": on_duty["tanker"],
            "first_name": "Wang",
            "phone": "+8613800000011",
            "role": 0,
            "skills": ["driving", "tanker_truck"],
        },
        {
            "volunteer_id": on_duty["lifter1"],
            "first_name": "李金凤",
            "phone": "+8613800000013",
            "role": 1,
            "skills": ["heavy_lifting"],
        },
        {
            "volunteer_id": on_duty["lifter2"],
            "first_name": "Chen",
            "phone": "+8613800000014",
            "role": 1,
            "skills": ["heavy_lifting"],
        },
    ]
    assert read(client, tokens.dispatcher, need["id"]).get_json()["team"] == seen["team"]


def test_nobody_outside_the_team_sees_it(client, tokens, on_duty, work):
    response = client.post(URL, json={**BODY, "roles": [TANKER, LIFTERS]}, headers=tokens.intake)
    need = response.get_json()
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])
    assert accept(client, tokens, on_duty["tanker"], pending[on_duty["tanker"]]["offer_id"]).status_code == 200

    offered_only = read(client, tokens.volunteer(on_duty["lifter1"]), need["id"])
    assert offered_only.status_code == 200, "a volunteer offered the need reads it"
    assert "team" not in offered_only.get_json()
    assert "team" not in response.get_json()
    for headers in (tokens.intake, tokens.ops):
        assert "team" not in read(client, headers, need["id"]).get_json()
    assert read(client, tokens.volunteer(on_duty["driver"]), need["id"]).status_code == 404, "never offered it"
    listed = client.get(URL, headers=tokens.dispatcher).get_json()["items"]
    assert "team" not in listed[0], "lists carry no phones"
    assert [m["volunteer_id"] for m in read(client, tokens.dispatcher, need["id"]).get_json()["team"]] == [
        on_duty["tanker"]
    ]


def test_accepting_for_a_role_already_filled_is_409_naming_the_role(client, tokens, on_duty, work, deps):
    """The step that fills a role withdraws its pending offers, so this is only reached by a record changed
    outside it; the accept step refuses it all the same."""
    need = submit(client, tokens)
    work()
    pending = pending_by_volunteer(client, tokens, need["id"])
    deps.redis.hset(deps.store.keys.need(need["id"]), "role:1:accepted", 2)

    late = accept(client, tokens, on_duty["lifter1"], pending[on_duty["lifter1"]]["offer_id"])

    assert late.status_code == 409
    assert late.get_json()["message"] == "this role of the need already has all the volunteers it asks for (role 1)"
    assert pending_by_volunteer(client, tokens, need["id"])[on_duty["lifter1"]]["status"] == "pending"
