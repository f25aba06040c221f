"""Dispatch against a real Redis: offers, declines, expiry, rings, escalation and the need lifecycle.

Needs and volunteers are made through the API; queued jobs run in a real RQ worker (`work`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service import clock, dispatch, lifecycle, offers
from service.lifecycle import Action
from service.models import NeedStatus as S
from service.store import Refusal, Refused
from tests.conftest import NEED, VOLUNTEER

NEED_LAT, NEED_LON = NEED["location"]["lat"], NEED["location"]["lon"]
KM_PER_DEGREE_LAT = 111.19
REQUESTER_PHONE = NEED["requester"]["phone"]


def north(km: float) -> dict[str, float]:
    """A location `km` kilometres due north of the default need."""
    return {"lat": NEED_LAT + km / KM_PER_DEGREE_LAT, "lon": NEED_LON}


# ---- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def volunteer_at(make_volunteer: Any) -> Any:
    """An on-duty volunteer `km` north of the need (default skills: plumbing, driving; capacity 2)."""

    def _make(km: float, **overrides: Any) -> dict[str, Any]:
        body = {"on_duty": True, "location": north(km), "phone": f"+86138{int(km * 1000) % 10**8:08d}"}
        return make_volunteer(**{**body, **overrides})

    return _make


@pytest.fixture
def get_volunteer(client: Any, tokens: Any) -> Any:
    def _get(volunteer_id: str) -> dict[str, Any]:
        response = client.get(f"/api/v1/volunteers/{volunteer_id}", headers=tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return _get


def pending(need: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in need["assignments"] if a["status"] == "pending"]


def live_volunteers(need: dict[str, Any]) -> list[str]:
    return [a["volunteer_id"] for a in need["assignments"]]


def the_pending_offer(need: dict[str, Any]) -> dict[str, Any]:
    offers = pending(need)
    assert len(offers) == 1, need["assignments"]
    return offers[0]


@pytest.fixture
def accept(client: Any, tokens: Any) -> Any:
    def _accept(offer: dict[str, Any]) -> dict[str, Any]:
        response = client.post(
            f"/api/v1/offers/{offer['offer_id']}/accept", headers=tokens.volunteer(offer["volunteer_id"])
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return _accept


@pytest.fixture
def progress(client: Any, tokens: Any) -> Any:
    def _progress(need_id: str, status: str, headers: dict[str, str]) -> Any:
        return client.post(f"/api/v1/needs/{need_id}/progress", json={"status": status}, headers=headers)

    return _progress


@pytest.fixture
def assigned(volunteer_at: Any, make_need: Any, work: Any, get_need: Any, accept: Any) -> Any:
    """A need offered to and accepted by a volunteer 1 km away: (need, volunteer)."""

    def _make(**need_overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        volunteer = volunteer_at(1.0)
        need = make_need(**need_overrides)
        work()
        accept(the_pending_offer(get_need(need["id"])))
        need = get_need(need["id"])
        assert need["status"] == "assigned"
        return need, volunteer

    return _make


def make_past_due(deps: Any, offer_id: str) -> None:
    """Move time past an offer's accept-by time, as if its window had run out."""
    deps.clock.set(clock.parse(deps.store.offers.get(offer_id).expires_at) + timedelta(seconds=5))


# ---- matching ----------------------------------------------------------------------------------


