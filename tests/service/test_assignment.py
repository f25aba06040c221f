"""assign_jointly: the pure choice of who goes where when several needs wait at once."""

from __future__ import annotations

import itertools
import random

import pytest

from service.assignment import Option, Wanting, assign_jointly


def want(need_id: str, *options: tuple[str, float], places: int = 1, free: int = 1) -> Wanting:
    ordered = sorted(options, key=lambda o: o[1])
    return Wanting(need_id, places, tuple(Option(vid, km, free) for vid, km in ordered))


def travel(wanting: list[Wanting], given: dict[str, list[str]]) -> float:
    km = {(w.need_id, o.volunteer_id): o.distance_km for w in wanting for o in w.options}
    return sum(km[(nid, vid)] for nid, vids in given.items() for vid in vids)


def test_with_volunteers_to_spare_each_need_gets_its_nearest() -> None:
    wanting = [want("n1", ("a", 1.0), ("b", 3.0)), want("n2", ("b", 1.5), ("c", 2.0))]

    assert assign_jointly(wanting) == {"n1": ["a"], "n2": ["b"]}


def test_a_volunteer_wanted_by_two_goes_where_the_total_travel_is_least() -> None:
    # nearest first, in arrival order: n1 takes a (1 km), n2 gets c (9 km): 10 km in all
    wanting = [want("n1", ("a", 1.0), ("b", 2.0)), want("n2", ("a", 1.5), ("c", 9.0))]

    given = assign_jointly(wanting)

    assert given == {"n1": ["b"], "n2": ["a"]}
    assert travel(wanting, given) == pytest.approx(3.5)


def test_as_many_places_as_possible_are_filled_before_travel_is_weighed() -> None:
    # n1 could have the very near a, but then n2 (who only has a) gets nobody
    wanting = [want("n1", ("a", 0.1), ("b", 20.0)), want("n2", ("a", 15.0))]

    assert assign_jointly(wanting) == {"n1": ["b"], "n2": ["a"]}


def test_capacity_is_respected() -> None:
    wanting = [want(f"n{i}", ("a", 1.0 + i), free=2) for i in range(4)]

    given = assign_jointly(wanting)

    assert sorted(given) == ["n0", "n1"], "a can take two"


def test_a_need_for_two_gets_two_different_volunteers() -> None:
    wanting = [want("n1", ("a", 1.0), ("b", 2.0), ("c", 3.0), places=2, free=2)]

    assert assign_jointly(wanting) == {"n1": ["a", "b"]}


def test_equal_distances_keep_the_needs_own_order() -> None:
    wanting = [Wanting("n1", 1, (Option("rested", 2.0, 1), Option("busy", 2.0, 1)))]

    assert assign_jointly(wanting) == {"n1": ["rested"]}


def test_nobody_to_give_gives_nothing() -> None:
    assert assign_jointly([want("n1"), Wanting("n2", 0, (Option("a", 1.0, 1),))]) == {}


def test_it_is_optimal_on_small_random_cases() -> None:
    rng = random.Random(11)
    for _ in range(200):
        volunteers = [f"v{i}" for i in range(rng.randint(1, 4))]
        wanting = [
            want(f"n{j}", *[(v, round(rng.uniform(0.1, 10), 2)) for v in volunteers if rng.random() < 0.8])
            for j in range(rng.randint(1, 4))
        ]
        given = assign_jointly(wanting)
        best = brute_force(wanting, volunteers)
        assert sum(len(v) for v in given.values()) == best[0]
        assert travel(wanting, given) == pytest.approx(best[1], abs=1e-4)


def brute_force(wanting: list[Wanting], volunteers: list[str]) -> tuple[int, float]:
    """(most places filled, least travel among those), trying every assignment of capacity-1 volunteers."""
    km = {(w.need_id, o.volunteer_id): o.distance_km for w in wanting for o in w.options}
    best = (0, 0.0)
    choices = [None, *volunteers]
    for pick in itertools.product(choices, repeat=len(wanting)):
        used = [v for v in pick if v is not None]
        if len(used) != len(set(used)):
            continue
        if any(v is not None and (w.need_id, v) not in km for w, v in zip(wanting, pick, strict=True)):
            continue
        filled = len(used)
        total = sum(km[(w.need_id, v)] for w, v in zip(wanting, pick, strict=True) if v is not None)
        if filled > best[0] or (filled == best[0] and total < best[1]):
            best = (filled, total)
    return best


def test_urgent_needs_are_served_first() -> None:
    # one volunteer, nearer the ordinary need: the urgent need still gets them
    wanting = [want("ordinary", ("a", 1.0)), Wanting("urgent", 1, (Option("a", 8.0, 1),), urgent=True)]

    assert assign_jointly(wanting) == {"urgent": ["a"]}
