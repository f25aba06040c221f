"""choose_volunteers: the pure rule of who is offered a need, no Redis, no clock; choose_team for a need with
roles, and role_for, the role a dispatcher's chosen volunteer takes."""

from __future__ import annotations

import dataclasses

import pytest

from service.matching import (
    Candidate,
    FairLoad,
    Requirement,
    choose_team,
    choose_volunteers,
    distance_km,
    role_for,
)
from service.models import Location, NeedRole, Skill

HERE = Location(lat=46.34, lon=132.25)
KM_PER_DEGREE_LAT = 111.19


def north(km: float) -> Location:
    """A point `km` kilometres due north of HERE."""
    return Location(lat=HERE.lat + km / KM_PER_DEGREE_LAT, lon=HERE.lon)


def requirement(*skills: str, radius_km: float = 25.0) -> Requirement:
    return Requirement(location=HERE, skills=frozenset(skills or {"driving"}), radius_km=radius_km)


def candidate(volunteer_id: str, km: float, **overrides: object) -> Candidate:
    base = Candidate(
        volunteer_id=volunteer_id,
        location=north(km),
        skills=frozenset({"general", "driving", "plumbing"}),
        on_duty=True,
        load=0,
        capacity=2,
        idle_since=1_700_000_000.0,
    )
    return dataclasses.replace(base, **overrides)


def chosen(choices: list) -> list[str]:
    return [c.volunteer_id for c in choices]


def test_helper_places_volunteers_at_the_stated_distance() -> None:
    assert distance_km(HERE, north(8)) == pytest.approx(8, abs=0.01)


def test_nearest_eligible_volunteer_is_chosen() -> None:
    candidates = [candidate("far", 6.0), candidate("near", 1.0), candidate("middle", 3.0)]

    choices = choose_volunteers(requirement(), candidates)

    assert chosen(choices) == ["near"]
    assert choices[0].distance_km == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    "why, overrides",
    [
        ("missing skill", {"skills": frozenset({"general", "plumbing"})}),
        ("off duty", {"on_duty": False}),
        ("at capacity", {"load": 2, "capacity": 2}),
        ("above capacity", {"load": 3, "capacity": 2}),
    ],
)
def test_ineligible_nearest_volunteer_is_skipped(why: str, overrides: dict) -> None:
    candidates = [candidate("nearest", 0.5, **overrides), candidate("next", 2.0)]

    assert chosen(choose_volunteers(requirement("driving"), candidates)) == ["next"], why


def test_volunteer_needs_every_required_skill() -> None:
    candidates = [
        candidate("driver_only", 0.5, skills=frozenset({"driving"})),
        candidate("plumber_only", 0.7, skills=frozenset({"plumbing"})),
        candidate("both", 3.0, skills=frozenset({"driving", "plumbing"})),
    ]

    assert chosen(choose_volunteers(requirement("driving", "plumbing"), candidates, count=3)) == ["both"]


def test_excluded_volunteers_are_skipped() -> None:
    candidates = [candidate("tried", 0.5), candidate("other", 4.0)]

    assert chosen(choose_volunteers(requirement(), candidates, exclude={"tried"})) == ["other"]


def test_volunteer_outside_the_radius_is_skipped() -> None:
    candidates = [candidate("outside", 5.5), candidate("inside", 4.5)]

    assert chosen(choose_volunteers(requirement(radius_km=5.0), candidates, count=2)) == ["inside"]


def test_nobody_eligible_gives_no_choice() -> None:
    candidates = [candidate("off", 1.0, on_duty=False), candidate("far", 30.0)]

    assert choose_volunteers(requirement(radius_km=25.0), candidates) == []


def test_tie_within_100_m_goes_to_lower_load() -> None:
    candidates = [candidate("busy", 1.00, load=1), candidate("free", 1.03, load=0)]

    assert chosen(choose_volunteers(requirement(), candidates)) == ["free"]


def test_tie_within_100_m_and_equal_load_goes_to_longest_idle() -> None:
    candidates = [
        candidate("recent", 1.00, idle_since=2_000.0),
        candidate("longest_idle", 1.03, idle_since=1_000.0),
    ]

    assert chosen(choose_volunteers(requirement(), candidates)) == ["longest_idle"]


def test_load_breaks_ties_before_idle_time() -> None:
    candidates = [
        candidate("idle_but_busy", 1.00, load=1, idle_since=1_000.0),
        candidate("fresh_but_free", 1.03, load=0, idle_since=9_000.0),
    ]

    assert chosen(choose_volunteers(requirement(), candidates)) == ["fresh_but_free"]


