"""Incidents are told once, not per need: to the dispatchers and the grids of their needs, when one
opens, when half of its needs are resolved and when all are. Through apprise to a real receiver."""

from __future__ import annotations

from typing import Any

from service.models import Topic
from tests.worker.conftest import Api, Receiver
from worker import notifications

HERE = {"lat": 46.34, "lon": 132.25}


def near(km_north: float) -> dict[str, float]:
    return {"lat": HERE["lat"] + km_north / 111.19, "lon": HERE["lon"]}


def incident_messages(receiver: Receiver, path: str) -> list[str]:
    return [m for m in receiver.messages(path) if "事件" in m]


def form_incident(make_need: Any, count: int = 5, **overrides: Any) -> list[dict[str, Any]]:
    made = [make_need(location=near(0.2 * i), **overrides) for i in range(count)]
    assert made[-1]["incident_id"], "the last of them opened an incident"
    return made


def test_an_incident_opening_is_told_once_to_the_dispatchers_and_once_to_its_grid(
    make_need: Any, work: Any, receiver: Receiver
) -> None:
    made = form_incident(make_need, grid="grid-2", vulnerability=["elderly_alone"])
    incident_id = made[-1]["incident_id"]
    work()
    make_need(location=near(0.5), grid="grid-2")  # joins: nobody is told again
    make_need(location=near(0.6), grid="grid-2")
    work()

    expected = (
        f"【Aidline】事件：停水，5个求助集中在2.0公里内，其中5个涉及需特别关照的人。"
        f"http://aid.test/api/v1/incidents/{incident_id}"
    )
    assert incident_messages(receiver, "/dispatch") == [expected]
    assert incident_messages(receiver, "/grid-2") == [expected]


def test_milestones_are_told_once_each_however_many_needs_resolve(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    made = form_incident(make_need)
    work()

    def cancel(need: dict[str, Any]) -> None:
        response = api.post(f"/api/v1/needs/{need['id']}/cancel", {"reason": "the pump is repaired"})
        assert response.status_code == 200, response.get_json()

    for need in made[:2]:
        cancel(need)
    work()
    assert len(incident_messages(receiver, "/dispatch")) == 1, "two of five: no milestone yet"
    cancel(made[2])
    work()
    cancel(made[3])
    work()
    cancel(made[4])
    work()

    _opened, half, done = incident_messages(receiver, "/dispatch")
    assert half.startswith("【Aidline】事件进展：停水事件已解决过半（3/5）")
    assert done.startswith("【Aidline】事件进展：停水事件的5个求助已全部解决")


def test_planning_an_incident_announcement_twice_delivers_it_once(
    deps: Any, make_need: Any, work: Any, receiver: Receiver
) -> None:
    incident_id = form_incident(make_need)[-1]["incident_id"]
    work()

    again = notifications.plan_deliveries(deps=deps, topic=Topic.INCIDENT_OPENED, need_id="", incident_id=incident_id)
    work()

    assert again == [d["id"] for d in deps.store.deliveries.of_incident(incident_id)]
    assert len(incident_messages(receiver, "/dispatch")) == 1


def test_an_incident_message_that_cannot_be_delivered_fails_without_touching_any_need(
    deps: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    made = form_incident(make_need, grid="grid-dark")
    incident_id = made[-1]["incident_id"]

    work(queues=("notify",))  # notifications only: no matching, so no escalation to the dark grid

    by_recipient = {d["recipient"]: d for d in deps.store.deliveries.of_incident(incident_id)}
    assert by_recipient["dispatchers:grid-dark"]["status"] == "failed"
    assert by_recipient["dispatchers:default"]["status"] == "sent"
    assert not any(api.need(n["id"])["flagged"] for n in made)
    assert all(n["topic"] != "incident_opened" for n in api.notifications(made[0]["id"]))
