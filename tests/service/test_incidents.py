"""Incidents: when needs of one family form one by themselves, what a dispatcher's incident takes in,
and when dispatchers are told. The pure rules first, then the domain on the real Redis."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service import incidents, needs
from service.bootstrap import bootstrap
from service.catalog import KINDS, family_of
from service.clock import ManualClock
from service.config import Settings
from service.deps import Deps
from service.exceptions import Conflict, Forbidden, NotFound
from service.incidents import DEFAULT_RULE, Area, Recent, decide, km_between, opening_area, parse_rules, rule_for
from service.models import EventType, Family, IncidentRule, IncidentStatus, Location, NeedKind, Principal, Role
from service.store.incidents import Outcome

HERE = Location(46.34, 132.25)
KM_PER_DEGREE_LAT = 111.19
DISPATCHER = Principal(role=Role.DISPATCHER, token_id="tok_incidents")


def at(km_north: float, km_east: float = 0.0) -> Location:
    return Location(HERE.lat + km_north / KM_PER_DEGREE_LAT, HERE.lon + km_east / 76.8)


# ---- the catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        (NeedKind.WATER_DELIVERY, Family.WATER),
        (NeedKind.COAL_HAULING, Family.HEAT),
        (NeedKind.HEATING_REPAIR, Family.HEAT),
        (NeedKind.ELECTRICAL_REPAIR, Family.POWER),
        (NeedKind.MEAL_DELIVERY, Family.FOOD),
        (NeedKind.ERRAND_SHOPPING, Family.FOOD),
        (NeedKind.MEDICINE_PICKUP, Family.HEALTH),
        (NeedKind.TRANSPORT, Family.TRANSPORT),
        (NeedKind.PLUMBING_REPAIR, Family.HOME),
        (NeedKind.STORM_PREP, Family.HOME),
        (NeedKind.COMPANIONSHIP_VISIT, Family.CARE),
        (NeedKind.MEDIATION, Family.CARE),
        (NeedKind.OTHER, Family.OTHER),
    ],
)
def test_each_kind_belongs_to_a_family(kind: NeedKind, family: Family) -> None:
    assert family_of(kind) is family


def test_every_kind_has_a_family() -> None:
    assert set(KINDS) == set(NeedKind)
    assert all(isinstance(spec.family, Family) for spec in KINDS.values())


# ---- the rules, configured per family --------------------------------------------------------------


def test_rules_are_read_per_family_as_count_km_minutes() -> None:
    assert parse_rules("water=5/2/30;heat=3/1/60") == {
        "water": IncidentRule(count=5, radius_km=2.0, minutes=30.0),
        "heat": IncidentRule(count=3, radius_km=1.0, minutes=60.0),
    }
    assert parse_rules(" water = 4/0.5/15 ; ") == {"water": IncidentRule(4, 0.5, 15.0)}
    assert parse_rules("") == {}


def test_families_not_named_get_the_default_and_default_can_be_set() -> None:
    named = Settings.from_env({"AIDLINE_INCIDENT_RULES": "heat=3/1/60"})
    assert rule_for(named, Family.HEAT) == IncidentRule(3, 1.0, 60.0)
    assert rule_for(named, Family.WATER) == DEFAULT_RULE == IncidentRule(5, 2.0, 30.0)

    with_default = Settings.from_env({"AIDLINE_INCIDENT_RULES": "default=10/3/20;heat=3/1/60"})
    assert rule_for(with_default, Family.WATER) == IncidentRule(10, 3.0, 20.0)
    assert rule_for(with_default, Family.HEAT) == IncidentRule(3, 1.0, 60.0)


@pytest.mark.parametrize(
    "raw", ["water=5/2", "fire=5/2/30", "water=1/2/30", "water=5/0/30", "water=a/2/30", "water", "water=5/2/30/1"]
)
def test_a_rule_that_cannot_be_read_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ValueError, match="AIDLINE_INCIDENT_RULES"):
        parse_rules(raw)


def test_a_process_with_a_bad_rule_does_not_start(redis_server: Any) -> None:
    with pytest.raises(ValueError, match="fire=5/2/30"):
        bootstrap(Settings.from_env({"AIDLINE_INCIDENT_RULES": "fire=5/2/30"}, redis_url=redis_server.url))


# ---- when an incident forms (the specification of incident.lua) -------------------------------------

RULE = IncidentRule(count=5, radius_km=2.0, minutes=30.0)
NOW = 1_800_000_000.0


def recent(*places: tuple[Location, float]) -> list[Recent]:
    return [Recent(f"need_{i}", place, NOW - age) for i, (place, age) in enumerate(places)]


def test_the_fifth_need_within_the_distance_and_the_window_opens_an_incident_with_all_five() -> None:
    waiting = recent((at(0.5), 60), (at(-0.5), 120), (at(0, 1), 600), (at(1.9), 1700))

    outcome, _, members = decide(RULE, need=Recent("need_new", HERE, NOW), recent=waiting, areas=[])

    assert outcome is Outcome.OPENED
    assert members == sorted(["need_0", "need_1", "need_2", "need_3", "need_new"])


def test_four_needs_are_not_enough() -> None:
    waiting = recent((at(0.5), 60), (at(-0.5), 120), (at(0, 1), 600))

    assert decide(RULE, need=Recent("need_new", HERE, NOW), recent=waiting, areas=[])[0] is Outcome.WAITING


def test_needs_beyond_the_distance_or_older_than_the_window_do_not_count() -> None:
    waiting = recent((at(0.5), 60), (at(-0.5), 120), (at(0, 1), 600), (at(2.2), 60), (at(0.1), 1801))

    assert decide(RULE, need=Recent("need_new", HERE, NOW), recent=waiting, areas=[])[0] is Outcome.WAITING


def test_a_need_within_the_reach_of_an_open_incident_joins_the_nearest() -> None:
    areas = [Area("inc_far", at(3.5), 2.0, 4.0), Area("inc_near", at(-2.5), 2.0, 4.0)]

    assert decide(RULE, need=Recent("n", HERE, NOW), recent=[], areas=areas) == (Outcome.JOINED, "inc_near", ["n"])
    assert decide(RULE, need=Recent("n", at(9), NOW), recent=[], areas=areas)[0] is Outcome.WAITING


def test_an_opening_incident_is_centred_on_its_needs_and_covers_them_all() -> None:
    members = [at(0), at(1.9), at(0, 1.9), at(-1.9), at(0, -1.9)]

    centre, radius, reach = opening_area(RULE, members)

    assert km_between(centre, HERE) < 0.01
    assert radius == pytest.approx(max(km_between(centre, m) for m in members) + 0.2, abs=0.01)
    assert radius > 2.0 and reach == 4.0
    spread = [at(0), at(0.1)]
    assert opening_area(RULE, spread)[1:] == (2.0, 4.0), "never smaller than the rule's distance"


def test_the_area_is_a_closed_counter_clockwise_polygon_at_the_radius() -> None:
    area = incidents.circle(HERE, 2.0)

    assert area["type"] == "Polygon"
    [ring] = area["coordinates"]
    assert len(ring) == incidents.POLYGON_SIDES + 1 and ring[0] == ring[-1]
    for lon, lat in ring:
        assert km_between(HERE, Location(lat, lon)) == pytest.approx(2.0, rel=1e-3)
    shoelace = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:], strict=False))
    assert shoelace > 0, "exterior rings go counter-clockwise (RFC 7946)"


def test_an_area_across_the_date_line_keeps_longitudes_within_range() -> None:
    [ring] = incidents.circle(Location(0.0, 179.99), 5.0)["coordinates"]
    assert all(-180 <= lon <= 180 for lon, _ in ring)


# ---- on intake, against Redis ----------------------------------------------------------------------


def submit(deps: Deps, place: Location, kind: str = "water_delivery", **extra: Any) -> str:
    body = {"kind": kind, "location": {"lat": place.lat, "lon": place.lon}, **extra}
    return needs.submit_need(deps=deps, need_in=body, principal=DISPATCHER).id


def incident_of(deps: Deps, need_id: str) -> str | None:
    need = deps.store.needs.get(need_id)
    assert need is not None
    return need.incident_id


def incident_announcements(deps: Deps) -> list[tuple[str, str, str]]:
    return [
        (a["topic"], a["incident_id"], a["reason"])
        for a in deps.store.backlog.peek_outbox(1000)
        if a["topic"].startswith("incident")
    ]


def with_rules(deps: Deps, rules: str) -> Deps:
    return dataclasses.replace(deps, settings=dataclasses.replace(deps.settings, incident_rules=rules))


def test_five_water_needs_close_together_open_one_incident_with_all_of_them(deps: Deps) -> None:
    first = [submit(deps, at(0.3 * i)) for i in range(4)]
    assert [incident_of(deps, n) for n in first] == [None] * 4

    fifth = submit(deps, at(0, 0.5))

    incident_id = incident_of(deps, fifth)
    assert incident_id is not None
    incident = deps.store.incidents.get(incident_id)
    assert incident is not None
    assert (incident.family, incident.status, incident.declared_by) == (Family.WATER, IncidentStatus.OPEN, None)
    assert sorted(incident.need_ids) == sorted([*first, fifth])
    assert all(incident_of(deps, n) == incident_id for n in first)
    for need_id in incident.need_ids:
        joined = [e for e in deps.store.needs.events(need_id) if e.type is EventType.INCIDENT_JOINED]
        assert [e.detail for e in joined] == [{"incident_id": incident_id}]
    assert incident_announcements(deps) == [("incident_opened", incident_id, "")]
    assert deps.store.stats.get("incidents_opened:water:automatic") == 1


def test_needs_taken_in_after_redis_lost_its_scripts_are_still_placed_once(deps: Deps) -> None:
    # a restarted Redis holds no scripts: the transaction storing a need still commits, and its placement,
    # refused for the lost script, is made on its own right after
    first = [submit(deps, at(0.3 * i)) for i in range(4)]
    deps.redis.script_flush()

    fifth = submit(deps, at(0, 0.5))

    incident_id = incident_of(deps, fifth)
    assert incident_id is not None
    assert sorted(deps.store.incidents.get(incident_id).need_ids) == sorted([*first, fifth])  # type: ignore[union-attr]
    assert [e.type for e in deps.store.needs.events(fifth)].count(EventType.CREATED) == 1
    assert incident_announcements(deps) == [("incident_opened", incident_id, "")]


def test_a_later_need_inside_joins_and_one_a_little_beyond_grows_the_area_up_to_its_reach(deps: Deps) -> None:
    ids = [submit(deps, at(0.1 * i)) for i in range(5)]
    incident_id = incident_of(deps, ids[0])
    assert incident_id is not None
    before = deps.store.incidents.get(incident_id)
    assert before is not None and before.radius_km == 2.0 and before.reach_km == 4.0

    inside = submit(deps, at(0, 1))
    beyond = submit(deps, at(3.2))
    outside = submit(deps, at(-6))

    after = deps.store.incidents.get(incident_id)
    assert after is not None
    assert incident_of(deps, inside) == incident_of(deps, beyond) == incident_id
    assert incident_of(deps, outside) is None
    assert sorted(after.need_ids) == sorted([*ids, inside, beyond])  # needs of one millisecond: any order
    assert 3.2 < after.radius_km <= after.reach_km == 4.0
    assert incident_announcements(deps) == [("incident_opened", incident_id, "")], "told once, not per need"


def test_needs_of_another_family_or_resolved_do_not_count(deps: Deps) -> None:
    for i in range(3):
        submit(deps, at(0.1 * i))
    submit(deps, at(0.4), kind="heating_repair")
    cancelled = submit(deps, at(0.5))
    needs.cancel_need(deps=deps, need_id=cancelled, reason="water is back", principal=DISPATCHER)

    last = submit(deps, at(0.6))

    assert incident_of(deps, last) is None
    assert deps.store.incidents.ids_page(status=None, before=None, limit=10) == []


def test_needs_older_than_the_window_no_longer_count(deps: Deps, clock: ManualClock) -> None:
    for i in range(4):
        submit(deps, at(0.1 * i))
    clock.advance(31 * 60)

    assert incident_of(deps, submit(deps, at(0.5))) is None
    for i in range(3):
        submit(deps, at(0.6 + 0.1 * i))
    assert incident_of(deps, submit(deps, at(1))) is not None, "the five of the last 30 minutes form one"


def test_a_family_with_its_own_rule_forms_incidents_by_it(deps: Deps) -> None:
    quick = with_rules(deps, "heat=3/1/60")
    a, b = submit(quick, at(0), "coal_hauling"), submit(quick, at(0.5), "heating_repair")
    far = submit(quick, at(1.6), "coal_hauling")
    assert incident_of(quick, far) is None, "1.6 km from the newest: beyond heat's 1 km"

    c = submit(quick, at(0.2), "coal_hauling")

    incident_id = incident_of(quick, c)
    assert incident_id is not None
    assert incident_of(quick, a) == incident_of(quick, b) == incident_id
    assert incident_of(quick, far) is None
    water = [submit(quick, at(0.1 * i)) for i in range(3)]
    assert incident_of(quick, water[-1]) is None, "water keeps the default of five"


# ---- declared by dispatchers -----------------------------------------------------------------------


def test_a_declared_incident_takes_the_open_needs_of_its_family_inside_not_yet_in_one(deps: Deps) -> None:
    inside = submit(deps, at(0.5), "electrical_repair")
    other_family = submit(deps, at(0.5), "water_delivery")
    outside = submit(deps, at(4), "electrical_repair")
    done = submit(deps, at(0.2), "electrical_repair")
    needs.cancel_need(deps=deps, need_id=done, reason="fixed itself", principal=DISPATCHER)

    incident = incidents.declare_incident(
        deps=deps,
        incident_in={"family": "power", "centre": {"lat": HERE.lat, "lon": HERE.lon}, "radius_km": 3, "note": "storm"},
        principal=DISPATCHER,
    )

    assert incident.need_ids == [inside]
    assert (incident.family, incident.radius_km, incident.note) == (Family.POWER, 3.0, "storm")
    assert incident.declared_by == DISPATCHER.actor
    assert [incident_of(deps, n) for n in (other_family, outside, done)] == [None, None, None]
    later = submit(deps, at(-1), "electrical_repair")
    assert incident_of(deps, later) == incident.id, "a later need inside joins the declared incident"
    beyond = submit(deps, at(-3.5), "electrical_repair")
    assert incident_of(deps, beyond) is None, "a declared area does not grow"
    assert deps.store.stats.get("incidents_opened:power:declared") == 1


def test_a_need_already_in_an_incident_stays_in_it_when_another_is_declared_over_it(deps: Deps) -> None:
    ids = [submit(deps, at(0.1 * i)) for i in range(5)]
    first = incident_of(deps, ids[0])

    declared = incidents.declare_incident(
        deps=deps,
        incident_in={"family": "water", "centre": {"lat": HERE.lat, "lon": HERE.lon}, "radius_km": 1},
        principal=DISPATCHER,
    )

    assert declared.need_ids == []
    assert all(incident_of(deps, n) == first for n in ids)


def test_only_dispatchers_declare_and_close(deps: Deps) -> None:
    ops = Principal(role=Role.OPS, token_id="tok_ops")
    body = {"family": "water", "centre": {"lat": HERE.lat, "lon": HERE.lon}, "radius_km": 1}
    with pytest.raises(Forbidden):
        incidents.declare_incident(deps=deps, incident_in=body, principal=ops)
    incident = incidents.declare_incident(deps=deps, incident_in=body, principal=DISPATCHER)
    with pytest.raises(Forbidden):
        incidents.close_incident(deps=deps, incident_id=incident.id, principal=ops)


def test_a_closed_incident_takes_no_more_needs_and_closing_twice_is_a_conflict(deps: Deps) -> None:
    ids = [submit(deps, at(0.1 * i)) for i in range(5)]
    incident_id = incident_of(deps, ids[0])
    assert incident_id is not None

    closed = incidents.close_incident(deps=deps, incident_id=incident_id, principal=DISPATCHER)

    assert closed.status is IncidentStatus.CLOSED and closed.closed_at is not None
    assert incident_of(deps, submit(deps, at(0.2))) is None
    with pytest.raises(Conflict, match="closed already"):
        incidents.close_incident(deps=deps, incident_id=incident_id, principal=DISPATCHER)
    with pytest.raises(NotFound):
        incidents.close_incident(deps=deps, incident_id="inc_unknown", principal=DISPATCHER)


# ---- milestones --------------------------------------------------------------------------------------


def test_dispatchers_are_told_when_half_and_when_all_needs_are_resolved_once_each(deps: Deps) -> None:
    ids = [submit(deps, at(0.1 * i)) for i in range(5)]
    incident_id = incident_of(deps, ids[0])
    assert incident_id is not None

    def cancel(need_id: str) -> None:
        needs.cancel_need(deps=deps, need_id=need_id, reason="water is back", principal=DISPATCHER)

    cancel(ids[0])
    cancel(ids[1])
    assert incident_announcements(deps) == [("incident_opened", incident_id, "")]
    cancel(ids[2])
    assert incident_announcements(deps)[1:] == [("incident_milestone", incident_id, "half")]
    cancel(ids[3])
    cancel(ids[4])

    assert incident_announcements(deps)[1:] == [
        ("incident_milestone", incident_id, "half"),
        ("incident_milestone", incident_id, "all"),
    ]
    incidents.need_resolved(deps=deps, need_id=ids[4])  # told again? never
    assert len(incident_announcements(deps)) == 3


def test_an_incident_resolved_all_at_once_is_told_all_only(deps: Deps) -> None:
    only = submit(deps, at(0), "electrical_repair")
    incident = incidents.declare_incident(
        deps=deps,
        incident_in={"family": "power", "centre": {"lat": HERE.lat, "lon": HERE.lon}, "radius_km": 1},
        principal=DISPATCHER,
    )

    needs.cancel_need(deps=deps, need_id=only, reason="fixed", principal=DISPATCHER)

    assert [a[2] for a in incident_announcements(deps) if a[0] == "incident_milestone"] == ["all"]
    assert set(deps.store.incidents.milestones(incident.id)) == {"half", "all"}


def test_a_need_in_no_incident_resolves_without_touching_incidents(deps: Deps) -> None:
    lone = submit(deps, at(0))

    needs.cancel_need(deps=deps, need_id=lone, reason="no longer needed", principal=DISPATCHER)

    assert incident_announcements(deps) == []