def test_nearest_eligible_volunteer_gets_the_offer(volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(6.0)
    nearest = volunteer_at(1.0)
    volunteer_at(3.0)
    need = make_need()

    work()

    got = get_need(need["id"])
    assert got["status"] == "offered"
    offer = the_pending_offer(got)
    assert offer["volunteer_id"] == nearest["id"]
    assert offer["distance_km"] == pytest.approx(1.0, abs=0.1)


def test_volunteer_without_the_required_skill_is_passed_over(volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(0.5, skills=["plumbing"])  # water delivery needs driving
    driver = volunteer_at(4.0, skills=["driving"])
    need = make_need()

    work()

    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == driver["id"]


def test_off_duty_volunteer_is_passed_over(volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(0.5, on_duty=False)
    on_duty = volunteer_at(4.0)
    need = make_need()

    work()

    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == on_duty["id"]


def test_volunteer_at_capacity_with_a_pending_offer_is_not_offered_a_second_need(
    volunteer_at, make_need, work, get_need, get_volunteer
) -> None:
    single = volunteer_at(0.5, capacity=1)
    other = volunteer_at(4.0, capacity=1)
    first = make_need()
    work()
    assert the_pending_offer(get_need(first["id"]))["volunteer_id"] == single["id"]
    assert get_volunteer(single["id"])["load"] == 1

    second = make_need()
    work()

    assert the_pending_offer(get_need(second["id"]))["volunteer_id"] == other["id"]
    assert get_volunteer(single["id"])["load"] == 1


def test_decline_offers_the_next_nearest_volunteer(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
) -> None:
    nearest = volunteer_at(1.0)
    second = volunteer_at(3.0)
    volunteer_at(6.0)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))

    response = client.post(
        f"/api/v1/offers/{offer['offer_id']}/decline",
        json={"reason": "car broke"},
        headers=tokens.volunteer(nearest["id"]),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "declined"
    assert get_volunteer(nearest["id"])["load"] == 0
    work()

    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert the_pending_offer(got)["volunteer_id"] == second["id"]
    assert nearest["id"] not in live_volunteers(got)


def test_another_volunteer_cannot_decline_someone_elses_offer(client, tokens, volunteer_at, make_need, work, get_need):
    volunteer_at(1.0)
    outsider = volunteer_at(3.0, on_duty=False)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))

    response = client.post(f"/api/v1/offers/{offer['offer_id']}/decline", headers=tokens.volunteer(outsider["id"]))

    assert response.status_code == 404
    assert the_pending_offer(get_need(need["id"]))["offer_id"] == offer["offer_id"]


def test_expired_offer_offers_the_next_nearest_volunteer(deps, volunteer_at, make_need, work, get_need) -> None:
    nearest = volunteer_at(1.0)
    second = volunteer_at(3.0)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))
    assert offer["volunteer_id"] == nearest["id"]

    make_past_due(deps, offer["offer_id"])
    assert offers.expire_offer(deps=deps, offer_id=offer["offer_id"]) is True
    assert deps.store.offers.get(offer["offer_id"]).status == "expired"
    work()

    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == second["id"]


def test_offer_is_not_expired_before_its_time(deps, volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(1.0)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))

    assert offers.expire_offer(deps=deps, offer_id=offer["offer_id"]) is False
    assert the_pending_offer(get_need(need["id"]))["offer_id"] == offer["offer_id"]


def test_accepting_a_past_due_offer_is_refused(client, tokens, deps, volunteer_at, make_need, work, get_need) -> None:
    volunteer = volunteer_at(1.0)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))
    make_past_due(deps, offer["offer_id"])

    response = client.post(f"/api/v1/offers/{offer['offer_id']}/accept", headers=tokens.volunteer(volunteer["id"]))

    assert response.status_code == 409
    assert "expired" in response.get_json()["message"]
    assert get_need(need["id"])["status"] == "offered"


def test_search_rings_expand_to_find_a_volunteer_8_km_away(volunteer_at, make_need, work, get_need) -> None:
    far = volunteer_at(8.0)
    need = make_need()

    work()

    offer = the_pending_offer(get_need(need["id"]))
    assert offer["volunteer_id"] == far["id"]
    assert offer["distance_km"] == pytest.approx(8.0, abs=0.2)


