"""The moments a drill replays, in the sample district of the domain notes: who asks for what and when,
and which volunteers the drill brings. Every scenario is built from a seed, so a seed replays the same.

Times are scenario seconds from the start; the player divides them by the speed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CENTRE = (46.33, 132.21)
"""The farm management district of the sample: about 2,600 residents in work stations a few km apart."""

GRIDS = {
    "grid-1": (46.352, 132.184),
    "grid-2": (46.322, 132.252),
    "grid-3": (46.301, 132.198),
}
"""Three grids (supply areas), each a work station with houses within a kilometre or two."""

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["建国", "海燕", "秀英", "志强", "桂兰", "德明", "玉梅", "国庆", "春华", "红霞", "军", "丽", "伟", "静", "磊"]


@dataclass(frozen=True)
class Behaviour:
    """How the drill's volunteers answer and work, in scenario seconds."""

    accept: float = 0.8
    """Share of offers accepted; of the rest, `decline` are declined and the others never answered."""
    decline: float = 0.1
    answer_after: tuple[float, float] = (10, 90)
    leave_after: tuple[float, float] = (30, 120)
    """From accepting to setting off (en_route)."""
    speed_kmh: float = 30
    """Travel speed: en_route to on_site takes the offer's distance at this speed, plus a minute."""
    work: tuple[float, float] = (300, 900)
    """On site to done."""
    feedback: float = 0.85
    """Share of requesters who rate the help once it is done (the rest close by themselves later)."""
    feedback_after: tuple[float, float] = (30, 300)


@dataclass(frozen=True)
class NeedPlan:
    """One need to submit at `at` scenario seconds; `body` is the POST /needs body without deadline and window."""

    at: float
    body: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    volunteers: list[dict[str, Any]]
    """POST /volunteers bodies (on duty, drill)."""
    needs: list[NeedPlan]
    behaviour: Behaviour = field(default_factory=Behaviour)
    timeout: float = 4 * 3600
    """Scenario seconds after which the drill stops even if needs are still open."""


def _near(rng: random.Random, centre: tuple[float, float], km: float) -> dict[str, float]:
    """A point scattered around a centre, about `km` kilometres (one standard deviation) each way."""
    lat, lon = centre
    return {
        "lat": round(lat + rng.gauss(0, km) / 111.2, 6),
        "lon": round(lon + rng.gauss(0, km) / (111.2 * 0.69), 6),  # cos(46.3°) ≈ 0.69
    }


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


