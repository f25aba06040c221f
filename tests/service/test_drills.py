"""Cleaning up after drills in Redis: every trace of a drill need or volunteer goes, nothing else does."""

from __future__ import annotations

from typing import Any

import redis

from service import drills
from service.deps import Deps
from tests.conftest import NEED


def every_value(client: redis.Redis) -> dict[str, str]:
    """Each key with everything it holds, as text: to search for an id anywhere in Redis."""
    out: dict[str, str] = {}
    for raw in client.scan_iter(count=1000):
        key = raw.decode()
        kind = client.type(key).decode()
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        else:
            value = ""
        out[key] = repr(value)
    return out


def traces(client: redis.Redis, record_id: str) -> list[str]:
    """Keys that name the id, or hold it, outside RQ's own records and the counters' markers."""
    return sorted(
        key
        for key, value in every_value(client).items()
        if (record_id in key or record_id in value) and not key.startswith(("rq:", "aidline:once:", "aidline:idem:"))
    )


def test_the_store_lists_what_drills_created(deps: Deps, make_need, make_volunteer):
    make_need()
    make_volunteer()
    need = make_need(drill=True)
    volunteer = make_volunteer(drill=True, phone="+8613800000009")

    assert deps.store.drills.need_ids() == [need["id"]]
    assert deps.store.drills.volunteer_ids() == [volunteer["id"]]


def test_cleaning_leaves_no_trace_of_a_drill_need_that_went_all_the_way(
    deps: Deps, connection, client, tokens, make_need, make_volunteer, work
):
    volunteer = make_volunteer(drill=True, on_duty=True, location=NEED["location"], channels=["json://127.0.0.1:9/x"])
    need = make_need(drill=True)
    work()
    offer = deps.store.offers.get_many(deps.store.offers.ids_of_volunteer(volunteer["id"]))[0]
    d = tokens.dispatcher
    assert client.post(f"/api/v1/offers/{offer.id}/accept", headers=d).status_code == 200
    assert (
        client.post(f"/api/v1/needs/{need['id']}/progress", json={"status": "en_route"}, headers=d).status_code == 200
    )
    work()
    assert deps.store.deliveries.of_need(need["id"]), "the drill need's notifications were recorded"
    assert traces(connection, need["id"]) and traces(connection, volunteer["id"])

    cleaned = drills.clean_drills(deps=deps)

    assert (cleaned.needs_removed, cleaned.volunteers_removed) == (1, 1)
    assert traces(connection, need["id"]) == []
    assert traces(connection, volunteer["id"]) == []
    assert traces(connection, need["tracking_code"]) == []
    assert traces(connection, offer.id) == []


def test_cleaning_leaves_records_not_from_a_drill_as_they_were(deps: Deps, connection, make_need, make_volunteer, work):
    make_volunteer(on_duty=True, location=NEED["location"], capacity=3)
    make_need()
    make_need(priority="low")
    work()
    before = every_value(connection)

    drills.clean_drills(deps=deps)

    after = every_value(connection)
    assert {k: v for k, v in after.items() if not k.startswith("rq:")} == {
        k: v for k, v in before.items() if not k.startswith("rq:")
    }


def test_a_need_removed_while_waiting_for_a_match_is_skipped_by_the_drain(
    deps: Deps, connection, make_need, make_volunteer, work
):
    volunteer = make_volunteer(on_duty=True, location=NEED["location"])
    need = make_need(drill=True)
    assert deps.store.backlog.waiting_ids() == [need["id"]]

    drills.clean_drills(deps=deps)
    work()

    assert deps.store.backlog.waiting_ids() == []
    assert deps.store.offers.ids_of_volunteer(volunteer["id"]) == []
    assert traces(connection, need["id"]) == []


def test_cleaning_a_drills_incident_leaves_no_trace_of_it(deps: Deps, connection, make_need, work) -> None:
    real = make_need(priority="normal", location={"lat": 46.9, "lon": 132.25})
    made = [make_need(drill=True, priority="normal") for _ in range(5)]
    [incident_id] = {deps.store.needs.get(n["id"]).incident_id for n in made}
    assert incident_id is not None, "five water needs close together formed an incident"
    work()

    drills.clean_drills(deps=deps)

    for need in made:
        assert traces(connection, need["id"]) == []
    assert traces(connection, incident_id) == []
    assert deps.store.needs.get(real["id"]) is not None