def test_volunteer_beyond_the_kinds_radius_is_not_offered(volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(15.0, skills=["general"])  # meal delivery searches 10 km at most
    need = make_need(kind="meal_delivery")

    work()

    got = get_need(need["id"])
    assert got["status"] == "escalated"
    assert got["assignments"] == []


def test_a_dispatcher_widens_a_needs_radius_to_reach_a_remote_volunteer(
    volunteer_at, make_need, work, get_need
) -> None:
    far = volunteer_at(15.0, skills=["general"])
    need = make_need(kind="meal_delivery", radius_km=20)

    work()

    got = get_need(need["id"])
    assert got["radius_km"] == 20
    assert the_pending_offer(got)["volunteer_id"] == far["id"]


def test_a_needs_radius_is_capped_at_the_services_maximum(make_need, deps) -> None:
    need = make_need(kind="meal_delivery", radius_km=400)

    assert need["radius_km"] == deps.settings.max_radius_km


def test_need_nobody_fits_is_escalated_at_once(client, tokens, volunteer_at, make_need, work, get_need) -> None:
    volunteer_at(1.0, skills=["plumbing"])  # no driving
    need = make_need()

    work()

    got = get_need(need["id"])
    assert got["status"] == "escalated"
    assert got["status_reason"]
    listed = client.get("/api/v1/needs?status=escalated", headers=tokens.dispatcher).get_json()
    assert [n["id"] for n in listed["items"]] == [need["id"]]


def test_escalated_need_is_matched_again_when_a_fitting_volunteer_comes_on_duty(
    client, tokens, volunteer_at, make_need, work, get_need
) -> None:
    volunteer = volunteer_at(2.0, on_duty=False)
    need = make_need()
    work()
    assert get_need(need["id"])["status"] == "escalated"

    response = client.put(
        f"/api/v1/volunteers/{volunteer['id']}/availability",
        json={"on_duty": True},
        headers=tokens.volunteer(volunteer["id"]),
    )
    assert response.status_code == 200, response.get_json()
    work()

    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert the_pending_offer(got)["volunteer_id"] == volunteer["id"]


def test_escalated_need_is_matched_again_when_a_volunteer_finishes_a_task_and_frees_capacity(
    client, tokens, assigned, make_need, work, get_need, progress
) -> None:
    first, volunteer = assigned()  # capacity 2: one task held
    client.patch(f"/api/v1/volunteers/{volunteer['id']}", json={"capacity": 1}, headers=tokens.dispatcher)
    waiting = make_need()
    work()
    assert get_need(waiting["id"])["status"] == "escalated"

    assert progress(first["id"], "done", tokens.volunteer(volunteer["id"])).status_code == 200
    work()

    got = get_need(waiting["id"])
    assert got["status"] == "offered"
    assert the_pending_offer(got)["volunteer_id"] == volunteer["id"]


def test_escalated_need_is_not_offered_to_a_volunteer_without_its_skill(
    client, tokens, volunteer_at, make_need, work, get_need
) -> None:
    volunteer = volunteer_at(2.0, on_duty=False, skills=["plumbing"])
    need = make_need()
    work()

    client.put(
        f"/api/v1/volunteers/{volunteer['id']}/availability",
        json={"on_duty": True},
        headers=tokens.volunteer(volunteer["id"]),
    )
    work()

    got = get_need(need["id"])
    assert got["status"] == "escalated"
    assert got["assignments"] == []


def test_need_for_two_gets_two_distinct_volunteers_and_is_assigned_only_after_both_accept(
    volunteer_at, make_need, work, get_need, accept
) -> None:
    volunteer_at(1.0)
    volunteer_at(2.0)
    volunteer_at(5.0)
    need = make_need(volunteers_needed=2)
    work()

    offers = pending(get_need(need["id"]))
    assert len(offers) == 2
    assert len({o["volunteer_id"] for o in offers}) == 2

    accept(offers[0])
    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert got["committed_deadline"] is None

    accept(offers[1])
    got = get_need(need["id"])
    assert got["status"] == "assigned"
    assert sorted(a["status"] for a in got["assignments"]) == ["accepted", "accepted"]
    assert got["committed_deadline"] is not None


def test_going_off_duty_withdraws_pending_offers_and_the_need_goes_to_the_next(
    client, tokens, deps, volunteer_at, make_need, work, get_need, get_volunteer
) -> None:
    nearest = volunteer_at(1.0)
    second = volunteer_at(3.0)
    need = make_need()
    work()
    offer = the_pending_offer(get_need(need["id"]))
    assert offer["volunteer_id"] == nearest["id"]

    response = client.put(
        f"/api/v1/volunteers/{nearest['id']}/availability",
        json={"on_duty": False},
        headers=tokens.volunteer(nearest["id"]),
    )
    assert response.status_code == 200

    assert deps.store.offers.get(offer["offer_id"]).status == "withdrawn"
    assert get_volunteer(nearest["id"])["load"] == 0
    work()
    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == second["id"]


# ---- dispatcher actions ------------------------------------------------------------------------


def test_dispatcher_assigns_a_volunteer_directly(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
):
    need = make_need()
    work()
    assert get_need(need["id"])["status"] == "escalated"
    volunteer = volunteer_at(12.0)  # beyond the need's radius: the dispatcher knows they can come

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": volunteer["id"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 200, response.get_json()
    got = response.get_json()
    assert got["status"] == "assigned"
    assert [(a["volunteer_id"], a["status"]) for a in got["assignments"]] == [(volunteer["id"], "accepted")]
    assert get_volunteer(volunteer["id"])["load"] == 1


def test_dispatcher_assignment_takes_the_place_of_a_pending_offer(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
):
    offered = volunteer_at(1.0)
    chosen = volunteer_at(4.0)
    need = make_need()
    work()
    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == offered["id"]

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": chosen["id"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 200, response.get_json()
    got = response.get_json()
    assert got["status"] == "assigned"
    assert [(a["volunteer_id"], a["status"]) for a in got["assignments"]] == [(chosen["id"], "accepted")]
    assert get_volunteer(offered["id"])["load"] == 0


def test_dispatcher_cannot_assign_a_volunteer_beyond_capacity(client, tokens, volunteer_at, make_need, work, get_need):
    busy = volunteer_at(1.0, capacity=1)
    first = make_need()
    work()
    assert the_pending_offer(get_need(first["id"]))["volunteer_id"] == busy["id"]
    second = make_need(skills=["plumbing"])
    work()  # escalates: busy was the only one
    assert get_need(second["id"])["status"] == "escalated"

    response = client.post(
        f"/api/v1/needs/{second['id']}/assign", json={"volunteer_id": busy["id"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 409
    assert "capacity" in response.get_json()["message"]
    assert get_need(second["id"])["status"] == "escalated"


def test_dispatcher_cannot_assign_a_volunteer_who_is_off_duty(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
):
    offered = volunteer_at(1.0)
    resting = volunteer_at(2.0, on_duty=False)
    need = make_need()
    work()

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": resting["id"]}, headers=tokens.dispatcher
    )

    assert response.status_code == 409, response.get_json()
    assert response.get_json()["message"] == f"{resting['id']} is off duty"
    assert response.get_json()["errors"] == {"json": {"volunteer_id": [f"{resting['id']} is off duty"]}}
    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == offered["id"], "the pending offer stays"
    assert get_volunteer(resting["id"])["load"] == 0


def test_dispatcher_cannot_assign_a_volunteer_without_the_skills_of_an_open_role(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
):
    need = make_need(skills=["plumbing"])
    work()
    assert get_need(need["id"])["status"] == "escalated"
    helper = volunteer_at(1.0, skills=["general"])

    anyhow = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": helper["id"]}, headers=tokens.dispatcher
    )
    as_role = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": helper["id"], "role": 0}, headers=tokens.dispatcher
    )

    assert anyhow.status_code == 409, anyhow.get_json()
    assert anyhow.get_json()["message"] == f"{helper['id']} lacks the skills of every open role: plumbing"
    assert list(anyhow.get_json()["errors"]["json"]) == ["volunteer_id"]
    assert as_role.status_code == 409, as_role.get_json()
    assert as_role.get_json()["message"] == f"{helper['id']} lacks the skills of role 0: plumbing"
    assert get_need(need["id"])["status"] == "escalated"
    assert get_volunteer(helper["id"])["load"] == 0


def test_assigning_to_a_role_the_need_does_not_have_is_422_naming_the_role(client, tokens, volunteer_at, make_need):
    need = make_need()
    volunteer = volunteer_at(1.0)

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign",
        json={"volunteer_id": volunteer["id"], "role": 3},
        headers=tokens.dispatcher,
    )

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"] == {"json": {"role": ["The need has roles 0..0."]}}


