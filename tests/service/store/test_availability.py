"""The GEO sets of available volunteers: one per skill and one per pair of skills, always in step."""

from __future__ import annotations

from typing import Any

from service import volunteers

BODY = {"name": "Wang", "phone": "+8613800000009", "location": {"lat": 46.33, "lon": 132.21}, "capacity": 1}


def sets_holding(deps: Any, volunteer_id: str) -> set[str]:
    prefix = deps.store.keys.available("")
    found = set()
    for key in deps.redis.scan_iter(match=prefix + "*"):
        if deps.redis.zscore(key, volunteer_id) is not None:
            found.add(key.decode()[len(prefix) :])
    return found


def test_an_available_volunteer_is_in_each_skill_set_and_each_pair_set(deps: Any) -> None:
    v = volunteers.register_volunteer(
        deps=deps, volunteer_in={**BODY, "skills": ["driving", "heavy_lifting", "plumbing"], "on_duty": True}
    )

    assert sets_holding(deps, v.id) == {
        "general",
        "driving",
        "heavy_lifting",
        "plumbing",
        "driving+heavy_lifting",
        "driving+plumbing",
        "heavy_lifting+plumbing",
    }


def test_going_off_duty_or_reaching_capacity_leaves_every_set(deps: Any) -> None:
    v = volunteers.register_volunteer(
        deps=deps, volunteer_in={**BODY, "skills": ["driving", "heavy_lifting"], "on_duty": True}
    )

    volunteers.set_availability(deps=deps, volunteer_id=v.id, on_duty=False)

    assert sets_holding(deps, v.id) == set()


def test_changing_skills_moves_the_volunteer_between_pair_sets(deps: Any) -> None:
    v = volunteers.register_volunteer(
        deps=deps, volunteer_in={**BODY, "skills": ["driving", "heavy_lifting"], "on_duty": True}
    )

    volunteers.update_volunteer(deps=deps, volunteer_id=v.id, changes={"skills": ["driving", "tanker_truck"]})

    assert sets_holding(deps, v.id) == {"general", "driving", "tanker_truck", "driving+tanker_truck"}