def test_more_than_100_m_nearer_wins_over_lower_load_and_longer_idle() -> None:
    candidates = [
        candidate("nearer", 1.0, load=1, idle_since=9_000.0),
        candidate("farther", 1.5, load=0, idle_since=1_000.0),
    ]

    assert chosen(choose_volunteers(requirement(), candidates)) == ["nearer"]


def test_count_gives_that_many_distinct_volunteers_nearest_first() -> None:
    candidates = [candidate(f"v{km}", float(km)) for km in (5, 1, 4, 2, 3)]

    choices = choose_volunteers(requirement(), candidates, count=3)

    assert chosen(choices) == ["v1", "v2", "v3"]
    assert len({c.volunteer_id for c in choices}) == 3


def test_a_volunteer_listed_twice_is_chosen_once() -> None:
    candidates = [candidate("twice", 1.0), candidate("twice", 1.0), candidate("other", 2.0)]

    assert chosen(choose_volunteers(requirement(), candidates, count=2)) == ["twice", "other"]


def test_count_beyond_the_eligible_returns_all_eligible() -> None:
    candidates = [candidate("a", 1.0), candidate("b", 2.0), candidate("off", 0.5, on_duty=False)]

    assert chosen(choose_volunteers(requirement(), candidates, count=5)) == ["a", "b"]


@pytest.mark.parametrize("count", [0, -1])
def test_count_of_zero_or_less_chooses_nobody(count: int) -> None:
    assert choose_volunteers(requirement(), [candidate("a", 1.0)], count=count) == []


# ---- fair load -----------------------------------------------------------------------------------

FAIR = FairLoad(ratio=0.10, max_km=0.5, pool=8)


def test_among_the_nearly_as_near_the_one_with_fewer_recent_tasks_goes() -> None:
    candidates = [candidate("busy", 2.0, recent_tasks=5), candidate("rested", 2.25, recent_tasks=1)]

    assert chosen(choose_volunteers(requirement(), candidates, fair=FAIR)) == ["rested"]
    assert chosen(choose_volunteers(requirement(), candidates)) == ["busy"], "without fair load: nearest"


def test_nearly_as_near_is_the_tie_band_plus_ten_percent() -> None:
    candidates = [candidate("busy", 2.0, recent_tasks=5), candidate("further", 2.35, recent_tasks=0)]

    assert chosen(choose_volunteers(requirement(), candidates, fair=FAIR)) == ["busy"], "0.35 km > 0.1 + 0.2"


def test_the_slack_is_never_more_than_500_m() -> None:
    candidates = [candidate("busy", 10.0, recent_tasks=5), candidate("rested", 10.65, recent_tasks=0)]

    assert chosen(choose_volunteers(requirement(), candidates, fair=FAIR)) == ["busy"], "0.65 km > 0.1 + 0.5"
    near = [candidate("busy", 10.0, recent_tasks=5), candidate("rested", 10.55, recent_tasks=0)]
    assert chosen(choose_volunteers(requirement(), near, fair=FAIR)) == ["rested"]


def test_equal_recent_tasks_fall_back_to_nearest_first() -> None:
    candidates = [candidate("a", 2.2, recent_tasks=1), candidate("b", 2.0, recent_tasks=1)]

    assert chosen(choose_volunteers(requirement(), candidates, fair=FAIR, count=2)) == ["b", "a"]


def test_only_the_first_of_the_nearly_as_near_are_weighed() -> None:
    crowd = [candidate(f"v{i:02d}", 1.0 + i * 0.001, recent_tasks=3) for i in range(5)]
    rested = candidate("rested", 1.08, recent_tasks=0)

    assert chosen(choose_volunteers(requirement(), [*crowd, rested], fair=FAIR)) == ["rested"]
    small_pool = FairLoad(ratio=0.10, max_km=0.5, pool=3)
    assert chosen(choose_volunteers(requirement(), [*crowd, rested], fair=small_pool)) == ["v00"]


# ---- roles ---------------------------------------------------------------------------------------


def test_each_role_gets_its_own_nearest_volunteers_with_its_skills() -> None:
    candidates = [
        candidate("driver", 1.0),
        candidate("lifter", 2.0, skills=frozenset({"general", "heavy_lifting"})),
        candidate("far lifter", 5.0, skills=frozenset({"general", "heavy_lifting"})),
    ]

    team = choose_team([(requirement("driving"), 1), (requirement("heavy_lifting"), 2)], candidates)

    assert [chosen(c) for c in team] == [["driver"], ["lifter", "far lifter"]]