def test_the_assignment_step_itself_refuses_a_volunteer_gone_off_duty_or_without_the_skills(
    deps, volunteer_at, make_need, get_need
):
    need = deps.store.needs.get(make_need(skills=["plumbing"])["id"])
    resting = volunteer_at(1.0, on_duty=False)
    helper = volunteer_at(2.0, skills=["general"])

    with pytest.raises(Refused) as off:
        offers.assign_directly(deps=deps, need=need, volunteer_id=resting["id"], actor="dispatcher")
    with pytest.raises(Refused) as unskilled:
        offers.assign_directly(deps=deps, need=need, volunteer_id=helper["id"], actor="dispatcher")

    assert off.value.reason is Refusal.OFF_DUTY
    assert (unskilled.value.reason, unskilled.value.detail) == (Refusal.LACKS_SKILLS, "plumbing")
    assert get_need(need.id)["assignments"] == []


def test_dispatcher_rematch_withdraws_pending_offers_and_searches_again(
    client, tokens, deps, volunteer_at, make_need, work, get_need
) -> None:
    volunteer = volunteer_at(1.0)
    need = make_need()
    work()
    old = the_pending_offer(get_need(need["id"]))

    response = client.post(f"/api/v1/needs/{need['id']}/rematch", headers=tokens.dispatcher)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "matching"
    assert deps.store.offers.get(old["offer_id"]).status == "withdrawn"
    work()
    new = the_pending_offer(get_need(need["id"]))
    assert new["offer_id"] != old["offer_id"]
    assert new["volunteer_id"] == volunteer["id"]  # volunteers tried before are searched again


