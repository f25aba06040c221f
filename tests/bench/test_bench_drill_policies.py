"""bench/bench_drill_policies.py: the simulation the README's drill section quotes keeps its own rules."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def policies(load_bench: Callable[[str], ModuleType]) -> ModuleType:
    return load_bench("bench_drill_policies")


@pytest.mark.parametrize("index", range(5), ids=lambda i: f"policy {i}")
def test_every_need_is_served_within_skills_and_never_below_the_optimum(policies: ModuleType, index: int) -> None:
    drill = policies.Drill(1)
    policy = policies.POLICIES[index]

    out = policies.play(drill, policy, policies.PLAYS["the drill's volunteers"], 1)

    policies.check(drill, out)  # skills; places are asserted as they are taken
    assert len(out.accepted) == len(drill.arrivals)
    travel = float(sum(drill.distance[i, j] for i, j in out.accepted.items()))
    assert policies.optimum(drill, out) <= travel + 1e-9
    assert not any((i, j) in out.refused for i, j in out.accepted.items()), "a refusal is never accepted later"
    assert (out.moves > 0) == (policy.moves != "none")


def test_a_seed_replays_the_same(policies: ModuleType) -> None:
    answers = policies.PLAYS["the drill's volunteers"]
    first = policies.play(policies.Drill(2), policies.POLICIES[2], answers, 2)
    again = policies.play(policies.Drill(2), policies.POLICIES[2], answers, 2)

    assert first.accepted == again.accepted and first.moves == again.moves


def test_re_planning_for_free_travels_less_than_never_moving_over_five_seeds(policies: ModuleType) -> None:
    rows = {policy: ratios for _, policy, ratios, _, _ in policies.run([1, 2, 3, 4, 5])[:5]}
    names = [p.name for p in policies.POLICIES]

    assert sum(rows[names[-1]]) < sum(rows[names[0]])
    assert all(r >= 1.0 for ratios in rows.values() for r in ratios)