def test_a_volunteer_chosen_for_one_role_is_not_chosen_for_a_later_one() -> None:
    both = frozenset({"general", "driving", "heavy_lifting"})
    candidates = [candidate("both", 1.0, skills=both), candidate("lifter", 3.0, skills=both - {"driving"})]

    team = choose_team([(requirement("driving"), 1), (requirement("heavy_lifting"), 2)], candidates)

    assert [chosen(c) for c in team] == [["both"], ["lifter"]], "a role short of volunteers gets who is left"


def test_volunteers_excluded_are_excluded_from_every_role() -> None:
    candidates = [candidate("tried", 1.0), candidate("fresh", 2.0)]

    team = choose_team([(requirement("driving"), 1), (requirement("plumbing"), 1)], candidates, exclude={"tried"})

    assert [chosen(c) for c in team] == [["fresh"], []]


def roles(*specs: tuple[tuple[str, ...], int, int, int]) -> list[NeedRole]:
    """NeedRoles from (skills, count, live offers, accepted)."""
    return [NeedRole([Skill(s) for s in skills], count, active, accepted) for skills, count, active, accepted in specs]


def test_a_dispatcher_assigns_to_the_first_open_role_the_volunteer_fits() -> None:
    need = roles((("driving", "tanker_truck"), 1, 0, 0), (("heavy_lifting",), 2, 0, 0))

    assert role_for(need, ["general", "heavy_lifting"]) == 1
    assert role_for(need, ["driving", "tanker_truck", "heavy_lifting"]) == 0


def test_a_role_with_a_free_place_goes_before_one_whose_places_all_wait_for_answers() -> None:
    need = roles((("driving",), 1, 1, 0), (("driving",), 1, 0, 0))

    assert role_for(need, ["driving"]) == 1


def test_a_filled_role_is_never_given_nor_a_role_whose_skills_the_volunteer_lacks() -> None:
    need = roles((("heavy_lifting",), 1, 1, 1), (("tanker_truck",), 1, 1, 0))

    assert role_for(need, ["heavy_lifting"]) is None
    assert role_for(need, ["tanker_truck"]) == 1
    assert role_for(roles((("driving",), 1, 1, 1)), ["driving"]) is None
    assert role_for(roles((("general",), 1, 0, 0)), []) == 0, "everyone has 'general'"


# ---- continuity: a household's previous visitor ------------------------------------------------------------


def test_a_favoured_volunteer_nearly_as_near_as_the_nearest_comes_first() -> None:
    candidates = [candidate("vol_near", 1.0), candidate("vol_previous", 1.08), candidate("vol_other", 1.05)]

    assert chosen(choose_volunteers(requirement(), candidates)) == ["vol_near"]
    assert chosen(choose_volunteers(requirement(), candidates, favoured=["vol_previous"])) == ["vol_previous"]
    assert chosen(choose_volunteers(requirement(), candidates, count=3, favoured=["vol_previous"])) == [
        "vol_previous",
        "vol_near",
        "vol_other",
    ]


def test_a_favoured_volunteer_much_further_than_the_nearest_is_not_preferred() -> None:
    candidates = [candidate("vol_near", 1.0), candidate("vol_previous", 3.0)]

    assert chosen(choose_volunteers(requirement(), candidates, favoured=["vol_previous"], fair=FairLoad())) == [
        "vol_near"
    ]


def test_favoured_volunteers_come_in_their_order_before_fair_load() -> None:
    fair = FairLoad(ratio=0.5, max_km=2.0, pool=3)
    candidates = [
        candidate("vol_busy_previous", 1.2, recent_tasks=5),
        candidate("vol_preferred", 1.1, recent_tasks=3),
        candidate("vol_idle", 1.0, recent_tasks=0),
    ]

    order = chosen(
        choose_volunteers(
            requirement(), candidates, count=3, fair=fair, favoured=["vol_busy_previous", "vol_preferred"]
        )
    )

    assert order == ["vol_busy_previous", "vol_preferred", "vol_idle"]
    assert chosen(choose_volunteers(requirement(), candidates, count=3, fair=fair)) == [
        "vol_idle",
        "vol_preferred",
        "vol_busy_previous",
    ]


def test_a_favoured_volunteer_who_is_not_eligible_is_skipped() -> None:
    candidates = [candidate("vol_near", 1.0), candidate("vol_previous", 1.0, on_duty=False)]

    assert chosen(choose_volunteers(requirement(), candidates, favoured=["vol_previous", "vol_unknown"])) == [
        "vol_near"
    ]