def test_rematch_of_an_assigned_need_replaces_its_volunteer_with_the_next_nearest(
    client, tokens, assigned, volunteer_at, work, get_need, get_volunteer, progress
) -> None:
    need, first = assigned()
    second = volunteer_at(3.0)

    response = client.post(f"/api/v1/needs/{need['id']}/rematch", headers=tokens.dispatcher)
    assert response.status_code == 200, response.get_json()
    work()

    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert [(a["volunteer_id"], a["status"]) for a in got["assignments"]] == [(second["id"], "pending")]
    assert get_volunteer(first["id"])["load"] == 0
    assert progress(need["id"], "en_route", tokens.volunteer(first["id"])).status_code == 403


def test_dispatcher_defers_and_reopens_a_need(client, tokens, volunteer_at, make_need, work, get_need, get_volunteer):
    volunteer = volunteer_at(1.0)
    need = make_need()
    work()
    assert get_need(need["id"])["status"] == "offered"

    response = client.post(
        f"/api/v1/needs/{need['id']}/defer", json={"reason": "road closed by snow"}, headers=tokens.dispatcher
    )
    assert response.status_code == 200, response.get_json()
    deferred = response.get_json()
    assert deferred["status"] == "deferred"
    assert deferred["status_reason"] == "road closed by snow"
    assert deferred["assignments"] == []
    assert get_volunteer(volunteer["id"])["load"] == 0

    response = client.post(f"/api/v1/needs/{need['id']}/reopen", json={}, headers=tokens.dispatcher)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "queued"
    work()
    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == volunteer["id"]


# ---- progress, feedback, closing ---------------------------------------------------------------


def test_assigned_volunteer_reports_en_route_on_site_and_done(
    tokens, volunteer_at, make_need, work, get_need, accept, progress, client, get_volunteer
) -> None:
    decliner = volunteer_at(0.5)
    helper = volunteer_at(1.0)
    stranger = volunteer_at(2.0, on_duty=False)
    need = make_need()
    work()
    first = the_pending_offer(get_need(need["id"]))
    assert first["volunteer_id"] == decliner["id"]
    client.post(f"/api/v1/offers/{first['offer_id']}/decline", headers=tokens.volunteer(decliner["id"]))
    work()
    accept(the_pending_offer(get_need(need["id"])))

    for status in ("en_route", "on_site", "done"):
        assert progress(need["id"], status, tokens.volunteer(decliner["id"])).status_code == 403
        assert progress(need["id"], status, tokens.volunteer(stranger["id"])).status_code == 404
        response = progress(need["id"], status, tokens.volunteer(helper["id"]))
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == status

    types = [
        e["type"]
        for e in client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    ]
    assert types[-3:] == ["en_route", "on_site", "done"]
    assert get_volunteer(helper["id"])["load"] == 0  # done frees the volunteer


def test_assigning_a_volunteer_who_does_not_exist_is_422_naming_the_field(client, tokens, make_need) -> None:
    need = make_need()

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign", json={"volunteer_id": "vol_nobody"}, headers=tokens.dispatcher
    )

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"json": {"volunteer_id": ["No volunteer with this id."]}}


def test_a_volunteer_who_finished_the_need_and_reports_again_gets_409_naming_the_status(
    assigned, progress, tokens
) -> None:
    need, volunteer = assigned()
    assert progress(need["id"], "done", tokens.volunteer(volunteer["id"])).status_code == 200

    for step in ("en_route", "on_site", "done"):
        response = progress(need["id"], step, tokens.volunteer(volunteer["id"]))
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["errors"] == {"status": ["current status is done"]}


