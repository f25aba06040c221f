"""The drill's scenarios: the outage as the reports tell it, seeded, and bodies the API accepts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from service.drill import scenarios
from service.drill.player import Player
from service.drill.scenarios import Behaviour, NeedPlan, Scenario


def test_the_outage_is_139_households_32_elderly_8_livestock_farms_over_two_minutes():
    outage = scenarios.build("outage", seed=1)

    assert len(outage.needs) == 139
    elderly = [n.body for n in outage.needs if n.body.get("vulnerability") == ["elderly_alone"]]
    livestock = [n.body for n in outage.needs if n.body.get("vulnerability") == ["livestock"]]
    assert len(elderly) == 32 and all(b["skills"] == ["driving", "heavy_lifting"] for b in elderly)
    assert len(livestock) == 8 and all(b["priority"] in ("high", "critical") for b in livestock)
    assert all(n.body["kind"] == "water_delivery" and n.body["drill"] for n in outage.needs)
    assert all(0 <= n.at <= 120 for n in outage.needs)
    assert Counter(n.body["grid"] for n in outage.needs).keys() == {"grid-1", "grid-2", "grid-3"}


def test_the_outage_brings_a_few_dozen_volunteers_with_3_tanker_trucks_and_room_for_every_household():
    volunteers = scenarios.build("outage", seed=1).volunteers
    needs = scenarios.build("outage", seed=1).needs

    assert 30 <= len(volunteers) <= 48
    assert sum("tanker_truck" in v["skills"] for v in volunteers) == 3
    assert all(v["on_duty"] and v["drill"] and 1 <= v["capacity"] <= 5 for v in volunteers)
    assert len({v["phone"] for v in volunteers}) == len(volunteers)
    # a car carries water for several households: between them they can hold every need at once
    assert sum(v["capacity"] for v in volunteers) >= len(needs)
    carriers = [v for v in volunteers if {"driving", "heavy_lifting"} <= set(v["skills"])]
    elderly = [n for n in needs if n.body.get("vulnerability") == ["elderly_alone"]]
    assert sum(v["capacity"] for v in carriers) >= len(elderly)


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_a_seed_replays_the_same_scenario_and_another_seed_another(name):
    assert scenarios.build(name, 7) == scenarios.build(name, 7)
    assert scenarios.build(name, 7).needs != scenarios.build(name, 8).needs


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_every_scenario_body_passes_the_api_schemas(name):
    from service.api.schemas import NeedCreateSchema, VolunteerCreateSchema

    scenario = scenarios.build(name, 1)
    for body in scenario.volunteers:
        VolunteerCreateSchema().load(body)
    for plan in scenario.needs:
        NeedCreateSchema().load(plan.body)


class NoClient:
    """The player's need bodies need no server."""


CATALOG = {
    "water_delivery": {
        "deadlines": {"critical": 60, "high": 180, "normal": 720, "low": 2880},
        "accept_minutes": {"critical": 2.0, "high": 5.0, "normal": 15.0, "low": 60.0},
    }
}


def player(speed: float) -> Player:
    scenario = Scenario("test", "test", [], [], Behaviour())
    p = Player(NoClient(), scenario, speed=speed)  # type: ignore[arg-type]
    p.catalog = CATALOG
    return p


def body(priority: str) -> dict[str, Any]:
    return {"kind": "water_delivery", "priority": priority, "location": {"lat": 46.33, "lon": 132.21}}


def test_need_bodies_carry_the_kinds_deadline_and_accept_window_divided_by_the_speed():
    before = datetime.now(UTC)
    sent = player(speed=10).need_body(NeedPlan(at=0, body=body("normal")))
    after = datetime.now(UTC)

    deadline = datetime.fromisoformat(sent["deadline"].replace("Z", "+00:00"))
    assert before.timestamp() + 720 * 60 / 10 - 0.001 <= deadline.timestamp() <= after.timestamp() + 720 * 60 / 10
    assert sent["accept_seconds"] == 15 * 60 / 10


def test_an_accept_window_is_never_shorter_than_ten_seconds():
    assert player(speed=60).need_body(NeedPlan(at=0, body=body("critical")))["accept_seconds"] == 10