class _Phones:
    """Distinct E.164 numbers for one scenario (+86 139 ...)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def next(self) -> str:
        while True:
            phone = f"+86139{self.rng.randrange(10**8):08d}"
            if phone not in self.used:
                self.used.add(phone)
                return phone


def _volunteers(
    rng: random.Random, phones: _Phones, crews: list[tuple[int, list[str], tuple[int, int], str]]
) -> list[dict[str, Any]]:
    """Volunteers spread over the grids: (how many, skills, capacity range, team) per crew."""
    out: list[dict[str, Any]] = []
    grids = list(GRIDS)
    for count, skills, (low, high), team in crews:
        for _ in range(count):
            grid = grids[len(out) % len(grids)]
            out.append(
                {
                    "name": _name(rng),
                    "phone": phones.next(),
                    "skills": skills,
                    "location": _near(rng, GRIDS[grid], 1.2),
                    "capacity": rng.randint(low, high),
                    "locale": "zh",
                    "team": team,
                    "grid": grid,
                    "on_duty": True,
                    "drill": True,
                }
            )
    return out


def _household(rng: random.Random, phones: _Phones, grid: str, house: int) -> dict[str, Any]:
    station = list(GRIDS).index(grid) + 1
    return {
        "location": _near(rng, GRIDS[grid], 0.9),
        "address": f"Station {station}, house {house}",
        "requester": {"name": _name(rng), "phone": phones.next(), "locale": "zh"},
        "grid": grid,
        "drill": True,
    }


def outage(seed: int) -> Scenario:
    """A well pump fails in a heat wave: 139 households on three supply areas lose water at once."""
    rng = random.Random(seed)
    phones = _Phones(rng)
    volunteers = _volunteers(
        rng,
        phones,
        [
            # a tanker truck fills the troughs of several farms per trip; a car carries water
            # for several households, and a pair of hands carries it in for a few
            (3, ["tanker_truck", "driving"], (4, 5), "pioneer"),
            (14, ["driving", "heavy_lifting"], (3, 5), "pioneer"),
            (16, ["driving"], (4, 5), "youth"),
            (8, ["heavy_lifting"], (2, 4), "youth"),
        ],
    )
    kinds = ["elderly"] * 32 + ["livestock"] * 8 + ["ordinary"] * 99
    rng.shuffle(kinds)
    needs = []
    grids = list(GRIDS)
    for i, what in enumerate(kinds):
        grid = grids[i % 3]
        body: dict[str, Any] = {"kind": "water_delivery", **_household(rng, phones, grid, 1 + i // 3)}
        if what == "elderly":
            body.update(
                priority="high",
                vulnerability=["elderly_alone"],
                skills=["driving", "heavy_lifting"],
                description="Lives alone, cannot carry water: please carry two buckets into the kitchen",
            )
        elif what == "livestock":
            body.update(
                priority=rng.choice(["high", "critical"]),
                vulnerability=["livestock"],
                skills=["tanker_truck", "driving"],
                description=f"Livestock farm: {rng.randrange(20, 120)} head of cattle need water today",
            )
        else:
            body.update(priority="normal", description="No water since the pump failed")
        # households notice over about two minutes: most at once, some later
        needs.append(NeedPlan(at=round(min(rng.expovariate(1 / 35), 120), 3), body=body))
    needs.sort(key=lambda n: n.at)
    return Scenario(
        name="outage",
        title="Well-pump outage in a heat wave: 139 households without water",
        volunteers=volunteers,
        needs=needs,
        behaviour=Behaviour(work=(240, 720)),
        timeout=4 * 3600,
    )


def gale(seed: int) -> Scenario:
    """A gale is forecast: greenhouse plastic and loose roofs must be tied down before the wind arrives."""
    rng = random.Random(seed)
    phones = _Phones(rng)
    volunteers = _volunteers(
        rng,
        phones,
        [(14, ["heavy_lifting"], (1, 1), "pioneer"), (10, ["heavy_lifting", "driving"], (1, 1), "youth")],
    )
    needs = []
    grids = list(GRIDS)
    for i in range(24):
        grid = grids[i % 3]
        body: dict[str, Any] = {"kind": "storm_prep", **_household(rng, phones, grid, 1 + i // 3)}
        if i % 2 == 0:
            body.update(
                priority="high",
                volunteers_needed=rng.randint(2, 3),
                description="Rice-seedling greenhouse: the plastic must be weighed down before the gale",
            )
        else:
            body.update(priority=rng.choice(["normal", "high"]), description="Loose roof sheets to tie down")
        needs.append(NeedPlan(at=round(rng.uniform(0, 300), 3), body=body))
    needs.sort(key=lambda n: n.at)
    return Scenario(
        name="gale",
        title="Gale warning: greenhouses and roofs to secure before the wind",
        volunteers=volunteers,
        needs=needs,
        behaviour=Behaviour(work=(900, 2400)),
        timeout=4 * 3600,
    )


def winter(seed: int) -> Scenario:
    """A cold snap: coal left at the roadside must be carried into the sheds of elderly people living alone."""
    rng = random.Random(seed)
    phones = _Phones(rng)
    volunteers = _volunteers(
        rng, phones, [(10, ["heavy_lifting"], (1, 2), "youth"), (4, ["heavy_lifting", "driving"], (1, 2), "pioneer")]
    )
    needs = []
    grids = list(GRIDS)
    for i in range(30):
        grid = grids[i % 3]
        body: dict[str, Any] = {
            "kind": "coal_hauling",
            **_household(rng, phones, grid, 1 + i // 3),
            "priority": rng.choice(["normal", "normal", "high"]),
            "vulnerability": ["elderly_alone"],
            "description": f"{rng.randint(1, 3)} tonnes of coal left on the road; carry it into the coal shed",
        }
        needs.append(NeedPlan(at=round(rng.uniform(0, 600), 3), body=body))
    needs.sort(key=lambda n: n.at)
    return Scenario(
        name="winter",
        title="Cold snap: coal carried into the sheds of elderly people living alone",
        volunteers=volunteers,
        needs=needs,
        behaviour=Behaviour(work=(900, 1800)),
        timeout=6 * 3600,
    )


def mini(seed: int) -> Scenario:
    """A small outage on one grid, for trying the drill out (and for the tests): 8 needs, 4 volunteers."""
    rng = random.Random(seed)
    phones = _Phones(rng)
    volunteers = _volunteers(
        rng,
        phones,
        [(2, ["driving", "heavy_lifting"], (1, 2), "pioneer"), (2, ["driving"], (1, 2), "youth")],
    )
    for v in volunteers:
        v["location"], v["grid"] = _near(rng, GRIDS["grid-1"], 1.0), "grid-1"
    needs = []
    for i in range(8):
        body: dict[str, Any] = {"kind": "water_delivery", **_household(rng, phones, "grid-1", i + 1)}
        if i % 4 == 0:
            body.update(priority="high", vulnerability=["elderly_alone"], skills=["driving", "heavy_lifting"])
        else:
            body.update(priority="normal")
        body["description"] = "No water since the pump failed"
        needs.append(NeedPlan(at=round(rng.uniform(0, 30), 3), body=body))
    needs.sort(key=lambda n: n.at)
    return Scenario(
        name="mini",
        title="A small outage on one grid",
        volunteers=volunteers,
        needs=needs,
        behaviour=Behaviour(work=(120, 300)),
        timeout=3600,
    )


SCENARIOS: dict[str, Callable[[int], Scenario]] = {"outage": outage, "gale": gale, "winter": winter, "mini": mini}


def build(name: str, seed: int) -> Scenario:
    """The scenario of that name, built from the seed; KeyError for an unknown name."""
    return SCENARIOS[name](seed)