def test_a_volunteer_who_finished_a_need_reopened_for_someone_else_may_not_report_on_it(
    client, assigned, progress, tokens, volunteer_at, work, get_need, accept
) -> None:
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 2, "fixed": False})
    other = volunteer_at(0.5)
    work()
    accept(the_pending_offer(get_need(need["id"])))
    assert get_need(need["id"])["status"] == "assigned"

    assert progress(need["id"], "en_route", tokens.volunteer(volunteer["id"])).status_code == 403
    assert progress(need["id"], "en_route", tokens.volunteer(other["id"])).status_code == 200


def test_feedback_closes_the_need_with_the_rating(client, assigned, progress, tokens) -> None:
    need, volunteer = assigned()
    assert progress(need["id"], "done", tokens.volunteer(volunteer["id"])).status_code == 200

    response = client.post(
        f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 4, "comment": "thank you", "fixed": True}
    )

    assert response.status_code == 200, response.get_json()
    tracked = response.get_json()
    assert tracked["status"] == "closed"
    assert tracked["rating"] == 4


def test_feedback_not_fixed_reopens_the_need_for_a_new_match(client, assigned, progress, tokens, work, get_need):
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))

    response = client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 1, "fixed": False})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "queued"
    assert response.get_json()["rating"] is None
    work()
    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert the_pending_offer(got)["volunteer_id"] == volunteer["id"]


def test_feedback_not_fixed_reopens_a_closed_need_only_within_the_reopen_window(
    client, clock, deps, assigned, progress, tokens
) -> None:
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    code = need["tracking_code"]
    assert client.post(f"/api/v1/track/{code}/feedback", json={"rating": 5, "fixed": True}).status_code == 200
    clock.advance(deps.settings.reopen_window_seconds + 60)

    response = client.post(f"/api/v1/track/{code}/feedback", json={"rating": 1, "fixed": False})

    assert response.status_code == 409
    assert response.get_json()["message"].startswith("closed too long ago to reopen")
    assert client.get(f"/api/v1/track/{code}").get_json()["status"] == "closed"


def test_a_rating_for_a_need_already_closed_is_refused_as_already_closed(client, assigned, progress, tokens) -> None:
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    code = need["tracking_code"]
    assert client.post(f"/api/v1/track/{code}/feedback", json={"rating": 5, "fixed": True}).status_code == 200

    response = client.post(f"/api/v1/track/{code}/feedback", json={"rating": 3, "fixed": True})

    assert response.status_code == 409
    assert response.get_json()["message"].startswith("already closed")
    assert response.get_json()["errors"] == {"status": ["current status is closed"]}
    assert client.get(f"/api/v1/track/{code}").get_json()["rating"] == 5


def test_feedback_not_fixed_reopens_a_recently_closed_need(client, assigned, progress, tokens) -> None:
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    code = need["tracking_code"]
    assert client.post(f"/api/v1/track/{code}/feedback", json={"rating": 5, "fixed": True}).status_code == 200

    response = client.post(f"/api/v1/track/{code}/feedback", json={"rating": 2, "fixed": False})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "queued"


def test_feedback_before_the_need_is_done_is_refused(client, assigned) -> None:
    need, _ = assigned()

    for fixed in (True, False):
        response = client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 5, "fixed": fixed})
        assert response.status_code == 409
        assert response.get_json()["message"].startswith("not done yet: the need is assigned")


def test_done_need_is_closed_automatically_after_the_quiet_period(
    clock, deps, assigned, progress, tokens, get_need
) -> None:
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    clock.advance(deps.settings.auto_close_seconds)

    assert dispatch.auto_close(deps=deps, need_id=need["id"]) is True

    assert get_need(need["id"])["status"] == "closed"
    assert deps.store.needs.events(need["id"])[-1].type == "closed"
    assert dispatch.auto_close(deps=deps, need_id=need["id"]) is False  # once only


def test_done_need_is_not_closed_automatically_before_the_quiet_period(
    clock, deps, assigned, progress, tokens, get_need
):
    need, volunteer = assigned()
    progress(need["id"], "done", tokens.volunteer(volunteer["id"]))
    clock.advance(deps.settings.auto_close_seconds - 60)

    assert dispatch.auto_close(deps=deps, need_id=need["id"]) is False
    assert get_need(need["id"])["status"] == "done"


