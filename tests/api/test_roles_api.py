"""The role matrix: who may call what, who sees which records, and who sees private details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from service.cli import create_token
from service.models import Role
from tests.conftest import NEED, VOLUNTEER

NEW_VOLUNTEER = {**VOLUNTEER, "channels": [], "name": "Zhao Lei", "phone": "+8613800000077"}


@dataclass
class World:
    """Two volunteers, a need sent by an intake client, and a header set per caller."""

    volunteer_id: str
    other_volunteer_id: str
    need_id: str
    headers: dict[str, dict[str, str]]
    raw_tokens: dict[str, str]


@pytest.fixture
def world(client, tokens, deps, make_volunteer, make_need) -> World:
    v = make_volunteer(on_duty=True)
    other = make_volunteer(on_duty=True, name="Sun Wei", phone="+8613800000002")
    need = make_need(headers=tokens.intake)
    other_intake = create_token(deps.store, Role.INTAKE, None)
    revoked = create_token(deps.store, Role.DISPATCHER, None)
    deps.store.tokens.revoke(revoked)
    raw = {
        "dispatcher": tokens.token(Role.DISPATCHER),
        "ops": tokens.token(Role.OPS),
        "intake": tokens.token(Role.INTAKE),
        "other_intake": other_intake,
        "volunteer_self": tokens.token(Role.VOLUNTEER, v["id"]),
        "volunteer_other": tokens.token(Role.VOLUNTEER, other["id"]),
        "revoked": revoked,
    }
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in raw.items()}
    headers["none"] = {}
    headers["garbage"] = {"Authorization": "Bearer ald_not-a-real-token"}
    return World(v["id"], other["id"], need["id"], headers, raw)


CALLERS = ["dispatcher", "ops", "intake", "other_intake", "volunteer_self", "volunteer_other"]


def allowed(**codes: int) -> dict[str, int]:
    """Expected status per caller: the ones named, and 403 for every other role."""
    return {caller: codes.get(caller, 403) for caller in CALLERS}


SELF_OR_DISPATCHER = allowed(dispatcher=200, volunteer_self=200)
DISPATCHER_ONLY = allowed(dispatcher=200)
# the need was sent by `intake` and offered to nobody: others who may call the endpoint cannot see it (404)
READ_NEED = allowed(dispatcher=200, ops=200, intake=200, other_intake=404, volunteer_self=404, volunteer_other=404)

# Endpoint -> (method, path, body, {caller: expected status}); {vol} is volunteer_self's own record.
ENDPOINTS: dict[str, tuple[str, str, dict | None, dict[str, int]]] = {
    "catalog": ("GET", "/api/v1/catalog", None, dict.fromkeys(CALLERS, 200)),
    "list-volunteers": ("GET", "/api/v1/volunteers", None, allowed(dispatcher=200, ops=200)),
    "register-volunteer": ("POST", "/api/v1/volunteers", NEW_VOLUNTEER, allowed(dispatcher=201)),
    "read-volunteer": ("GET", "/api/v1/volunteers/{vol}", None, allowed(dispatcher=200, ops=200, volunteer_self=200)),
    "update-volunteer": ("PATCH", "/api/v1/volunteers/{vol}", {"name": "Li Mei"}, SELF_OR_DISPATCHER),
    "volunteer-location": (
        "PUT", "/api/v1/volunteers/{vol}/location", {"lat": 46.4, "lon": 132.3}, SELF_OR_DISPATCHER
    ),
    "volunteer-availability": ("PUT", "/api/v1/volunteers/{vol}/availability", {"on_duty": False}, SELF_OR_DISPATCHER),
    "volunteer-offers": ("GET", "/api/v1/volunteers/{vol}/offers", None, SELF_OR_DISPATCHER),
    "list-needs": ("GET", "/api/v1/needs", None, allowed(dispatcher=200, ops=200, intake=200, other_intake=200)),
    "submit-need": ("POST", "/api/v1/needs", NEED, allowed(dispatcher=201, intake=201, other_intake=201)),
    "read-need": ("GET", "/api/v1/needs/{need}", None, READ_NEED),
    "need-events": ("GET", "/api/v1/needs/{need}/events", None, READ_NEED),
    "cancel-need": (
        "POST", "/api/v1/needs/{need}/cancel", {"reason": "duplicate"},
        allowed(dispatcher=200, intake=200, other_intake=404),
    ),
    "assign-need": ("POST", "/api/v1/needs/{need}/assign", {"volunteer_id": "{vol}"}, DISPATCHER_ONLY),
    "rematch-need": ("POST", "/api/v1/needs/{need}/rematch", None, DISPATCHER_ONLY),
    "defer-need": ("POST", "/api/v1/needs/{need}/defer", {"reason": "road closed"}, DISPATCHER_ONLY),
    # a queued need cannot be reopened: the dispatcher gets past the role check to the 409
    "reopen-need": ("POST", "/api/v1/needs/{need}/reopen", None, allowed(dispatcher=409)),
    # nobody is assigned: the dispatcher reaches the lifecycle (409), volunteers cannot see the need (404)
    "report-progress": (
        "POST", "/api/v1/needs/{need}/progress", {"status": "en_route"},
        allowed(dispatcher=409, volunteer_self=404, volunteer_other=404),
    ),
    "read-offer": (
        "GET", "/api/v1/offers/off_doesnotexist", None,
        allowed(dispatcher=404, volunteer_self=404, volunteer_other=404),
    ),
    "accept-offer": (
        "POST", "/api/v1/offers/off_doesnotexist/accept", None,
        allowed(dispatcher=404, volunteer_self=404, volunteer_other=404),
    ),
    "decline-offer": (
        "POST", "/api/v1/offers/off_doesnotexist/decline", None,
        allowed(dispatcher=404, volunteer_self=404, volunteer_other=404),
    ),
}  # fmt: skip

MATRIX = [(endpoint, caller) for endpoint in ENDPOINTS for caller in CALLERS]


def call(client: Any, world: World, endpoint: str, headers: dict[str, str]) -> Any:
    method, path, body, _ = ENDPOINTS[endpoint]
    url = path.format(vol=world.volunteer_id, need=world.need_id)
    if body is not None:
        body = {k: (v.format(vol=world.volunteer_id) if isinstance(v, str) else v) for k, v in body.items()}
        return client.open(url, method=method, json=body, headers=headers)
    return client.open(url, method=method, headers=headers)


@pytest.mark.parametrize(("endpoint", "caller"), MATRIX, ids=[f"{e}-by-{c}" for e, c in MATRIX])
def test_role_matrix(client, world, endpoint, caller):
    expected = ENDPOINTS[endpoint][3][caller]

    response = call(client, world, endpoint, world.headers[caller])

    assert response.status_code == expected, response.get_json()
    if expected >= 400:
        assert response.get_json()["code"] == expected


@pytest.mark.parametrize("caller", ["none", "garbage", "revoked"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_endpoint_needs_a_valid_token(client, world, endpoint, caller):
    response = call(client, world, endpoint, world.headers[caller])

    assert response.status_code == 401, response.get_json()
    assert response.get_json()["code"] == 401


def test_a_token_stops_working_once_revoked(client, deps, tokens):
    token = create_token(deps.store, Role.DISPATCHER, None)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/needs", headers=headers).status_code == 200

    assert deps.store.tokens.revoke(token) is True

    assert client.get("/api/v1/needs", headers=headers).status_code == 401
    assert client.get("/api/v1/needs", headers=tokens.dispatcher).status_code == 200, "other tokens keep working"


def test_a_volunteer_token_stops_working_once_revoked(client, deps, make_volunteer):
    v = make_volunteer()
    token = create_token(deps.store, Role.VOLUNTEER, v["id"])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/volunteers/{v['id']}", headers=headers).status_code == 200

    deps.store.tokens.revoke(token)

    assert client.get(f"/api/v1/volunteers/{v['id']}", headers=headers).status_code == 401


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_case_insensitive(client, tokens, scheme):
    headers = {"Authorization": f"{scheme} {tokens.token(Role.DISPATCHER)}"}

    assert client.get("/api/v1/needs", headers=headers).status_code == 200


def test_a_token_is_not_accepted_in_the_query_string(client, tokens):
    response = client.get(f"/api/v1/needs?access_token={tokens.token(Role.DISPATCHER)}")

    assert response.status_code == 401


# ---- no token needed --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/openapi.json", "/healthz", "/api/docs"])
def test_public_documents_need_no_token(client, url):
    assert client.get(url).status_code == 200


def test_the_catalog_needs_a_token(client, tokens):
    assert client.get("/api/v1/catalog").status_code == 401
    assert client.get("/api/v1/catalog", headers=tokens.ops).status_code == 200


# ---- intake sees only its own needs -----------------------------------------------------------------


def test_intake_token_reads_the_need_it_created(client, tokens, make_need):
    need = make_need(headers=tokens.intake)

    response = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.intake)

    assert response.status_code == 200
    assert response.get_json()["id"] == need["id"]


def test_intake_token_cannot_read_another_intakes_need(client, world):
    response = client.get(f"/api/v1/needs/{world.need_id}", headers=world.headers["other_intake"])

    assert response.status_code == 404
    assert world.need_id in response.get_json()["message"] or "not found" in response.get_json()["message"]


def test_intake_token_cannot_read_a_dispatchers_need(client, tokens, make_need):
    need = make_need()

    assert client.get(f"/api/v1/needs/{need['id']}", headers=tokens.intake).status_code == 404
    assert client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.intake).status_code == 404


def test_intake_token_cannot_cancel_another_intakes_need(client, world):
    response = client.post(
        f"/api/v1/needs/{world.need_id}/cancel", json={"reason": "not mine"}, headers=world.headers["other_intake"]
    )

    assert response.status_code == 404
    status = client.get(f"/api/v1/needs/{world.need_id}", headers=world.headers["dispatcher"]).get_json()["status"]
    assert status == "queued"


def test_intake_list_shows_only_the_needs_that_intake_created(client, world, make_need, tokens):
    own_second = make_need(headers=tokens.intake)
    theirs = make_need(headers=world.headers["other_intake"])
    dispatchers = make_need()

    mine = {n["id"] for n in client.get("/api/v1/needs", headers=tokens.intake).get_json()["items"]}
    other = {n["id"] for n in client.get("/api/v1/needs", headers=world.headers["other_intake"]).get_json()["items"]}
    everything = {n["id"] for n in client.get("/api/v1/needs", headers=tokens.dispatcher).get_json()["items"]}

    assert mine == {world.need_id, own_second["id"]}
    assert other == {theirs["id"]}
    assert everything == {world.need_id, own_second["id"], theirs["id"], dispatchers["id"]}


def test_intake_list_filters_and_pages_stay_within_its_own_needs(client, world, make_need, tokens):
    for _ in range(3):
        make_need(headers=world.headers["other_intake"], priority="high")
    mine = [make_need(headers=tokens.intake, priority="high")["id"] for _ in range(2)]

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        url = "/api/v1/needs?priority=high&limit=1" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=tokens.intake).get_json()
        seen += [n["id"] for n in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted([*mine, world.need_id]), "the world's need is the intake's and high too"


def test_ops_sees_every_need_in_lists(client, world, make_need, tokens):
    other = make_need(headers=world.headers["other_intake"])

    ids = {n["id"] for n in client.get("/api/v1/needs", headers=tokens.ops).get_json()["items"]}

    assert ids == {world.need_id, other["id"]}


# ---- volunteers act only on themselves --------------------------------------------------------------


def test_volunteer_token_reads_and_updates_only_itself(client, world):
    own = world.headers["volunteer_self"]
    other_url = f"/api/v1/volunteers/{world.other_volunteer_id}"

    assert client.get(f"/api/v1/volunteers/{world.volunteer_id}", headers=own).status_code == 200
    assert client.get(other_url, headers=own).status_code == 403
    assert client.patch(other_url, json={"name": "Hijacked"}, headers=own).status_code == 403
    assert client.put(f"{other_url}/location", json={"lat": 1, "lon": 1}, headers=own).status_code == 403
    assert client.put(f"{other_url}/availability", json={"on_duty": False}, headers=own).status_code == 403
    after = client.get(other_url, headers=world.headers["dispatcher"]).get_json()
    assert after["name"] != "Hijacked"
    assert after["on_duty"] is True


def test_volunteer_token_for_an_unknown_volunteer_id_is_not_a_server_error(client, deps):
    token = create_token(deps.store, Role.VOLUNTEER, "vol_gone")

    response = client.get("/api/v1/volunteers/vol_gone", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 404


# ---- private details ---------------------------------------------------------------------------------


def test_dispatcher_sees_the_requesters_phone_and_exact_address(client, world):
    need = client.get(f"/api/v1/needs/{world.need_id}", headers=world.headers["dispatcher"]).get_json()

    assert need["requester"] == NEED["requester"]
    assert need["address"] == NEED["address"]
    assert need["location"] == NEED["location"]
    assert need["tracking_code"]


@pytest.mark.parametrize("caller", ["intake", "ops"])
def test_intake_and_ops_do_not_see_the_requesters_phone_or_address(client, world, caller):
    response = client.get(f"/api/v1/needs/{world.need_id}", headers=world.headers[caller])

    need = response.get_json()
    assert need["requester"]["phone"] is None
    assert need["requester"]["name"] == NEED["requester"]["name"]
    assert need["address"] is None
    text = response.get_data(as_text=True)
    assert NEED["requester"]["phone"] not in text
    assert NEED["address"] not in text


@pytest.mark.parametrize("caller", ["intake", "ops"])
def test_private_details_are_hidden_in_lists_too(client, world, caller):
    response = client.get("/api/v1/needs", headers=world.headers[caller])

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [n["id"] for n in items] == [world.need_id]
    assert items[0]["requester"]["phone"] is None
    assert items[0]["address"] is None
    assert NEED["requester"]["phone"] not in response.get_data(as_text=True)


def test_private_details_are_hidden_in_the_answer_to_the_intake_that_sent_the_need(client, tokens):
    response = client.post("/api/v1/needs", json=NEED, headers=tokens.intake)

    need = response.get_json()
    assert need["requester"]["phone"] is None
    assert need["address"] is None
    assert need["tracking_code"], "the intake client must give the requester the tracking code"


def test_tracking_code_is_shown_to_dispatchers_and_the_sending_intake_only(client, world):
    url = f"/api/v1/needs/{world.need_id}"

    assert client.get(url, headers=world.headers["dispatcher"]).get_json().get("tracking_code")
    assert client.get(url, headers=world.headers["intake"]).get_json().get("tracking_code")
    assert "tracking_code" not in client.get(url, headers=world.headers["ops"]).get_json()


def test_a_volunteer_sees_private_details_only_after_accepting(client, tokens, make_volunteer, make_need, work):
    v = make_volunteer(on_duty=True)
    need = make_need()
    work()
    own = tokens.volunteer(v["id"])
    offers = client.get(f"/api/v1/volunteers/{v['id']}/offers", headers=own).get_json()["items"]
    assert len(offers) == 1, offers

    before = client.get(f"/api/v1/needs/{need['id']}", headers=own)
    linked = client.get(f"/api/v1/offers/{offers[0]['id']}", headers=own)
    others = client.get(f"/api/v1/offers/{offers[0]['id']}", headers=tokens.volunteer(make_volunteer()["id"]))
    accepted = client.post(f"/api/v1/offers/{offers[0]['id']}/accept", headers=own)
    after = client.get(f"/api/v1/needs/{need['id']}", headers=own)

    assert before.status_code == 200, "an offered volunteer may read the need"
    assert before.get_json()["address"] is None
    assert before.get_json()["requester"]["phone"] is None
    assert linked.status_code == 200 and linked.get_json() == offers[0], "the link in the offer's message"
    assert others.status_code == 404, "another volunteer's offer is not theirs to see"
    assert accepted.status_code == 200, accepted.get_json()
    assert after.get_json()["address"] == NEED["address"]
    assert after.get_json()["requester"]["phone"] == NEED["requester"]["phone"]
    assert "tracking_code" not in after.get_json()


def test_volunteer_records_are_not_visible_to_intake(client, world):
    assert client.get(f"/api/v1/volunteers/{world.volunteer_id}", headers=world.headers["intake"]).status_code == 403
