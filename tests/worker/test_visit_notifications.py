"""A visit not done by the end of its period: the grid's captain is told once: the captain on call for the grid
(its rota) through their own channels and in their language, beside the grid's channels; with nobody on call,
the grid's channels, else the dispatchers'. Texts in Chinese and English."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service import clock as clocks
from service import visits
from service.messages import render
from tests.worker.conftest import Receiver
from worker import notifications

AROUND_THE_CLOCK = [
    {"weekday": day, "start": "00:00", "end": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
]


@pytest.fixture
def on_call(make_captain: Any, client: Any, tokens: Any, receiver: Receiver) -> Any:
    """Make a captain (told at /captain, in English) of a grid, on call for it around the clock."""

    def _on_call(grid: str, **overrides: Any) -> dict[str, Any]:
        body = {"name": "Wang Captain", "phone": "+8613800000071", "channels": [receiver.url("/captain")]}
        volunteer, _ = make_captain(grid, **{**body, "locale": "en", **overrides})
        shifts = [{**shift, "volunteer_id": volunteer["id"]} for shift in AROUND_THE_CLOCK]
        response = client.put(f"/api/v1/grids/{grid}/rota", json={"shifts": shifts}, headers=tokens.dispatcher)
        assert response.status_code == 200, response.get_json()
        return volunteer

    return _on_call


def go_overdue(client: Any, tokens: Any, deps: Any, clock: Any, household: dict[str, Any]) -> None:
    """Let the household's first visit fall due and its period end without an outcome; sweep twice."""
    [visit] = client.get(f"/api/v1/households/{household['id']}/visits", headers=tokens.dispatcher).get_json()["items"]
    clock.set(clocks.parse(visit["due_at"]))
    visits.sweep_visits(deps=deps)
    clock.set(clocks.parse(visit["period_end"]) + timedelta(seconds=1))
    visits.sweep_visits(deps=deps)
    visits.sweep_visits(deps=deps)


def test_an_overdue_visit_is_told_to_its_grid_once(
    client: Any, tokens: Any, deps: Any, clock: Any, work: Any, make_household: Any, receiver: Receiver
) -> None:
    household = make_household(grid="grid-2")

    go_overdue(client, tokens, deps, clock, household)
    work()

    told = [m for m in receiver.messages("/grid-2") if "探访超期" in m]
    assert len(told) == 1
    assert "陪伴探访" in told[0]
    assert all("探访超期" not in m for m in receiver.messages("/dispatch")), "the grid has its own channel"


def test_the_on_call_captain_is_told_in_their_language_beside_the_grids_channel(
    client: Any, tokens: Any, deps: Any, clock: Any, work: Any, make_household: Any, receiver: Receiver, on_call: Any
) -> None:
    on_call("grid-2")
    household = make_household(grid="grid-2")

    go_overdue(client, tokens, deps, clock, household)
    work()

    told = [m for m in receiver.messages("/captain") if "was not made" in m]
    assert len(told) == 1, receiver.messages("/captain")
    assert told[0].startswith("Aidline: a companionship visit was not made by")
    assert len([m for m in receiver.messages("/grid-2") if "探访超期" in m]) == 1, "the grid's channel hears it too"
    assert all("探访超期" not in m for m in receiver.messages("/dispatch"))


def test_an_on_call_captain_of_a_grid_without_channels_is_told_alone(
    client: Any, tokens: Any, deps: Any, clock: Any, work: Any, make_household: Any, receiver: Receiver, on_call: Any
) -> None:
    on_call("grid-9", locale="zh")
    household = make_household(grid="grid-9")

    go_overdue(client, tokens, deps, clock, household)
    work()

    assert len([m for m in receiver.messages("/captain") if "探访超期" in m]) == 1
    assert all("探访超期" not in m for m in receiver.messages("/dispatch")), "the captain is told: not the dispatchers"


def test_the_captains_recipients_follow_the_rota(deps: Any, clock: Any, on_call: Any) -> None:
    captain = on_call("grid-2")

    assert [r[:2] for r in notifications.grid_captain_recipients(deps, "grid-2")] == [
        (f"volunteer:{captain['id']}", "en"),
        ("dispatchers:grid-2", "zh"),
    ]
    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-9")] == ["dispatchers:grid-9"]
    assert [r[0] for r in notifications.grid_captain_recipients(deps, None)] == ["dispatchers:default"]


def test_a_captain_on_call_without_channels_leaves_it_to_the_grid(deps: Any, on_call: Any) -> None:
    on_call("grid-2", channels=[])

    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-2")] == ["dispatchers:grid-2"]


def test_the_captains_recipients_are_the_grids_channels_else_the_dispatchers(deps: Any) -> None:
    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-2")] == ["dispatchers:grid-2"]
    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-9")] == ["dispatchers:grid-9"]
    assert notifications.grid_captain_recipients(deps, "grid-9")[0][2] == list(deps.settings.dispatcher_channels)


def test_the_overdue_text_exists_in_both_languages() -> None:
    values = {"kind": "companionship_visit", "deadline": "12-06 10:00", "link": "http://aid.test/x"}
    assert render("visit_overdue", "zh", values)[1].startswith("【Aidline】探访超期：陪伴探访未在12-06 10:00前完成")
    assert render("visit_overdue", "en", values)[1].startswith("Aidline: a companionship visit was not made by 12-06")