def test_need_that_is_not_done_is_never_closed_automatically(clock, deps, assigned, get_need) -> None:
    need, _ = assigned()
    clock.advance(deps.settings.auto_close_seconds + 60)

    assert dispatch.auto_close(deps=deps, need_id=need["id"]) is False
    assert get_need(need["id"])["status"] == "assigned"


# ---- every disallowed transition is a 409 naming the current status -----------------------------

STATUSES = [s for s in S if s is not S.MATCHING]  # matching only lasts while a match job runs


@pytest.fixture
def need_in(
    client: Any, tokens: Any, volunteer_at: Any, make_need: Any, work: Any, get_need: Any, accept: Any, progress: Any
) -> Any:
    """A need brought into a status through the API."""

    def _make(status: S) -> dict[str, Any]:
        if status in (S.ESCALATED, S.QUEUED, S.DEFERRED, S.CANCELLED):
            need = make_need()
            if status is S.ESCALATED:
                work()
            elif status is S.DEFERRED:
                client.post(f"/api/v1/needs/{need['id']}/defer", json={"reason": "x"}, headers=tokens.dispatcher)
            elif status is S.CANCELLED:
                client.post(f"/api/v1/needs/{need['id']}/cancel", json={"reason": "x"}, headers=tokens.dispatcher)
        else:
            volunteer_at(1.0)
            need = make_need()
            work()
            if status is not S.OFFERED:
                accept(the_pending_offer(get_need(need["id"])))
            steps = {S.EN_ROUTE: 1, S.ON_SITE: 2, S.DONE: 3, S.CLOSED: 3}.get(status, 0)
            for step in ("en_route", "on_site", "done")[:steps]:
                assert progress(need["id"], step, tokens.dispatcher).status_code == 200
            if status is S.CLOSED:
                client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 5, "fixed": True})
        need = get_need(need["id"])
        assert need["status"] == status.value
        return need

    return _make


def _call(client: Any, tokens: Any, action: Action, need: dict[str, Any], spare_volunteer: str) -> Any:
    url = f"/api/v1/needs/{need['id']}"
    headers = tokens.dispatcher
    if action is Action.ASSIGN:
        return client.post(f"{url}/assign", json={"volunteer_id": spare_volunteer}, headers=headers)
    if action is Action.REMATCH:
        return client.post(f"{url}/rematch", headers=headers)
    if action is Action.DEFER:
        return client.post(f"{url}/defer", json={"reason": "later"}, headers=headers)
    if action is Action.REOPEN:
        return client.post(f"{url}/reopen", json={}, headers=headers)
    if action is Action.CANCEL:
        return client.post(f"{url}/cancel", json={"reason": "not needed"}, headers=headers)
    if action in (Action.EN_ROUTE, Action.ON_SITE, Action.DONE):
        return client.post(f"{url}/progress", json={"status": action.value}, headers=headers)
    if action is Action.CLOSE:
        return client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 5, "fixed": True})
    raise AssertionError(action)


API_ACTIONS = [a for a in Action if a not in (Action.START_MATCHING, Action.ESCALATE)]  # system-only actions
DISALLOWED = [(s, a) for s in STATUSES for a in API_ACTIONS if s not in lifecycle.allowed_from(a)]


@pytest.mark.parametrize("status, action", DISALLOWED, ids=lambda v: v.value)
def test_disallowed_transition_answers_409_naming_the_current_status(
    client, tokens, need_in, volunteer_at, get_need, status: S, action: Action
) -> None:
    need = need_in(status)
    spare = volunteer_at(3.0, on_duty=False)

    response = _call(client, tokens, action, need, spare["id"])

    assert response.status_code == 409, response.get_json()
    body = response.get_json()
    assert status.value in body["message"]
    assert body["errors"] == {"status": [f"current status is {status.value}"]}
    assert get_need(need["id"])["status"] == status.value


# ---- idempotency -------------------------------------------------------------------------------


def test_match_job_run_twice_never_offers_twice(deps, volunteer_at, make_need, get_need, get_volunteer) -> None:
    volunteer = volunteer_at(1.0)
    volunteer_at(3.0)
    need = make_need()

    first = dispatch.match_need(deps=deps, need_id=need["id"])
    second = dispatch.match_need(deps=deps, need_id=need["id"])

    assert len(first.offered) == 1
    assert second.offered == []
    got = get_need(need["id"])
    assert [a["volunteer_id"] for a in got["assignments"]] == [volunteer["id"]]
    assert get_volunteer(volunteer["id"])["load"] == 1
    assert [e.type for e in deps.store.needs.events(need["id"])].count("offered") == 1


