"""A visit not done by the end of its period: the grid's captain is told (for now through the grid's channels,
else the dispatchers'), once, in Chinese and English texts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service import clock as clocks
from service import visits
from service.messages import render
from tests.worker.conftest import Receiver
from worker import notifications


def test_an_overdue_visit_is_told_to_its_grid_once(
    client: Any, tokens: Any, deps: Any, clock: Any, work: Any, make_household: Any, receiver: Receiver
) -> None:
    household = make_household(grid="grid-2")
    [visit] = client.get(f"/api/v1/households/{household['id']}/visits", headers=tokens.dispatcher).get_json()["items"]
    clock.set(clocks.parse(visit["due_at"]))
    visits.sweep_visits(deps=deps)
    clock.set(clocks.parse(visit["period_end"]) + timedelta(seconds=1))

    visits.sweep_visits(deps=deps)
    visits.sweep_visits(deps=deps)
    work()

    told = [m for m in receiver.messages("/grid-2") if "探访超期" in m]
    assert len(told) == 1
    assert "陪伴探访" in told[0]
    assert all("探访超期" not in m for m in receiver.messages("/dispatch")), "the grid has its own channel"


def test_the_captains_recipients_are_the_grids_channels_else_the_dispatchers(deps: Any) -> None:
    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-2")] == ["dispatchers:grid-2"]
    assert [r[0] for r in notifications.grid_captain_recipients(deps, "grid-9")] == ["dispatchers:grid-9"]
    assert notifications.grid_captain_recipients(deps, "grid-9")[0][2] == list(deps.settings.dispatcher_channels)


def test_the_overdue_text_exists_in_both_languages() -> None:
    values = {"kind": "companionship_visit", "deadline": "12-06 10:00", "link": "http://aid.test/x"}
    assert render("visit_overdue", "zh", values)[1].startswith("【Aidline】探访超期：陪伴探访未在12-06 10:00前完成")
    assert render("visit_overdue", "en", values)[1].startswith("Aidline: a companionship visit was not made by 12-06")
