"""Volunteers API: registration, profile, live position, availability, lists and every field rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.validation import assert_rejects, failed_fields
from tests.conftest import VOLUNTEER

URL = "/api/v1/volunteers"

# A valid registration body that does not touch notification channels.
BODY: dict[str, Any] = {**VOLUNTEER, "channels": []}


def post_raw(client: Any, url: str, text: str, headers: dict[str, str], method: str = "post") -> Any:
    return getattr(client, method)(url, data=text, content_type="application/json", headers=headers)


# ---- registering ---------------------------------------------------------------------------------


def test_registering_a_volunteer_answers_201_with_the_full_record(client, tokens):
    response = client.post(URL, json=BODY, headers=tokens.dispatcher)

    assert response.status_code == 201
    v = response.get_json()
    assert v["id"].startswith("vol_")
    assert v["name"] == BODY["name"]
    assert v["phone"] == BODY["phone"]
    assert set(BODY["skills"]) <= set(v["skills"])
    assert v["home"] == BODY["location"]
    assert v["location"] == BODY["location"], "the live position starts at home"
    assert v["capacity"] == 2
    assert v["load"] == 0
    assert v["locale"] == "zh"
    assert v["team"] == "pioneer"
    assert v["grid"] == "grid-2"
    assert v["channels"] == []
    for stamp in ("created_at", "updated_at", "location_at"):
        assert v[stamp].endswith("Z"), stamp
    assert "idle_since" not in v


def test_registered_volunteer_can_be_read_back_by_id(client, tokens, make_volunteer):
    created = make_volunteer()

    response = client.get(f"{URL}/{created['id']}", headers=tokens.dispatcher)

    assert response.status_code == 200
    assert response.get_json() == created


def test_new_volunteer_is_off_duty_unless_on_duty_is_true(make_volunteer):
    assert make_volunteer()["on_duty"] is False
    assert make_volunteer(on_duty=False)["on_duty"] is False
    assert make_volunteer(on_duty=True)["on_duty"] is True


def test_every_volunteer_has_the_general_skill(make_volunteer):
    assert "general" in make_volunteer(skills=["plumbing"])["skills"]
    assert make_volunteer(skills=[])["skills"] == ["general"]


def test_optional_fields_take_their_defaults(client, tokens):
    body = {"name": "Wang", "phone": "+8613800000009", "skills": [], "location": {"lat": 46.0, "lon": 132.0}}

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    v = response.get_json()
    assert v["capacity"] == 1
    assert v["channels"] == []
    assert v["locale"] == "zh"
    assert v["on_duty"] is False
    assert v["team"] is None
    assert v["grid"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "x" * 100},
        {"name": "x"},
        {"capacity": 1},
        {"capacity": 5},
        {"skills": ["general"] * 20},
        {"location": {"lat": 85, "lon": 180}},
        {"location": {"lat": -85, "lon": -180}},
        {"locale": "en"},
        {"team": None, "grid": None},
        {"phone": "+12025550123"},
    ],
    ids=lambda o: ",".join(o),
)
def test_values_at_the_limits_are_accepted(client, tokens, overrides):
    response = client.post(URL, json={**BODY, **overrides}, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()


def test_channel_secrets_are_masked_in_answers(client, tokens):
    body = {**BODY, "channels": ["json://user:secret@host/x"]}

    created = client.post(URL, json=body, headers=tokens.dispatcher)

    assert created.status_code == 201, created.get_json()
    volunteer_id = created.get_json()["id"]
    read = client.get(f"{URL}/{volunteer_id}", headers=tokens.dispatcher)
    listed = client.get(URL, headers=tokens.dispatcher)
    for response in (created, read, listed):
        assert "secret" not in response.get_data(as_text=True)
    channels = read.get_json()["channels"]
    assert len(channels) == 1
    assert channels[0].startswith("json://")
    assert "host" in channels[0]


def test_channel_secrets_are_masked_after_an_update(client, tokens, make_volunteer):
    v = make_volunteer()

    response = client.patch(
        f"{URL}/{v['id']}", json={"channels": ["json://user:secret@host/x"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 200, response.get_json()
    assert "secret" not in response.get_data(as_text=True)
    assert len(response.get_json()["channels"]) == 1


def test_a_masked_channel_sent_back_keeps_its_real_secret(client, tokens, make_volunteer, deps):
    v = make_volunteer(channels=["json://user:s3cret@hooks.example.org/x", "json://other.example.org/y"])
    shown = client.get(f"{URL}/{v['id']}", headers=tokens.dispatcher).get_json()["channels"]

    response = client.patch(f"{URL}/{v['id']}", json={"channels": list(reversed(shown))}, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    stored = deps.store.volunteers.get(v["id"]).channels
    assert stored == ["json://other.example.org/y", "json://user:s3cret@hooks.example.org/x"]


# ---- field rules on registration -----------------------------------------------------------------

INVALID_REGISTRATIONS = [
    # (id, overrides, field)
    ("name-too-long", {"name": "x" * 101}, "name"),
    ("name-empty", {"name": ""}, "name"),
    ("name-number", {"name": 5}, "name"),
    ("name-null", {"name": None}, "name"),
    ("phone-no-plus", {"phone": "8613800000001"}, "phone"),
    ("phone-local", {"phone": "13800000001"}, "phone"),
    ("phone-leading-zero", {"phone": "+0613800000001"}, "phone"),
    ("phone-spaces", {"phone": "+86 138 0000 0001"}, "phone"),
    ("phone-too-short", {"phone": "+12345"}, "phone"),
    ("phone-too-long", {"phone": "+1234567890123456"}, "phone"),
    ("phone-number", {"phone": 8613800000001}, "phone"),
    ("skill-unknown", {"skills": ["flying"]}, "skills"),
    ("skills-too-many", {"skills": ["general"] * 21}, "skills"),
    ("skills-string", {"skills": "driving"}, "skills"),
    ("skills-null", {"skills": None}, "skills"),
    ("lat-91", {"location": {"lat": 91, "lon": 132.2}}, "location.lat"),
    ("lat-minus-91", {"location": {"lat": -91, "lon": 132.2}}, "location.lat"),
    ("lon-181", {"location": {"lat": 46.3, "lon": 181}}, "location.lon"),
    ("lon-minus-181", {"location": {"lat": 46.3, "lon": -181}}, "location.lon"),
    ("lat-string", {"location": {"lat": "north", "lon": 132.2}}, "location.lat"),
    ("lat-numeric-string", {"location": {"lat": "46.3", "lon": 132.2}}, "location.lat"),
    ("lon-numeric-string", {"location": {"lat": 46.3, "lon": "132.2"}}, "location.lon"),
    ("lat-bool", {"location": {"lat": True, "lon": 132.2}}, "location.lat"),
    ("lat-missing", {"location": {"lon": 132.2}}, "location.lat"),
    ("location-list", {"location": [46.3, 132.2]}, "location"),
    ("location-string", {"location": "46.3,132.2"}, "location"),
    ("location-extra-field", {"location": {"lat": 46.3, "lon": 132.2, "alt": 3}}, "location.alt"),
    ("capacity-0", {"capacity": 0}, "capacity"),
    ("capacity-6", {"capacity": 6}, "capacity"),
    ("capacity-string", {"capacity": "2"}, "capacity"),
    ("capacity-float", {"capacity": 2.5}, "capacity"),
    ("capacity-negative", {"capacity": -1}, "capacity"),
    ("capacity-bool", {"capacity": True}, "capacity"),
    ("channel-not-a-url", {"channels": ["not a url"]}, "channels"),
    ("channel-unknown-scheme", {"channels": ["nosuchscheme://host/path"]}, "channels"),
    ("channel-empty", {"channels": [""]}, "channels"),
    ("channels-too-many", {"channels": [f"json://127.0.0.1:9000/hook{i}" for i in range(6)]}, "channels"),
    ("channels-string", {"channels": "json://127.0.0.1:9000/hook"}, "channels"),
    ("channel-number", {"channels": [5]}, "channels"),
    ("locale-fr", {"locale": "fr"}, "locale"),
    ("locale-number", {"locale": 1}, "locale"),
    ("team-too-long", {"team": "x" * 51}, "team"),
    ("grid-empty", {"grid": ""}, "grid"),
    ("on-duty-string", {"on_duty": "true"}, "on_duty"),
    ("on-duty-number", {"on_duty": 1}, "on_duty"),
    ("unknown-field", {"nickname": "Li"}, "nickname"),
    ("load-is-not-writable", {"load": 3}, "load"),
    ("id-is-not-writable", {"id": "vol_mine"}, "id"),
]


@pytest.mark.parametrize(
    ("overrides", "field"), [(o, f) for _, o, f in INVALID_REGISTRATIONS], ids=[i for i, _, _ in INVALID_REGISTRATIONS]
)
def test_registration_rejects_an_invalid_field_naming_it(client, tokens, overrides, field):
    response = client.post(URL, json={**BODY, **overrides}, headers=tokens.dispatcher)

    assert_rejects(response, field)


@pytest.mark.parametrize("pole", [{"lat": 90, "lon": 180}, {"lat": -90, "lon": -180}, {"lat": 89.9, "lon": 0}])
def test_polar_coordinates_are_accepted_or_rejected_but_never_a_server_error(client, tokens, make_volunteer, pole):
    """The schema allows -90..90, the geo index less; either way the caller gets an answer, not a 500."""
    registered = client.post(URL, json={**BODY, "location": pole}, headers=tokens.dispatcher)
    v = make_volunteer()
    moved = client.put(f"{URL}/{v['id']}/location", json=pole, headers=tokens.dispatcher)

    assert registered.status_code in (201, 422), registered.get_json()
    assert moved.status_code in (200, 422), moved.get_json()
    for response in (registered, moved):
        if response.status_code == 422:
            assert failed_fields(response) & {"lat", "location.lat"}, response.get_json()


@pytest.mark.parametrize("missing", ["name", "phone", "skills", "location"])
def test_registration_requires_each_mandatory_field(client, tokens, missing):
    body = {k: v for k, v in BODY.items() if k != missing}

    response = client.post(URL, json=body, headers=tokens.dispatcher)

    assert_rejects(response, missing)


@pytest.mark.parametrize(("raw", "field"), [("NaN", "location.lat"), ("Infinity", "location.lat")])
def test_registration_rejects_non_finite_coordinates(client, tokens, raw, field):
    text = json.dumps({**BODY, "location": {"lat": 0, "lon": 132.2}}).replace('"lat": 0', f'"lat": {raw}')

    response = post_raw(client, URL, text, tokens.dispatcher)

    assert_rejects(response, field)


def test_registration_rejects_a_body_that_is_not_an_object(client, tokens):
    response = post_raw(client, URL, json.dumps([BODY]), tokens.dispatcher)

    assert response.status_code == 422, response.get_json()


def test_rejected_registration_stores_nothing(client, tokens):
    client.post(URL, json={**BODY, "capacity": 0}, headers=tokens.dispatcher)

    listed = client.get(URL, headers=tokens.dispatcher).get_json()

    assert listed["items"] == []


# ---- reading and updating ------------------------------------------------------------------------


def test_reading_an_unknown_volunteer_is_404(client, tokens):
    response = client.get(f"{URL}/vol_doesnotexist", headers=tokens.dispatcher)

    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_patch_changes_only_the_fields_sent(client, tokens, make_volunteer):
    v = make_volunteer()

    response = client.patch(f"{URL}/{v['id']}", json={"name": "Li Mei", "capacity": 4}, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    assert after["name"] == "Li Mei"
    assert after["capacity"] == 4
    for unchanged in ("phone", "skills", "home", "location", "locale", "team", "grid", "on_duty", "created_at"):
        assert after[unchanged] == v[unchanged], unchanged
    assert client.get(f"{URL}/{v['id']}", headers=tokens.dispatcher).get_json() == after


def test_a_volunteer_changes_their_own_profile_but_not_what_a_dispatcher_vouches_for(client, tokens, make_volunteer):
    v = make_volunteer()
    own = tokens.volunteer(v["id"])

    kept = client.patch(f"{URL}/{v['id']}", json={"capacity": 3, "locale": "en"}, headers=own)
    refused = client.patch(f"{URL}/{v['id']}", json={"skills": ["medical"], "grid": "grid-9"}, headers=own)
    by_dispatcher = client.patch(f"{URL}/{v['id']}", json={"skills": ["medical"]}, headers=tokens.dispatcher)

    assert kept.status_code == 200 and kept.get_json()["capacity"] == 3
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "only a dispatcher may change a volunteer's grid, skills"
    assert by_dispatcher.status_code == 200 and "medical" in by_dispatcher.get_json()["skills"]


def test_patch_with_an_empty_body_changes_nothing(client, tokens, make_volunteer):
    v = make_volunteer()

    response = client.patch(f"{URL}/{v['id']}", json={}, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    assert {k: after[k] for k in after if k != "updated_at"} == {k: v[k] for k in v if k != "updated_at"}


def test_patch_of_home_location_also_moves_the_live_position(client, tokens, make_volunteer):
    v = make_volunteer()
    new_home = {"lat": 45.0, "lon": 131.0}

    after = client.patch(f"{URL}/{v['id']}", json={"location": new_home}, headers=tokens.dispatcher).get_json()

    assert after["home"] == new_home
    assert after["location"] == new_home


def test_patch_can_clear_team_and_grid(client, tokens, make_volunteer):
    v = make_volunteer()

    after = client.patch(f"{URL}/{v['id']}", json={"team": None, "grid": None}, headers=tokens.dispatcher)

    assert after.status_code == 200, after.get_json()
    assert after.get_json()["team"] is None
    assert after.get_json()["grid"] is None


def test_patch_of_an_unknown_volunteer_is_404(client, tokens):
    response = client.patch(f"{URL}/vol_doesnotexist", json={"name": "X"}, headers=tokens.dispatcher)

    assert response.status_code == 404


INVALID_UPDATES = [
    ("name-empty", {"name": ""}, "name"),
    ("name-too-long", {"name": "x" * 101}, "name"),
    ("phone-bad", {"phone": "12345"}, "phone"),
    ("skill-unknown", {"skills": ["juggling"]}, "skills"),
    ("skills-too-many", {"skills": ["driving"] * 21}, "skills"),
    ("lat-91", {"location": {"lat": 91, "lon": 0}}, "location.lat"),
    ("lon-181", {"location": {"lat": 0, "lon": 181}}, "location.lon"),
    ("capacity-0", {"capacity": 0}, "capacity"),
    ("capacity-6", {"capacity": 6}, "capacity"),
    ("capacity-string", {"capacity": "2"}, "capacity"),
    ("capacity-float", {"capacity": 2.5}, "capacity"),
    ("channel-not-a-url", {"channels": ["not a url"]}, "channels"),
    ("channels-too-many", {"channels": [f"json://127.0.0.1:9000/h{i}" for i in range(6)]}, "channels"),
    ("locale-fr", {"locale": "fr"}, "locale"),
    ("on-duty-string", {"on_duty": "yes"}, "on_duty"),
    ("unknown-field", {"favourite_colour": "red"}, "favourite_colour"),
    ("name-null", {"name": None}, "name"),
    ("capacity-null", {"capacity": None}, "capacity"),
]


@pytest.mark.parametrize(
    ("changes", "field"), [(c, f) for _, c, f in INVALID_UPDATES], ids=[i for i, _, _ in INVALID_UPDATES]
)
def test_patch_rejects_an_invalid_field_naming_it(client, tokens, make_volunteer, changes, field):
    v = make_volunteer()

    response = client.patch(f"{URL}/{v['id']}", json=changes, headers=tokens.dispatcher)

    assert_rejects(response, field)
    assert client.get(f"{URL}/{v['id']}", headers=tokens.dispatcher).get_json() == v, "nothing changed"


# ---- live position -------------------------------------------------------------------------------


def test_put_location_moves_the_live_position_but_not_home(client, tokens, make_volunteer):
    v = make_volunteer()

    response = client.put(f"{URL}/{v['id']}/location", json={"lat": 46.5, "lon": 132.5}, headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    assert after["location"] == {"lat": 46.5, "lon": 132.5}
    assert after["home"] == v["home"]
    assert after["location_at"] >= v["location_at"]


def test_a_volunteer_reports_its_own_position(client, tokens, make_volunteer):
    v = make_volunteer()

    response = client.put(
        f"{URL}/{v['id']}/location", json={"lat": 46.0, "lon": 132.0}, headers=tokens.volunteer(v["id"])
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["location"] == {"lat": 46.0, "lon": 132.0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91, "lon": 0}, "lat"),
        ({"lat": -90.5, "lon": 0}, "lat"),
        ({"lat": 0, "lon": 181}, "lon"),
        ({"lat": 0, "lon": -180.01}, "lon"),
        ({"lat": "46.3", "lon": 0}, "lat"),
        ({"lat": "north", "lon": 0}, "lat"),
        ({"lat": None, "lon": 0}, "lat"),
        ({"lat": [1], "lon": 0}, "lat"),
        ({"lon": 0}, "lat"),
        ({"lat": 0}, "lon"),
        ({"lat": 0, "lon": 0, "accuracy": 5}, "accuracy"),
    ],
    ids=[
        "lat-91",
        "lat-minus-90.5",
        "lon-181",
        "lon-minus-180.01",
        "lat-numeric-string",
        "lat-word",
        "lat-null",
        "lat-list",
        "lat-missing",
        "lon-missing",
        "unknown-field",
    ],
)
def test_put_location_validates_coordinates(client, tokens, make_volunteer, body, field):
    v = make_volunteer()

    response = client.put(f"{URL}/{v['id']}/location", json=body, headers=tokens.dispatcher)

    assert_rejects(response, field)


def test_put_location_rejects_nan(client, tokens, make_volunteer):
    v = make_volunteer()

    response = post_raw(client, f"{URL}/{v['id']}/location", '{"lat": NaN, "lon": 0}', tokens.dispatcher, "put")

    assert_rejects(response, "lat")


def test_put_location_of_an_unknown_volunteer_is_404(client, tokens):
    response = client.put(f"{URL}/vol_doesnotexist/location", json={"lat": 1, "lon": 1}, headers=tokens.dispatcher)

    assert response.status_code == 404


# ---- availability --------------------------------------------------------------------------------


def test_put_availability_puts_a_volunteer_on_and_off_duty(client, tokens, make_volunteer):
    v = make_volunteer()
    url = f"{URL}/{v['id']}/availability"

    on = client.put(url, json={"on_duty": True}, headers=tokens.volunteer(v["id"]))
    assert on.status_code == 200, on.get_json()
    assert on.get_json()["on_duty"] is True
    assert client.get(f"{URL}/{v['id']}", headers=tokens.dispatcher).get_json()["on_duty"] is True

    off = client.put(url, json={"on_duty": False}, headers=tokens.dispatcher)
    assert off.status_code == 200, off.get_json()
    assert off.get_json()["on_duty"] is False


@pytest.mark.parametrize(
    "body",
    [{}, {"on_duty": "true"}, {"on_duty": 1}, {"on_duty": None}, {"on_duty": True, "until": "tonight"}],
    ids=["missing", "string", "number", "null", "unknown-field"],
)
def test_put_availability_requires_a_boolean_on_duty(client, tokens, make_volunteer, body):
    v = make_volunteer()

    response = client.put(f"{URL}/{v['id']}/availability", json=body, headers=tokens.dispatcher)

    assert response.status_code == 422, response.get_json()
    assert failed_fields(response) & {"on_duty", "until"}


def test_put_availability_of_an_unknown_volunteer_is_404(client, tokens):
    response = client.put(f"{URL}/vol_doesnotexist/availability", json={"on_duty": True}, headers=tokens.dispatcher)

    assert response.status_code == 404


# ---- lists ---------------------------------------------------------------------------------------


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [v["id"] for v in response.get_json()["items"]]


def test_list_without_filters_returns_every_volunteer(client, tokens, make_volunteer):
    made = {make_volunteer(name=f"V{i}")["id"] for i in range(3)}

    response = client.get(URL, headers=tokens.dispatcher)

    assert set(ids_of(response)) == made
    assert response.get_json()["next_cursor"] is None


def test_list_filters_by_skill(client, tokens, make_volunteer):
    plumber = make_volunteer(skills=["plumbing"])
    driver = make_volunteer(skills=["driving"])

    assert ids_of(client.get(f"{URL}?skill=plumbing", headers=tokens.dispatcher)) == [plumber["id"]]
    assert ids_of(client.get(f"{URL}?skill=driving", headers=tokens.dispatcher)) == [driver["id"]]
    assert ids_of(client.get(f"{URL}?skill=medical", headers=tokens.dispatcher)) == []
    assert set(ids_of(client.get(f"{URL}?skill=general", headers=tokens.dispatcher))) == {plumber["id"], driver["id"]}


def test_list_filters_by_duty(client, tokens, make_volunteer):
    on = make_volunteer(on_duty=True)
    off = make_volunteer(on_duty=False)

    assert ids_of(client.get(f"{URL}?on_duty=true", headers=tokens.dispatcher)) == [on["id"]]
    assert ids_of(client.get(f"{URL}?on_duty=false", headers=tokens.dispatcher)) == [off["id"]]


def test_list_combines_skill_and_duty_filters(client, tokens, make_volunteer):
    wanted = make_volunteer(skills=["heating"], on_duty=True)
    make_volunteer(skills=["heating"], on_duty=False)
    make_volunteer(skills=["cooking"], on_duty=True)

    assert ids_of(client.get(f"{URL}?skill=heating&on_duty=true", headers=tokens.dispatcher)) == [wanted["id"]]


def test_list_near_a_point_returns_volunteers_within_the_radius_nearest_first(client, tokens, make_volunteer):
    far = make_volunteer(location={"lat": 46.60, "lon": 132.21})  # ~30 km north
    near = make_volunteer(location={"lat": 46.34, "lon": 132.21})  # ~1 km
    nearer = make_volunteer(location={"lat": 46.331, "lon": 132.21})  # ~100 m

    response = client.get(f"{URL}?near=46.33,132.21&radius_km=5", headers=tokens.dispatcher)

    assert ids_of(response) == [nearer["id"], near["id"]]
    wide = client.get(f"{URL}?near=46.33,132.21&radius_km=50", headers=tokens.dispatcher)
    assert ids_of(wide) == [nearer["id"], near["id"], far["id"]]


def test_list_near_uses_the_live_position_reported_by_put_location(client, tokens, make_volunteer):
    v = make_volunteer(location={"lat": 46.33, "lon": 132.21})
    moved = client.put(f"{URL}/{v['id']}/location", json={"lat": 47.50, "lon": 133.50}, headers=tokens.dispatcher)
    assert moved.status_code == 200, moved.get_json()

    at_home = client.get(f"{URL}?near=46.33,132.21&radius_km=5", headers=tokens.dispatcher)
    where_it_is = client.get(f"{URL}?near=47.50,133.50&radius_km=5", headers=tokens.dispatcher)

    assert ids_of(at_home) == []
    assert ids_of(where_it_is) == [v["id"]]


def test_list_near_combines_with_skill_and_duty(client, tokens, make_volunteer):
    here = {"lat": 46.33, "lon": 132.21}
    wanted = make_volunteer(location=here, skills=["electrical"], on_duty=True)
    make_volunteer(location=here, skills=["electrical"], on_duty=False)
    make_volunteer(location=here, skills=["cooking"], on_duty=True)
    make_volunteer(location={"lat": 40.0, "lon": 120.0}, skills=["electrical"], on_duty=True)

    response = client.get(
        f"{URL}?near=46.33,132.21&radius_km=5&skill=electrical&on_duty=true", headers=tokens.dispatcher
    )

    assert ids_of(response) == [wanted["id"]]


def walk_pages(client: Any, headers: dict[str, str], query: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(100):
        url = f"{URL}?{query}&limit={limit}" if query else f"{URL}?limit={limit}"
        if cursor:
            url += f"&cursor={cursor}"
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= limit
        pages.append([v["id"] for v in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    pytest.fail("the cursor never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_cursor_pagination_walks_every_volunteer_exactly_once(client, tokens, make_volunteer, limit):
    made = [make_volunteer(name=f"V{i}")["id"] for i in range(7)]

    pages = walk_pages(client, tokens.dispatcher, "", limit)

    seen = [vid for page in pages for vid in page]
    assert len(seen) == len(set(seen)), "no volunteer appears twice"
    assert set(seen) == set(made)
    assert all(pages[:-1]), "only the last page may be empty"


def test_cursor_pagination_with_a_filter_walks_only_matching_volunteers_once(client, tokens, make_volunteer):
    on = {make_volunteer(name=f"On{i}", on_duty=True)["id"] for i in range(5)}
    for i in range(4):
        make_volunteer(name=f"Off{i}", on_duty=False)

    seen = [vid for page in walk_pages(client, tokens.dispatcher, "on_duty=true", 2) for vid in page]

    assert len(seen) == len(set(seen))
    assert set(seen) == on


def test_cursor_pagination_near_a_point_walks_every_volunteer_once_nearest_first(client, tokens, make_volunteer):
    made = [make_volunteer(location={"lat": 46.33 + i * 0.01, "lon": 132.21})["id"] for i in range(6)]

    pages = walk_pages(client, tokens.dispatcher, "near=46.33,132.21&radius_km=20", 4)

    seen = [vid for page in pages for vid in page]
    assert seen == made, "every volunteer once, nearest first"


def test_limit_caps_the_page_and_offers_a_cursor(client, tokens, make_volunteer):
    for i in range(3):
        make_volunteer(name=f"V{i}")

    body = client.get(f"{URL}?limit=2", headers=tokens.dispatcher).get_json()

    assert len(body["items"]) == 2
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("skill=flying", "skill"),
        ("on_duty=perhaps", "on_duty"),
        ("near=somewhere", "near"),
        ("near=46.33", "near"),
        ("near=91,0", "near"),
        ("near=0,181", "near"),
        ("near=nan,nan", "near"),
        ("near=46.33,132.21&radius_km=0", "radius_km"),
        ("near=46.33,132.21&radius_km=501", "radius_km"),
        ("near=46.33,132.21&radius_km=far", "radius_km"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
        ("colour=red", "colour"),
    ],
)
def test_list_rejects_invalid_query_arguments_naming_them(client, tokens, query, field):
    response = client.get(f"{URL}?{query}", headers=tokens.dispatcher)

    assert_rejects(response, field)