def test_match_job_run_twice_on_a_short_staffed_need_never_offers_the_same_volunteer_twice(
    deps, volunteer_at, make_need, get_need, get_volunteer
) -> None:
    volunteer = volunteer_at(1.0)
    need = make_need(volunteers_needed=2)

    first = dispatch.match_need(deps=deps, need_id=need["id"])
    second = dispatch.match_need(deps=deps, need_id=need["id"])

    assert len(first.offered) == 1
    assert second.offered == []
    got = get_need(need["id"])
    assert got["status"] == "escalated"
    assert [a["volunteer_id"] for a in got["assignments"]] == [volunteer["id"]]
    assert get_volunteer(volunteer["id"])["load"] == 1


# ---- tracking and privacy ----------------------------------------------------------------------


def test_tracking_shows_status_timeline_and_first_name_but_no_phone_numbers(client, assigned) -> None:
    need, volunteer = assigned()

    response = client.get(f"/api/v1/track/{need['tracking_code']}")

    assert response.status_code == 200
    tracked = response.get_json()
    assert tracked["status"] == "assigned"
    assert [e["type"] for e in tracked["timeline"]][:1] == ["created"]
    assert {"offered", "accepted", "assigned"} <= {e["type"] for e in tracked["timeline"]}
    assert tracked["volunteers"] == [{"first_name": "Li", "distance_km": 1.0, "status": "accepted"}]
    raw = response.get_data(as_text=True)
    assert REQUESTER_PHONE not in raw
    assert volunteer["phone"] not in raw
    assert VOLUNTEER["name"] not in raw
    assert volunteer["id"] not in raw


def test_tracking_an_unknown_code_is_404(client) -> None:
    response = client.get("/api/v1/track/no-such-code-here")

    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_assigned_volunteer_sees_requester_phone_and_address(assigned, get_need, tokens) -> None:
    need, volunteer = assigned()

    seen = get_need(need["id"], tokens.volunteer(volunteer["id"]))

    assert seen["requester"]["phone"] == REQUESTER_PHONE
    assert seen["address"] == NEED["address"]
    assert seen["location"] == NEED["location"]


def test_offered_volunteer_does_not_see_requester_phone_or_address(
    client, volunteer_at, make_need, work, get_need, tokens
) -> None:
    volunteer = volunteer_at(1.0)
    need = make_need()
    work()
    assert the_pending_offer(get_need(need["id"]))["volunteer_id"] == volunteer["id"]

    response = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.volunteer(volunteer["id"]))

    assert response.status_code == 200
    seen = response.get_json()
    assert seen["requester"]["phone"] is None
    assert seen["address"] is None
    raw = response.get_data(as_text=True)
    assert REQUESTER_PHONE not in raw
    assert NEED["address"] not in raw


def test_a_dispatcher_overriding_assigns_someone_off_duty_without_the_skills_and_the_timeline_says_so(
    client, tokens, volunteer_at, make_need, work, get_need, get_volunteer
):
    need = make_need(skills=["plumbing"])
    work()
    reached_by_phone = volunteer_at(1.0, skills=["general"], on_duty=False, capacity=1)

    response = client.post(
        f"/api/v1/needs/{need['id']}/assign",
        json={"volunteer_id": reached_by_phone["id"], "override": True},
        headers=tokens.dispatcher,
    )

    assert response.status_code == 200, response.get_json()
    assert get_need(need["id"])["status"] == "assigned"
    assert get_volunteer(reached_by_phone["id"])["load"] == 1
    events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    [assigned] = [e for e in events if e["type"] == "assigned_by_dispatcher"]
    assert assigned["detail"]["override"] is True
    other = make_need(skills=["plumbing"])
    full = client.post(
        f"/api/v1/needs/{other['id']}/assign",
        json={"volunteer_id": reached_by_phone["id"], "override": True},
        headers=tokens.dispatcher,
    )
    assert full.status_code == 409 and "capacity" in full.get_json()["message"], "capacity still holds"
