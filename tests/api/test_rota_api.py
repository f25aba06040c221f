"""A grid's rota of captains and who is on call: PUT/GET /api/v1/grids/{grid}/rota, GET .../on-call."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service import clock as clock_module
from service.models import GRID_NAME_RULE
from tests.api.validation import assert_rejects
from tests.conftest import HOUSEHOLD, NEED, VOLUNTEER

ROTA = "/api/v1/grids/grid-2/rota"
ON_CALL = "/api/v1/grids/grid-2/on-call"


def local(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M"))  # the tests run with AIDLINE_TIMEZONE=UTC


@pytest.fixture
def captain(make_captain: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return make_captain("grid-2", name="Wang Captain", phone="+8613800000071")


@pytest.fixture
def second(make_captain: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return make_captain("grid-2", "grid-3", name="Liu Captain", phone="+8613800000072")


def every_day(volunteer_id: str, start: str = "00:00", end: str = "24:00") -> list[dict[str, str]]:
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return [{"weekday": d, "start": start, "end": end, "volunteer_id": volunteer_id} for d in days]


def test_a_dispatcher_sets_the_rota_and_reads_it_back(client: Any, tokens: Any, captain: Any, second: Any) -> None:
    body = {
        "shifts": [
            {"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": captain[0]["id"]},
            {"weekday": "mon", "start": "20:00", "end": "24:00", "volunteer_id": second[0]["id"]},
        ],
        "overrides": [{"from": "2026-12-24T18:00", "to": "2026-12-26T08:00", "volunteer_id": second[0]["id"]}],
    }

    put = client.put(ROTA, json=body, headers=tokens.dispatcher)
    got = client.get(ROTA, headers=tokens.dispatcher)

    assert put.status_code == 200, put.get_json()
    assert got.get_json() == put.get_json()
    assert got.get_json()["shifts"] == body["shifts"]
    assert got.get_json()["overrides"] == body["overrides"]
    assert got.get_json()["timezone"] == "UTC"
    assert got.get_json()["updated_by"].startswith("dispatcher:")


def test_a_grid_without_a_rota_reads_empty_and_has_nobody_on_call(client: Any, tokens: Any, captain: Any) -> None:
    assert client.get(ROTA, headers=tokens.dispatcher).get_json()["shifts"] == []
    assert client.get(ON_CALL, headers=tokens.dispatcher).get_json() == {
        "grid": "grid-2",
        "volunteer_id": None,
        "until": None,
        "source": None,
    }


def test_on_call_names_the_captain_and_when_the_cover_ends(
    client: Any, tokens: Any, clock: Any, captain: Any, second: Any
) -> None:
    now = clock.now()
    ends = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    body = {
        "shifts": every_day(second[0]["id"]),
        "overrides": [{"from": local(now - timedelta(hours=1)), "to": local(ends), "volunteer_id": captain[0]["id"]}],
    }
    assert client.put(ROTA, json=body, headers=tokens.dispatcher).status_code == 200

    answer = client.get(ON_CALL, headers=tokens.intake).get_json()

    assert answer == {
        "grid": "grid-2",
        "volunteer_id": captain[0]["id"],
        "until": clock_module.iso(ends),
        "source": "override",
    }
    clock.advance(3 * 3600)
    later = client.get(ON_CALL, headers=tokens.intake).get_json()
    assert (later["volunteer_id"], later["until"], later["source"]) == (second[0]["id"], None, "shift")


def test_a_captain_arranges_the_rota_of_their_own_grid_only(client: Any, captain: Any, second: Any) -> None:
    _, headers = captain
    body = {"shifts": every_day(captain[0]["id"], "08:00", "20:00")}

    assert client.put(ROTA, json=body, headers=headers).status_code == 200
    assert client.get(ROTA, headers=headers).status_code == 200
    assert client.put("/api/v1/grids/grid-3/rota", json={}, headers=headers).status_code == 403
    assert client.get("/api/v1/grids/grid-3/on-call", headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("caller", "put", "get", "on_call"),
    [("dispatcher", 200, 200, 200), ("ops", 403, 200, 200), ("intake", 403, 403, 200)],
)
def test_who_may_read_and_write_rotas(
    client: Any, tokens: Any, captain: Any, caller: str, put: int, get: int, on_call: int
) -> None:
    headers = getattr(tokens, caller)

    assert client.put(ROTA, json={}, headers=headers).status_code == put
    assert client.get(ROTA, headers=headers).status_code == get
    assert client.get(ON_CALL, headers=headers).status_code == on_call


def test_a_volunteer_token_may_not_see_the_rota(client: Any, tokens: Any, make_volunteer: Any) -> None:
    volunteer = make_volunteer()

    assert client.get(ON_CALL, headers=tokens.volunteer(volunteer["id"])).status_code == 403


def test_overlapping_shifts_are_refused_naming_the_later_shifts_start(
    client: Any, tokens: Any, captain: Any, second: Any
) -> None:
    body = {
        "shifts": [
            {"weekday": "tue", "start": "08:00", "end": "20:00", "volunteer_id": captain[0]["id"]},
            {"weekday": "tue", "start": "18:00", "end": "22:00", "volunteer_id": second[0]["id"]},
        ]
    }

    response = client.put(ROTA, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == {
        "shifts": {"1": {"start": ["Overlaps another shift on the same weekday."]}}
    }
    assert client.get(ROTA, headers=tokens.dispatcher).get_json()["shifts"] == []


def test_a_volunteer_who_is_not_a_captain_of_the_grid_is_refused_naming_the_field(
    client: Any, tokens: Any, make_volunteer: Any, make_captain: Any
) -> None:
    plain = make_volunteer()
    elsewhere, _ = make_captain("grid-3", phone="+8613800000073")
    body = {
        "shifts": [{"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": plain["id"]}],
        "overrides": [
            {"from": "2026-12-01T08:00", "to": "2026-12-01T09:00", "volunteer_id": elsewhere["id"]},
            {"from": "2026-12-02T08:00", "to": "2026-12-02T09:00", "volunteer_id": "vol_nobody"},
        ],
    }

    errors = client.put(ROTA, json=body, headers=tokens.dispatcher).get_json()["errors"]["json"]

    assert errors == {
        "shifts": {"0": {"volunteer_id": ["Not a captain of grid grid-2 (no captain token for it)."]}},
        "overrides": {
            "0": {"volunteer_id": ["Not a captain of grid grid-2 (no captain token for it)."]},
            "1": {"volunteer_id": ["No volunteer with this id."]},
        },
    }


def test_a_revoked_captain_token_no_longer_makes_a_captain(
    client: Any, tokens: Any, deps: Any, make_volunteer: Any
) -> None:
    volunteer = make_volunteer()
    headers = tokens.captain(volunteer["id"], "grid-2")
    deps.store.tokens.revoke(headers["Authorization"].split()[1])
    body = {"shifts": [{"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": volunteer["id"]}]}

    assert client.put(ROTA, json=body, headers=tokens.dispatcher).status_code == 422


@pytest.mark.parametrize(
    ("shift", "field"),
    [
        ({"weekday": "monday"}, "weekday"),
        ({"start": "8:00"}, "start"),
        ({"end": "24:30"}, "end"),
        ({"end": "07:00"}, "end"),
        ({"volunteer_id": ""}, "volunteer_id"),
    ],
)
def test_a_bad_shift_is_a_422_naming_the_field(
    client: Any, tokens: Any, captain: Any, shift: dict[str, str], field: str
) -> None:
    body = {"shifts": [{"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": captain[0]["id"], **shift}]}

    response = client.put(ROTA, json=body, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]["shifts"]["0"]) == [field]


def test_an_override_takes_from_and_to_as_local_times(client: Any, tokens: Any, captain: Any) -> None:
    bad = {"overrides": [{"from": "tomorrow", "to": "2026-12-01T09:00", "volunteer_id": captain[0]["id"]}]}

    response = client.put(ROTA, json=bad, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]["overrides"]["0"]) == ["from"]


# ---- which grids there are ------------------------------------------------------------------------------------


def test_on_call_for_a_grid_nothing_names_is_a_404_naming_it(client: Any, tokens: Any) -> None:
    response = client.get("/api/v1/grids/grid-99/on-call", headers=tokens.dispatcher)

    assert response.status_code == 404
    assert response.get_json()["message"] == "grid grid-99 not found"
    assert list(response.get_json()["errors"]) == ["grid"]


@pytest.mark.parametrize("named_by", ["rota", "captain", "household"])
def test_a_grid_named_by_a_rota_a_captain_or_a_household_is_known_without_anyone_on_call(
    client: Any, tokens: Any, make_captain: Any, make_household: Any, named_by: str
) -> None:
    if named_by == "rota":
        assert client.put("/api/v1/grids/grid-7/rota", json={}, headers=tokens.dispatcher).status_code == 200
    elif named_by == "captain":
        make_captain("grid-7", phone="+8613800000079")
    else:
        make_household(grid="grid-7")

    response = client.get("/api/v1/grids/grid-7/on-call", headers=tokens.ops)

    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["grid"], response.get_json()["volunteer_id"]) == ("grid-7", None)


def test_a_revoked_captain_no_longer_names_their_grid(client: Any, tokens: Any, deps: Any, make_captain: Any) -> None:
    _, headers = make_captain("grid-7", phone="+8613800000079")
    deps.store.tokens.revoke(headers["Authorization"].split()[1])

    assert client.get("/api/v1/grids/grid-7/on-call", headers=tokens.ops).status_code == 404


def test_a_rota_for_a_grid_name_with_a_space_is_a_422_naming_the_grid(client: Any, tokens: Any) -> None:
    response = client.put("/api/v1/grids/grid%202/rota", json={}, headers=tokens.dispatcher)

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"path": {"grid": [GRID_NAME_RULE]}}


@pytest.mark.parametrize("grid", ["grid 2", " grid-2", "grid-2,grid-3", "grid/2", "g" * 51, ""])
def test_a_grid_is_named_in_one_form_wherever_it_is_written_or_asked_for(
    client: Any, tokens: Any, make_volunteer: Any, grid: str
) -> None:
    volunteer = make_volunteer()
    headers = tokens.dispatcher

    assert_rejects(client.post("/api/v1/volunteers", json={**VOLUNTEER, "grid": grid}, headers=headers), "grid")
    assert_rejects(client.patch(f"/api/v1/volunteers/{volunteer['id']}", json={"grid": grid}, headers=headers), "grid")
    assert_rejects(client.post("/api/v1/households", json={**HOUSEHOLD, "grid": grid}, headers=headers), "grid")
    assert_rejects(client.post("/api/v1/needs", json={**NEED, "grid": grid}, headers=headers), "grid")
    assert_rejects(client.get("/api/v1/volunteers", query_string={"grid": grid}, headers=headers), "grid")
    assert_rejects(client.get("/api/v1/households", query_string={"grid": grid}, headers=headers), "grid")


def test_a_grid_name_may_be_chinese(client: Any, tokens: Any) -> None:
    response = client.post("/api/v1/households", json={**HOUSEHOLD, "grid": "三网格"}, headers=tokens.dispatcher)

    assert response.status_code == 201, response.get_json()
    assert client.get("/api/v1/grids/三网格/on-call", headers=tokens.ops).status_code == 200
