"""What a dispatcher looks at: the queue that needs a human, and the nearest volunteers who could take a need."""

from __future__ import annotations

from typing import Any

import pytest

from service import board, needs
from service.board import Why
from service.dispatch import escalate
from service.exceptions import Forbidden, InvalidTransition
from service.models import Principal, Priority, Role

DISPATCHER = Principal(Role.DISPATCHER, "tok_d")
OPS = Principal(Role.OPS, "tok_o")


def test_the_queue_names_why_each_need_is_in_it(deps: Any, make_need: Any, clock: Any) -> None:
    escalated, deferred, flagged = make_need(), make_need(), make_need(priority="low")
    assert escalate(deps=deps, need=needs.load_need(deps=deps, need_id=escalated["id"]), reason="nobody")
    needs.defer_need(deps=deps, need_id=deferred["id"], reason="road closed", principal=DISPATCHER)
    deps.store.needs.flag(flagged["id"], at_epoch=1.0)

    rows = board.needs_a_human(deps=deps, principal=OPS)

    assert [(r.need.id, r.why) for r in rows] == [
        (escalated["id"], Why.ESCALATED),
        (flagged["id"], Why.FLAGGED),
        (deferred["id"], Why.DEFERRED),
    ]


def test_a_waiting_need_far_into_its_deadline_is_at_risk(deps: Any, make_need: Any, clock: Any) -> None:
    need = make_need(priority="critical")
    assert board.needs_a_human(deps=deps, principal=DISPATCHER) == []

    clock.advance(3600)

    rows = board.needs_a_human(deps=deps, principal=DISPATCHER)
    assert [(r.need.id, r.why) for r in rows] == [(need["id"], Why.AT_RISK)]
    assert rows[0].age_seconds >= 3600


def test_a_resolved_flagged_need_leaves_the_queue(deps: Any, make_need: Any) -> None:
    need = make_need()
    deps.store.needs.flag(need["id"], at_epoch=1.0)
    needs.cancel_need(deps=deps, need_id=need["id"], reason="duplicate", principal=DISPATCHER)

    assert board.needs_a_human(deps=deps, principal=DISPATCHER) == []
    assert needs.load_need(deps=deps, need_id=need["id"]).flagged


def test_volunteers_and_intake_do_not_see_the_board(deps: Any) -> None:
    with pytest.raises(Forbidden):
        board.needs_a_human(deps=deps, principal=Principal(Role.INTAKE, "tok_i"))
    with pytest.raises(Forbidden):
        board.counts(deps=deps, principal=Principal(Role.VOLUNTEER, "tok_v", "vol_1"))


def test_nearest_candidates_are_available_with_the_skills_nearest_first(
    deps: Any, make_need: Any, make_volunteer: Any
) -> None:
    far = make_volunteer(on_duty=True, location={"lat": 46.40, "lon": 132.25}, phone="+8613800000021")
    near = make_volunteer(on_duty=True, location={"lat": 46.341, "lon": 132.25}, phone="+8613800000022")
    make_volunteer(on_duty=False, location={"lat": 46.34, "lon": 132.25}, phone="+8613800000023")
    make_volunteer(on_duty=True, skills=["cooking"], location={"lat": 46.34, "lon": 132.25}, phone="+8613800000024")
    make_volunteer(on_duty=True, location={"lat": 48.0, "lon": 132.25}, phone="+8613800000025")  # beyond 25 km
    full = make_volunteer(on_duty=True, capacity=1, location={"lat": 46.34, "lon": 132.25}, phone="+8613800000026")
    taken = make_need(location={"lat": 46.34, "lon": 132.25})
    from service.offers import assign_volunteer

    assign_volunteer(deps=deps, need_id=taken["id"], volunteer_id=full["id"], principal=DISPATCHER)
    need = make_need()

    picks = board.nearest_candidates(deps=deps, need_id=need["id"], principal=DISPATCHER)

    assert [p.volunteer.id for p in picks] == [near["id"], far["id"]]
    assert picks[0].distance_km < picks[1].distance_km


def test_a_dispatcher_changes_a_needs_priority_until_it_is_resolved(deps: Any, make_need: Any) -> None:
    need = make_need(priority="low")

    changed = needs.change_priority(deps=deps, need_id=need["id"], priority=Priority.CRITICAL, principal=DISPATCHER)

    assert changed.priority is Priority.CRITICAL
    assert needs.load_need(deps=deps, need_id=need["id"]).priority is Priority.CRITICAL
    event = deps.store.needs.events(need["id"])[-1]
    assert (event.type, event.detail) == ("priority_changed", {"from": "low", "to": "critical"})
    with pytest.raises(Forbidden):
        needs.change_priority(deps=deps, need_id=need["id"], priority=Priority.LOW, principal=OPS)
    needs.cancel_need(deps=deps, need_id=need["id"], reason="duplicate", principal=DISPATCHER)
    with pytest.raises(InvalidTransition):
        needs.change_priority(deps=deps, need_id=need["id"], priority=Priority.LOW, principal=DISPATCHER)
