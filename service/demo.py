"""Demo data of the sample district's care register: households at each attention level, and one demo volunteer
made captain of their grid and put on call for it around the clock (what `aidline demo load` adds beside the
demo volunteers and tokens; service/data/demo_care.json). Loading twice adds nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from service import captains, households
from service.deps import Deps
from service.exceptions import Conflict
from service.models import Principal, Role, Weekday

LOADER = Principal(role=Role.DISPATCHER, token_id="demo")
"""Who records the demo data: the demo loader, as a dispatcher."""


@dataclass(frozen=True)
class DemoCaptain:
    volunteer_id: str
    grid: str


def demo_care() -> dict[str, Any]:
    """The sample district's care register (service/data/demo_care.json)."""
    data: dict[str, Any] = json.loads(resources.files("service").joinpath("data/demo_care.json").read_text("utf-8"))
    return data


def demo_captain() -> DemoCaptain:
    """The demo volunteer who is captain of a demo grid (a captain token for it makes them one)."""
    captain = demo_care()["captain"]
    return DemoCaptain(volunteer_id=captain["volunteer_id"], grid=captain["grid"])


def load_households(deps: Deps) -> int:
    """Register the demo households not registered yet (by contact phone); returns how many were added."""
    added = 0
    for row in demo_care()["households"]:
        if households.find_household_by_phone(deps=deps, phone=row["contact"]["phone"]) is not None:
            continue
        try:
            households.create_household(deps=deps, household_in=row, principal=LOADER)
        except Conflict:
            continue  # registered by another load meanwhile
        added += 1
    return added


def put_captain_on_call(deps: Deps) -> bool:
    """Put the demo captain on call for their grid around the clock, unless the grid has a rota already (one
    set since is kept); True when it was set. Needs the captain token first (a rota names captains only)."""
    captain = demo_captain()
    if deps.store.captains.rota(captain.grid) is not None:
        return False
    shifts = [
        {"weekday": day.value, "start": "00:00", "end": "24:00", "volunteer_id": captain.volunteer_id}
        for day in Weekday
    ]
    captains.put_rota(deps=deps, grid=captain.grid, rota_in={"shifts": shifts, "overrides": []}, principal=LOADER)
    return True
