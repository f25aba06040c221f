"""Dispatch in a surge: parallel offers for critical needs, urgent needs taking ordinary needs' pending
offers, and needs that must be reached by a time."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from rq import Queue

from service import clock, dispatch, offers
from service.config import Settings
from service.jobs import MATCH_QUEUES, URGENT
from service.models import Topic
from tests.conftest import NEED

NEED_LAT, NEED_LON = NEED["location"]["lat"], NEED["location"]["lon"]
KM_PER_DEGREE_LAT = 111.19
ORDINARY = {"priority": "normal", "vulnerability": []}


def north(km: float) -> dict[str, float]:
    return {"lat": NEED_LAT + km / KM_PER_DEGREE_LAT, "lon": NEED_LON}


@pytest.fixture
def volunteer_at(make_volunteer: Any) -> Any:
    """An on-duty driver `km` north of the need, capacity 1 unless told otherwise."""

    def _make(km: float, **overrides: Any) -> dict[str, Any]:
        body = {"on_duty": True, "location": north(km), "capacity": 1, "phone": f"+86138{int((km + 50) * 1000):08d}"}
        return make_volunteer(**{**body, **overrides})

    return _make


@pytest.fixture
def events_of(client: Any, tokens: Any) -> Any:
    def _get(need_id: str) -> list[dict[str, Any]]:
        return client.get(f"/api/v1/needs/{need_id}/events", headers=tokens.dispatcher).get_json()["items"]

    return _get


def offered_to(need: dict[str, Any], status: str = "pending") -> list[str]:
    return [a["volunteer_id"] for a in need["assignments"] if a["status"] == status]


def offer_of(need: dict[str, Any], volunteer_id: str) -> str:
    return next(a["offer_id"] for a in need["assignments"] if a["volunteer_id"] == volunteer_id)


def announced(deps: Any, topic: Topic) -> list[dict[str, Any]]:
    return [a for a in deps.store.backlog.peek_outbox(1000) if a["topic"] == topic.value]


# ---- parallel offers ---------------------------------------------------------------------------


def test_a_critical_need_is_offered_to_the_three_nearest_at_once(volunteer_at, make_need, work, get_need) -> None:
    near = [volunteer_at(km)["id"] for km in (1.0, 1.5, 2.5)]
    volunteer_at(2.8)
    need = make_need(priority="critical")

    work()

    got = get_need(need["id"])
    assert got["status"] == "offered"
    assert sorted(offered_to(got)) == sorted(near)


def test_a_critical_need_is_not_offered_at_once_to_those_much_further_than_the_nearest(
    volunteer_at, make_need, work, get_need
) -> None:
    # the first to accept wins: a truck 6 km off accepting first would arrive long after the nearest
    nearest, within = volunteer_at(1.0)["id"], volunteer_at(2.9)["id"]
    volunteer_at(3.2)
    volunteer_at(6.0)
    need = make_need(priority="critical")

    work()

    assert sorted(offered_to(get_need(need["id"]))) == sorted([nearest, within]), "within 2 km of the nearest"


def test_an_ordinary_need_is_offered_to_one_volunteer(volunteer_at, make_need, work, get_need) -> None:
    nearest = volunteer_at(1.0)["id"]
    volunteer_at(2.0)
    need = make_need(**ORDINARY)

    work()

    assert offered_to(get_need(need["id"])) == [nearest]


def test_the_first_to_accept_wins_and_the_others_hear_it_was_taken(
    volunteer_at, make_need, work, get_need, client, tokens, deps, events_of
) -> None:
    ids = [volunteer_at(km)["id"] for km in (1.0, 1.5, 2.5)]
    need = make_need(priority="critical")
    work()
    before = get_need(need["id"])
    winner = ids[1]

    response = client.post(f"/api/v1/offers/{offer_of(before, winner)}/accept", headers=tokens.volunteer(winner))

    assert response.status_code == 200, response.get_json()
    got = get_need(need["id"])
    assert got["status"] == "assigned"
    assert offered_to(got, "accepted") == [winner]
    assert offered_to(got) == []
    told = {a["volunteer_id"] for a in announced(deps, Topic.OFFER_TAKEN)}
    assert told == {ids[0], ids[2]}
    for vid in (ids[0], ids[2]):
        assert deps.store.volunteers.get(vid).load == 0, "their capacity is free again"
    withdrawn = [e for e in events_of(need["id"]) if e["type"] == "offer_withdrawn"]
    assert {e["detail"]["volunteer_id"] for e in withdrawn} == {ids[0], ids[2]}
    late = client.post(f"/api/v1/offers/{offer_of(before, ids[0])}/accept", headers=tokens.volunteer(ids[0]))
    assert late.status_code == 409


def test_the_number_at_once_is_set_per_priority() -> None:
    assert Settings().parallel_offers == {"critical": 3}
    assert Settings.from_env({"AIDLINE_PARALLEL_OFFERS": "critical=2, normal=3"}).parallel_offers == {
        "critical": 2,
        "normal": 3,
    }


def test_after_an_offer_expires_unanswered_the_need_goes_to_two_at_once(
    volunteer_at, make_need, work, get_need, deps
) -> None:
    ids = [volunteer_at(km)["id"] for km in (1.0, 1.5, 2.5)]
    need = make_need(**ORDINARY)
    work()
    first = get_need(need["id"])
    assert offered_to(first) == [ids[0]]

    deps.clock.set(clock.parse(deps.store.offers.get(offer_of(first, ids[0])).expires_at) + timedelta(seconds=5))
    offers.expire_due_offers(deps=deps)
    work()

    assert sorted(offered_to(get_need(need["id"]))) == sorted(ids[1:])


# ---- pre-emption -------------------------------------------------------------------------------


def test_an_urgent_need_takes_a_pending_offer_of_an_ordinary_need(
    volunteer_at, make_need, work, get_need, events_of, deps
) -> None:
    only = volunteer_at(1.0)["id"]
    ordinary = make_need(**ORDINARY)
    work()
    assert offered_to(get_need(ordinary["id"])) == [only]

    urgent = make_need(priority="normal", vulnerability=["elderly_alone"])
    work(MATCH_QUEUES)  # announcements stay in the outbox to be read

    assert offered_to(get_need(urgent["id"])) == [only]
    left = get_need(ordinary["id"])
    assert offered_to(left) == []
    assert left["status"] == "escalated", "it waited again and found nobody else"
    why = [e for e in events_of(ordinary["id"]) if e["type"] == "offer_preempted"]
    assert len(why) == 1
    assert why[0]["detail"]["for_need_id"] == urgent["id"]
    assert why[0]["detail"]["volunteer_id"] == only
    assert [a["volunteer_id"] for a in announced(deps, Topic.OFFER_PREEMPTED)] == [only]
    assert deps.store.volunteers.get(only).load == 1


def test_an_urgent_need_takes_a_free_volunteer_not_much_further_rather_than_pre_empting(
    volunteer_at, make_need, work, get_need
) -> None:
    near = volunteer_at(1.0)["id"]
    ordinary = make_need(**ORDINARY)
    work()
    free = volunteer_at(2.5, skills=["driving"])["id"]  # 1.5 km further: within the 2 km margin

    urgent = make_need(priority="critical")
    work()

    assert offered_to(get_need(urgent["id"])) == [free]
    assert offered_to(get_need(ordinary["id"])) == [near]


def test_an_urgent_need_takes_a_nearer_pending_ordinary_offer_when_the_free_one_is_far_and_that_need_gets_the_next(
    volunteer_at, make_need, work, get_need, events_of
) -> None:
    near = volunteer_at(1.0)["id"]
    ordinary = make_need(**ORDINARY)
    work()
    far = volunteer_at(5.0, skills=["driving"])["id"]  # free, but 4 km further than the one holding an offer

    urgent = make_need(priority="critical")
    work()

    assert offered_to(get_need(urgent["id"])) == [near]
    assert offered_to(get_need(ordinary["id"])) == [far], "it waited again and got the next volunteer"
    why = [e for e in events_of(ordinary["id"]) if e["type"] == "offer_preempted"]
    assert [e["detail"]["for_need_id"] for e in why] == [urgent["id"]]
    assert [e["detail"]["volunteer_id"] for e in why] == [near]


def test_accepted_work_is_never_taken_away(volunteer_at, make_need, work, get_need, client, tokens) -> None:
    only = volunteer_at(1.0)["id"]
    ordinary = make_need(**ORDINARY)
    work()
    offer = offer_of(get_need(ordinary["id"]), only)
    assert client.post(f"/api/v1/offers/{offer}/accept", headers=tokens.volunteer(only)).status_code == 200

    urgent = make_need(priority="critical")
    work()

    assert get_need(urgent["id"])["status"] == "escalated"
    assert offered_to(get_need(ordinary["id"]), "accepted") == [only]


def test_an_urgent_need_never_takes_another_urgent_needs_offer(volunteer_at, make_need, work, get_need) -> None:
    only = volunteer_at(1.0)["id"]
    first = make_need(priority="high")
    work()
    second = make_need(priority="critical")
    work()

    assert offered_to(get_need(first["id"])) == [only]
    assert get_need(second["id"])["status"] == "escalated"


def test_an_ordinary_need_never_takes_an_offer(volunteer_at, make_need, work, get_need) -> None:
    only = volunteer_at(1.0)["id"]
    first = make_need(**ORDINARY)
    work()
    second = make_need(**ORDINARY)
    work()

    assert offered_to(get_need(first["id"])) == [only]
    assert get_need(second["id"])["status"] == "escalated"


# ---- arrive by ---------------------------------------------------------------------------------


def test_volunteers_who_cannot_arrive_in_time_are_not_offered_it(volunteer_at, make_need, work, get_need, deps) -> None:
    volunteer_at(8.0)
    in_reach = volunteer_at(4.0)["id"]
    arrive_by = clock.iso(deps.clock.now() + timedelta(minutes=10))  # 5 km at 30 km/h

    need = make_need(arrive_by=arrive_by)
    work()

    got = get_need(need["id"])
    assert offered_to(got) == [in_reach]
    assert got["arrive_by"] == arrive_by


def test_a_need_nobody_can_reach_in_time_is_escalated_saying_so(volunteer_at, make_need, work, get_need, deps) -> None:
    volunteer_at(8.0)
    need = make_need(arrive_by=clock.iso(deps.clock.now() + timedelta(minutes=10)))
    work()

    got = get_need(need["id"])
    assert got["status"] == "escalated"
    assert "arrive in time" in got["status_reason"]


def test_arrive_by_in_the_past_is_refused_naming_the_field(client, tokens, deps) -> None:
    body = {**NEED, "arrive_by": clock.iso(deps.clock.now() - timedelta(minutes=1))}
    response = client.post("/api/v1/needs", json=body, headers=tokens.dispatcher)
    assert response.status_code == 422
    assert "arrive_by" in response.get_json()["errors"]["json"]


def test_match_need_returns_nothing_to_do_for_a_fully_offered_critical_need(
    volunteer_at, make_need, work, deps
) -> None:
    for km in (1.0, 1.5, 2.5):
        volunteer_at(km)
    need = make_need(priority="critical")
    work()

    outcome = dispatch.match_need(deps=deps, need_id=need["id"])

    assert outcome.offered == [] and outcome.escalated is None


# ---- fair load ---------------------------------------------------------------------------------


def test_the_nearest_is_not_sent_every_time(volunteer_at, make_need, work, get_need, client, tokens, deps) -> None:
    nearest = volunteer_at(2.0, capacity=3)["id"]
    rested = volunteer_at(2.15, capacity=3)["id"]  # nearly as near: within 100 m + 10 %
    first = make_need(**ORDINARY)
    work()
    got = get_need(first["id"])
    assert offered_to(got) == [nearest], "both rested: the nearest"
    client.post(f"/api/v1/offers/{offer_of(got, nearest)}/accept", headers=tokens.volunteer(nearest))

    second = make_need(**ORDINARY)
    work()

    assert offered_to(get_need(second["id"])) == [rested], "the nearest did one task this week, the other none"


def test_tasks_are_counted_per_day_and_forgotten_after_a_week(
    volunteer_at, make_need, work, get_need, client, tokens, deps
) -> None:
    vid = volunteer_at(1.0, capacity=3)["id"]
    key = deps.store.keys.volunteer(vid)
    old_day = int(deps.clock.now().timestamp() // 86400) - 8
    deps.redis.hset(key, f"tasks:{old_day}", 4)
    need = make_need(**ORDINARY)
    work()
    client.post(f"/api/v1/offers/{offer_of(get_need(need['id']), vid)}/accept", headers=tokens.volunteer(vid))

    today = int(deps.clock.now().timestamp() // 86400)
    assert deps.redis.hget(key, f"tasks:{today}") == b"1"
    assert deps.redis.hget(key, f"tasks:{old_day}") is None


# ---- joint assignment --------------------------------------------------------------------------


def test_needs_waiting_together_are_assigned_with_the_least_travel(
    volunteer_at, make_need, work, get_need, make_volunteer
) -> None:
    # nearest first in arrival order would send a to the first need and c (9 km) to the second
    a = volunteer_at(1.0)["id"]
    b = volunteer_at(-2.0)["id"]
    c = volunteer_at(11.5)["id"]
    first = make_need(**ORDINARY)
    second = make_need(**ORDINARY, location=north(2.5))

    work()

    assert offered_to(get_need(first["id"])) == [b]
    assert offered_to(get_need(second["id"])) == [a]
    assert c


def test_with_volunteers_to_spare_it_is_nearest_first(volunteer_at, make_need, work, get_need) -> None:
    a, b = volunteer_at(0.5)["id"], volunteer_at(2.2)["id"]
    volunteer_at(6.0)
    first = make_need(**ORDINARY)
    second = make_need(**ORDINARY, location=north(2.5))

    work()

    assert (offered_to(get_need(first["id"])), offered_to(get_need(second["id"]))) == ([a], [b])


def test_in_a_batch_the_urgent_need_is_served_first(volunteer_at, make_need, work, get_need) -> None:
    only = volunteer_at(1.0)["id"]
    ordinary = make_need(**ORDINARY)
    urgent = make_need(priority="normal", vulnerability=["livestock"], location=north(6.0))

    work()

    assert offered_to(get_need(urgent["id"])) == [only]
    assert get_need(ordinary["id"])["status"] == "escalated"


def test_an_ordinary_need_waits_out_the_batch_window_but_an_urgent_one_does_not(volunteer_at, make_need, deps) -> None:
    volunteer_at(1.0)
    volunteer_at(2.0)
    make_need(**ORDINARY)
    before = deps.clock.now()

    dispatch.wait_for_company(deps)

    waited = (deps.clock.now() - before).total_seconds()
    assert waited == pytest.approx(deps.settings.batch_window_ms / 1000, abs=0.01)
    deps.store.backlog.take_waiting(10)
    make_need(priority="critical")
    before = deps.clock.now()
    dispatch.wait_for_company(deps)
    assert deps.clock.now() == before


def test_an_ordinary_need_leaves_a_volunteer_to_the_escalated_urgent_need_waiting_for_them(
    volunteer_at, make_need, work, get_need, events_of
) -> None:
    urgent = make_need(priority="normal", vulnerability=["elderly_alone"])
    work()
    assert get_need(urgent["id"])["status"] == "escalated", "nobody on duty yet"
    freed = volunteer_at(1.0)["id"]

    ordinary = make_need(**ORDINARY)
    work()

    assert offered_to(get_need(urgent["id"])) == [freed]
    assert [e["type"] for e in events_of(ordinary["id"]) if e["type"].startswith("offer")] == [], (
        "never offered the volunteer the urgent need was waiting for"
    )
    assert get_need(ordinary["id"])["status"] == "escalated"


def test_needs_assigned_together_also_leave_the_volunteer_to_the_waiting_urgent_need(
    volunteer_at, make_need, work, get_need, deps, connection
) -> None:
    urgent = make_need(priority="normal", vulnerability=["elderly_alone"])
    work()
    freed = volunteer_at(1.0)["id"]

    ordinary = [make_need(**ORDINARY), make_need(**ORDINARY, location=north(0.5))]
    connection.delete(*connection.keys("rq:queue:*"))  # only what matching them enqueues
    deps.store.backlog.take_waiting(10)
    deps.store.backlog.disarm("match")

    dispatch.match_together(deps=deps, need_ids=[n["id"] for n in ordinary])
    assert Queue(URGENT, connection=connection).job_ids, "waking the urgent need enqueued a drain"
    work()

    assert offered_to(get_need(urgent["id"])) == [freed]
    assert [get_need(n["id"])["status"] for n in ordinary] == ["escalated", "escalated"]
    assert deps.store.backlog.waiting_count() == 0, "the woken need's drain was enqueued: nothing left waiting"


# ---- moving pending offers ---------------------------------------------------------------------


def test_a_pending_ordinary_offer_moves_so_a_later_need_has_its_nearest_and_both_travel_less(
    volunteer_at, make_need, work, get_need, events_of, deps
) -> None:
    holder = volunteer_at(1.8)["id"]
    first = make_need(**ORDINARY)  # at 0 km: offered the only one there is, 1.8 km off
    work()
    freed = volunteer_at(0.2)["id"]  # joins next to the first need
    later = make_need(**ORDINARY, location=north(2.0))  # next to the holder; the free one is 1.8 km off
    assert deps.store.backlog.take_waiting(10) == [later["id"]]

    dispatch.match_together(deps=deps, need_ids=[later["id"]])

    assert offered_to(get_need(later["id"])) == [holder], "0.2 km instead of 1.8"
    assert offered_to(get_need(first["id"])) == [freed], "0.2 km instead of 1.8"
    withdrawn = [e for e in events_of(first["id"]) if e["type"] == "offer_withdrawn"]
    assert [e["detail"]["volunteer_id"] for e in withdrawn] == [holder]
    assert withdrawn[0]["detail"]["reason"] == dispatch.MOVED_REASON
    assert [a["volunteer_id"] for a in announced(deps, Topic.OFFER_MOVED)] == [holder]
    assert deps.store.stats.get("offers_moved") == 1
    assert deps.store.volunteers.get(holder).load == 1 and deps.store.volunteers.get(freed).load == 1


def test_an_offer_is_not_moved_when_the_later_needs_nearest_free_volunteer_is_nearly_as_near(
    volunteer_at, make_need, work, get_need
) -> None:
    holder = volunteer_at(1.0)["id"]
    first = make_need(**ORDINARY)
    work()
    free = volunteer_at(1.5)["id"]
    later = make_need(**ORDINARY, location=north(1.2))  # the free one is 0.3 km off: within the 0.5 km saving

    work()

    assert offered_to(get_need(later["id"])) == [free]
    assert offered_to(get_need(first["id"])) == [holder]


@pytest.mark.parametrize(
    "hold",
    ["accepted", "urgent"],
    ids=["an accepted offer is never moved", "an urgent need's offer is never moved"],
)
def test_accepted_work_and_urgent_needs_keep_their_volunteer(
    hold, volunteer_at, make_need, work, get_need, client, tokens, deps
) -> None:
    holder = volunteer_at(1.8)["id"]
    first = make_need(**ORDINARY) if hold == "accepted" else make_need(priority="high")
    work()
    if hold == "accepted":
        offer = offer_of(get_need(first["id"]), holder)
        assert client.post(f"/api/v1/offers/{offer}/accept", headers=tokens.volunteer(holder)).status_code == 200
    free = volunteer_at(0.2)["id"]
    later = make_need(**ORDINARY, location=north(2.0))

    work()

    assert offered_to(get_need(later["id"])) == [free]
    kept = offered_to(get_need(first["id"]), "accepted" if hold == "accepted" else "pending")
    assert kept == [holder]
    assert deps.store.stats.get("offers_moved") == 0


def test_moving_can_be_turned_off(volunteer_at, make_need, work, get_need, deps, monkeypatch) -> None:
    turned_off = Settings.from_env({"AIDLINE_MOVE_SAVING_KM": "0"}, redis_url=deps.settings.redis_url)
    monkeypatch.setattr(deps, "settings", dataclasses.replace(deps.settings, move_saving_km=turned_off.move_saving_km))
    holder = volunteer_at(1.8)["id"]
    first = make_need(**ORDINARY)
    work()
    free = volunteer_at(0.2)["id"]
    later = make_need(**ORDINARY, location=north(2.0))

    dispatch.match_together(deps=deps, need_ids=[later["id"]])

    assert offered_to(get_need(later["id"])) == [free]
    assert offered_to(get_need(first["id"])) == [holder]


def test_offers_are_not_moved_while_a_full_batch_waits_behind(volunteer_at, make_need, work, get_need, deps) -> None:
    holder = volunteer_at(1.8)["id"]
    first = make_need(**ORDINARY)
    work()
    free = volunteer_at(0.2)["id"]
    later = make_need(**ORDINARY, location=north(2.0))
    deps.store.backlog.take_waiting(10)

    dispatch.match_together(deps=deps, need_ids=[later["id"]], moves=False)  # what a drain does when flooded

    assert offered_to(get_need(later["id"])) == [free]
    assert offered_to(get_need(first["id"])) == [holder]
