"""incident.lua and incident_close.lua: placing needs in incidents as the pure rule says, and the refusals."""

from __future__ import annotations

import random

import pytest

from service import incidents
from service.deps import Deps
from service.incidents import MARGIN_RATIO, Area, Recent, decide, km_between
from service.models import Family, IncidentRule, IncidentStatus, Location
from service.store import Placement, Refusal, Refused
from service.store.incidents import Outcome, PlaceRequest

HERE = Location(46.34, 132.25)
RULE = IncidentRule(count=4, radius_km=1.0, minutes=10.0)
START = 1_800_000_000.0


def need(deps: Deps, need_id: str, status: str = "queued") -> str:
    deps.redis.hset(deps.store.keys.need(need_id), mapping={"id": need_id, "status": status})
    return need_id


def place(deps: Deps, need_id: str, where: Location, epoch: float, *, new_id: str = "inc_new") -> Placement:
    return deps.store.incidents.place(
        need_id,
        PlaceRequest(
            family=Family.WATER,
            lat=where.lat,
            lon=where.lon,
            rule=RULE,
            margin_km=RULE.radius_km * MARGIN_RATIO,
            search_km=50.0,
            new_id=new_id,
            now_iso="2027-01-15T08:00:00.000Z",
            now_epoch=epoch,
        ),
    )


def offset(rng: random.Random, km: float) -> Location:
    return Location(HERE.lat + rng.uniform(-km, km) / 111.19, HERE.lon + rng.uniform(-km, km) / 76.8)


@pytest.mark.parametrize("seed", range(6))
def test_the_script_places_needs_as_the_pure_rule_decides(deps: Deps, seed: int) -> None:
    """Random arrivals over a few kilometres and minutes: each need's outcome is what `decide` says, given
    the needs still waiting and the open incidents as the script left them."""
    rng = random.Random(seed)
    waiting: list[Recent] = []
    seen: set[Outcome] = set()
    epoch = START
    for i in range(60):
        epoch += rng.uniform(0, 90)
        where = offset(rng, 3.0)
        nid = need(deps, f"need_{i:03d}")
        areas = []
        for iid in deps.store.incidents.ids_page(status=IncidentStatus.OPEN, before=None, limit=100):
            inc = deps.store.incidents.get(iid)
            assert inc is not None
            areas.append(Area(inc.id, inc.centre, inc.radius_km, inc.reach_km))
        expected = decide(RULE, need=Recent(nid, where, epoch), recent=waiting, areas=areas)

        placed = place(deps, nid, where, epoch, new_id=f"inc_{i:03d}")

        assert placed.outcome is expected[0], (i, placed, expected)
        seen.add(placed.outcome)
        if placed.outcome is Outcome.JOINED:
            assert placed.incident_id == expected[1]
        elif placed.outcome is Outcome.OPENED:
            assert sorted(placed.need_ids) == expected[2]
            opened = deps.store.incidents.get(f"inc_{i:03d}")
            assert opened is not None and sorted(opened.need_ids) == expected[2]
            members = [r.location for r in [*waiting, Recent(nid, where, epoch)] if r.id in expected[2]]
            centre, radius, reach = incidents.opening_area(RULE, members)
            assert km_between(opened.centre, centre) < 0.005
            assert (opened.radius_km, opened.reach_km) == (pytest.approx(radius, abs=0.005), pytest.approx(reach))
            waiting = [r for r in waiting if r.id not in expected[2]]
        else:
            waiting.append(Recent(nid, where, epoch))
        waiting = [r for r in waiting if r.epoch >= epoch - RULE.minutes * 60]
    assert seen == set(Outcome), "the walk joined, opened and waited"


def test_placing_a_need_twice_leaves_it_where_it_is(deps: Deps) -> None:
    ids = [need(deps, f"need_{i}") for i in range(4)]
    for i, nid in enumerate(ids):
        placed = place(deps, nid, HERE, START + i)
    assert placed.outcome is Outcome.OPENED

    again = place(deps, ids[0], HERE, START + 10, new_id="inc_other")

    assert (again.outcome, again.incident_id, again.need_ids) == (Outcome.JOINED, "inc_new", ())
    inc = deps.store.incidents.get("inc_new")
    assert inc is not None and len(inc.need_ids) == 4
    assert deps.store.incidents.get("inc_other") is None


def test_placing_an_unknown_need_is_refused(deps: Deps) -> None:
    with pytest.raises(Refused) as refused:
        place(deps, "need_ghost", HERE, START)
    assert refused.value.reason is Refusal.NO_NEED


def test_a_resolved_need_waiting_is_dropped_when_an_incident_opens(deps: Deps) -> None:
    for i in range(3):
        place(deps, need(deps, f"need_{i}"), HERE, START + i)
    deps.redis.hset(deps.store.keys.need("need_1"), "status", "cancelled")

    assert place(deps, need(deps, "need_3"), HERE, START + 3).outcome is Outcome.WAITING
    placed = place(deps, need(deps, "need_4"), HERE, START + 4)

    assert placed.outcome is Outcome.OPENED
    assert placed.need_ids == ("need_0", "need_2", "need_3", "need_4")


def test_declaring_joins_only_free_unresolved_needs(deps: Deps) -> None:
    need(deps, "need_free")
    need(deps, "need_done", status="done")
    need(deps, "need_taken")
    deps.redis.hset(deps.store.keys.need("need_taken"), "incident_id", "inc_before")

    placed = deps.store.incidents.declare(
        "inc_declared",
        family=Family.WATER,
        lat=HERE.lat,
        lon=HERE.lon,
        radius_km=2.0,
        note="pump failed",
        declared_by="dispatcher:tok",
        need_ids=["need_free", "need_done", "need_taken", "need_ghost"],
        now_iso="2027-01-15T08:00:00.000Z",
        now_epoch=START,
    )

    assert placed == Placement(Outcome.OPENED, "inc_declared", ("need_free",))
    inc = deps.store.incidents.get("inc_declared")
    assert inc is not None
    assert (inc.radius_km, inc.reach_km, inc.note, inc.declared_by) == (2.0, 2.0, "pump failed", "dispatcher:tok")
    assert deps.store.needs.field("need_taken", "incident_id") == "inc_before"


def test_closing_is_refused_for_an_unknown_or_closed_incident(deps: Deps) -> None:
    deps.store.incidents.declare(
        "inc_x",
        family=Family.HEAT,
        lat=HERE.lat,
        lon=HERE.lon,
        radius_km=1.0,
        note=None,
        declared_by="dispatcher:tok",
        need_ids=[],
        now_iso="2027-01-15T08:00:00.000Z",
        now_epoch=START,
    )
    assert deps.store.incidents.open_count(Family.HEAT) == 1

    deps.store.incidents.close("inc_x", family=Family.HEAT, now_iso="2027-01-15T09:00:00.000Z")

    assert deps.store.incidents.open_count(Family.HEAT) == 0
    with pytest.raises(Refused) as closed:
        deps.store.incidents.close("inc_x", family=Family.HEAT, now_iso="2027-01-15T09:00:00.000Z")
    assert (closed.value.reason, closed.value.detail) == (Refusal.INCIDENT_STATUS, "closed")
    with pytest.raises(Refused) as unknown:
        deps.store.incidents.close("inc_y", family=Family.HEAT, now_iso="2027-01-15T09:00:00.000Z")
    assert unknown.value.reason is Refusal.NO_INCIDENT
