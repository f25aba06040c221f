"""The escalation ladder against a real Redis, time moved by the ManualClock: the on-call captain first, then
the dispatchers, then any tier above; an acknowledgement stops the climb; the sweep takes due steps and
restarts a ladder a crash lost."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest

from service import captains, sweeper
from service.bootstrap import bootstrap
from service.clock import ManualClock
from service.config import SettingError, Settings
from service.deps import Deps
from service.exceptions import Conflict, Forbidden
from service.ladder import parse_ladder
from service.models import Principal, Priority, Role

CAPTAIN_PHONE = "+8613800000077"


def local(moment: Any) -> str:
    """A UTC moment as the rota's local 'YYYY-MM-DDTHH:MM' (the tests run with AIDLINE_TIMEZONE=UTC)."""
    return str(moment.strftime("%Y-%m-%dT%H:%M"))


@pytest.fixture
def captain(make_captain: Any) -> dict[str, Any]:
    volunteer, _ = make_captain("grid-2", name="Wang Captain", phone=CAPTAIN_PHONE, channels=["json://127.0.0.1:9/c"])
    return volunteer


@pytest.fixture
def on_call(deps: Deps, clock: ManualClock, captain: dict[str, Any]) -> dict[str, Any]:
    """The captain is on call for grid-2 from an hour ago to a day from now (an override)."""
    body = {
        "overrides": [
            {
                "from": local(clock.now() - timedelta(hours=1)),
                "to": local(clock.now() + timedelta(days=1)),
                "volunteer_id": captain["id"],
            }
        ]
    }
    captains.put_rota(deps=deps, grid="grid-2", rota_in=body, principal=Principal(Role.DISPATCHER, "tok_d"))
    return captain


@pytest.fixture
def escalated(make_need: Any, work: Any, get_need: Any) -> Any:
    """Submit a need nobody can take (no volunteer has the skill) and let the matcher escalate it."""

    def _escalate(**overrides: Any) -> dict[str, Any]:
        need = make_need(grid="grid-2", kind="heating_repair", **overrides)
        work(queues=("urgent", "default", "low"))
        assert get_need(need["id"])["status"] == "escalated"
        return need

    return _escalate


def steps(client: Any, tokens: Any, need_id: str) -> list[tuple[str, ...]]:
    """The ladder's entries on the timeline: (type, tier, outcome) or (type, reason)."""
    events = client.get(f"/api/v1/needs/{need_id}/events", headers=tokens.dispatcher).get_json()["items"]
    out = []
    for e in events:
        if e["type"] == "escalation_step":
            out.append((e["type"], e["detail"]["tier"], e["detail"]["outcome"]))
        elif e["type"] in ("escalation_ladder_ended", "escalation_acknowledged"):
            out.append((e["type"], e["detail"].get("reason") or e["actor"]))
    return out


def told(deps: Deps) -> list[tuple[str, str]]:
    """(topic, volunteer) of the escalation announcements waiting in the outbox."""
    return [
        (a["topic"], a["volunteer_id"])
        for a in deps.store.backlog.peek_outbox(100)
        if a["topic"].startswith("escalated")
    ]


def test_an_escalation_goes_first_to_the_grids_on_call_captain(
    deps: Deps, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated()

    assert steps(client, tokens, need["id"]) == [("escalation_step", "captain", "notified")]
    assert told(deps) == [("escalated_captain", on_call["id"])]
    ladder = deps.store.captains.ladder(need["id"])
    assert ladder is not None and ladder["captain_id"] == on_call["id"] and len(ladder["code"]) == 6


def test_unacknowledged_the_escalation_climbs_to_the_dispatchers_after_ten_minutes_then_ends(
    deps: Deps, clock: ManualClock, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated(priority="high")

    clock.advance(599)
    assert captains.advance_due_ladders(deps=deps) == 0
    assert steps(client, tokens, need["id"]) == [("escalation_step", "captain", "notified")]

    clock.advance(2)
    assert captains.advance_due_ladders(deps=deps) == 1
    assert steps(client, tokens, need["id"])[-1] == ("escalation_step", "dispatchers", "notified")
    assert told(deps)[-1] == ("escalated", "")

    clock.advance(601)
    captains.advance_due_ladders(deps=deps)
    assert steps(client, tokens, need["id"]) == [
        ("escalation_step", "captain", "notified"),
        ("escalation_step", "dispatchers", "notified"),
        ("escalation_ladder_ended", "nobody acknowledged, up to the top tier"),
    ]
    assert deps.store.captains.due_ladders(now_epoch=clock.now().timestamp() + 10**6) == []


def test_a_critical_need_climbs_after_three_minutes(
    deps: Deps, clock: ManualClock, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated(priority="critical")

    clock.advance(179)
    captains.advance_due_ladders(deps=deps)
    assert len(steps(client, tokens, need["id"])) == 1
    clock.advance(2)
    captains.advance_due_ladders(deps=deps)
    assert steps(client, tokens, need["id"])[-1] == ("escalation_step", "dispatchers", "notified")


def test_a_grid_with_nobody_on_call_goes_straight_to_the_dispatchers_saying_why(
    deps: Deps, client: Any, tokens: Any, escalated: Any
) -> None:
    need = escalated()

    events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    skipped = [e["detail"] for e in events if e["type"] == "escalation_step" and e["detail"]["outcome"] == "skipped"]
    assert skipped == [{"tier": "captain", "step": 0, "outcome": "skipped", "reason": "nobody on call"}]
    assert steps(client, tokens, need["id"])[-1] == ("escalation_step", "dispatchers", "notified")
    assert told(deps) == [("escalated", "")]


def test_the_dispatchers_step_says_when_no_channel_reaches_them_and_they_see_it_on_the_board_only(
    deps: Deps, client: Any, tokens: Any, escalated: Any
) -> None:
    heard = dataclasses.replace(deps.settings, dispatcher_channels=("json://127.0.0.1:9/dispatch",))
    quiet = dataclasses.replace(deps.settings, dispatcher_channels=(), grid_channels={})

    assert captains.targets(dataclasses.replace(deps, settings=heard), "grid-2", Priority.HIGH)[-1].note == ""
    assert captains.targets(dataclasses.replace(deps, settings=quiet), "grid-2", Priority.HIGH)[-1].note == (
        captains.BOARD_ONLY
    )
    need = escalated()
    events = client.get(f"/api/v1/needs/{need['id']}/events", headers=tokens.dispatcher).get_json()["items"]
    [told] = [e["detail"] for e in events if e["type"] == "escalation_step" and e["detail"]["outcome"] == "notified"]
    assert told["tier"] == "dispatchers"
    expected = "" if captains.dispatcher_channels(deps, "grid-2") else captains.BOARD_ONLY
    assert told.get("note", "") == expected


def test_acknowledging_stops_the_climb_and_leaves_the_need_as_it_is(
    deps: Deps, clock: ManualClock, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any, get_need: Any
) -> None:
    need = escalated()
    captain = Principal(Role.CAPTAIN, "tok_c", on_call["id"], ("grid-2",))

    done = captains.acknowledge(deps=deps, need_id=need["id"], principal=captain)
    clock.advance(3600)
    captains.advance_due_ladders(deps=deps)

    assert done.first and done.tier == "captain" and done.acked_by == f"captain:{on_call['id']}"
    assert steps(client, tokens, need["id"]) == [
        ("escalation_step", "captain", "notified"),
        ("escalation_acknowledged", f"captain:{on_call['id']}"),
    ]
    assert get_need(need["id"])["status"] == "escalated"
    again = captains.acknowledge(deps=deps, need_id=need["id"], principal=Principal(Role.DISPATCHER, "tok_d"))
    assert not again.first and again.acked_by == done.acked_by and again.acked_at == done.acked_at


def test_a_captain_of_another_grid_may_not_acknowledge(deps: Deps, on_call: dict[str, Any], escalated: Any) -> None:
    need = escalated()

    with pytest.raises(Forbidden):
        captains.acknowledge(
            deps=deps, need_id=need["id"], principal=Principal(Role.CAPTAIN, "tok_x", "vol_x", ("grid-9",))
        )


def test_nothing_to_acknowledge_once_the_need_moved_on(
    deps: Deps, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated()
    client.post(f"/api/v1/needs/{need['id']}/defer", json={"reason": "spring"}, headers=tokens.dispatcher)

    with pytest.raises(Conflict, match="the need is deferred"):
        captains.acknowledge(deps=deps, need_id=need["id"], principal=Principal(Role.DISPATCHER, "tok_d"))


def test_the_ladder_ends_when_the_need_moved_on_before_the_next_step(
    deps: Deps, clock: ManualClock, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated()
    client.post(f"/api/v1/needs/{need['id']}/cancel", json={"reason": "solved"}, headers=tokens.dispatcher)

    clock.advance(601)
    captains.advance_due_ladders(deps=deps)

    assert steps(client, tokens, need["id"])[-1] == ("escalation_ladder_ended", "the need is cancelled")
    assert [t for t, _ in told(deps)] == ["escalated_captain"]


def test_an_escalation_after_a_reopen_climbs_a_fresh_ladder(
    deps: Deps, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any, work: Any
) -> None:
    need = escalated()
    captains.acknowledge(deps=deps, need_id=need["id"], principal=Principal(Role.DISPATCHER, "tok_d"))

    client.post(f"/api/v1/needs/{need['id']}/reopen", json={}, headers=tokens.dispatcher)
    work(queues=("urgent", "default", "low"))

    assert [s[:2] for s in steps(client, tokens, need["id"])] == [
        ("escalation_step", "captain"),
        ("escalation_acknowledged", "dispatcher:tok_d"),
        ("escalation_step", "captain"),
    ]


def test_the_sweep_takes_due_steps_and_starts_a_ladder_lost_in_a_crash(
    deps: Deps, clock: ManualClock, connection: Any, client: Any, tokens: Any, on_call: dict[str, Any], escalated: Any
) -> None:
    need = escalated()
    # the process died between escalating the need and starting its ladder
    connection.delete(deps.store.keys.ladder(need["id"]))
    connection.zrem(deps.store.keys.ladders_due(), need["id"])

    assert sweeper.sweep(deps=deps)["ladder_steps"] == 1
    assert sweeper.sweep(deps=deps)["ladder_steps"] == 0
    clock.advance(601)
    assert sweeper.sweep(deps=deps)["ladder_steps"] == 1
    assert [s[:2] for s in steps(client, tokens, need["id"])] == [
        ("escalation_step", "captain"),
        ("escalation_step", "captain"),
        ("escalation_step", "dispatchers"),
    ]


def test_a_grids_own_ladder_with_a_tier_above_the_dispatchers(
    settings: Any,
    connection: Any,
    clock: ManualClock,
    client: Any,
    tokens: Any,
    on_call: dict[str, Any],
    escalated: Any,
) -> None:
    ladder = {
        "grid-2": [
            {"tier": "captain", "ack_seconds": 60},
            {"tier": "dispatchers", "ack_seconds": 120},
            {"tier": "district_lead", "channels": ["json://127.0.0.1:9/lead"]},
        ]
    }
    own = bootstrap(
        dataclasses.replace(settings, escalation_ladder=json.dumps(ladder)), connection=connection, clock=clock
    )
    need = escalated()  # started under the default ladder: the captain has 600 s

    clock.advance(601)
    captains.advance_ladder(deps=own, need_id=need["id"])
    clock.advance(121)
    captains.advance_ladder(deps=own, need_id=need["id"])

    assert [s[1] for s in steps(client, tokens, need["id"])] == ["captain", "dispatchers", "district_lead"]
    assert told(own)[-1] == ("escalated_tier", "")
    assert own.store.backlog.peek_outbox(100)[-1]["reason"] == "district_lead"


# ---- the ladder setting ---------------------------------------------------------------------------


def test_unset_the_ladder_is_the_on_call_captain_then_the_dispatchers() -> None:
    tiers = parse_ladder("")["default"]

    assert [(t.name, t.kind.value, t.ack_seconds, t.ack_seconds_critical) for t in tiers] == [
        ("captain", "captain", 600, 180),
        ("dispatchers", "dispatchers", 600, 180),
    ]


def test_a_grid_names_its_own_tiers_and_times() -> None:
    raw = json.dumps(
        {"grid-1": [{"tier": "captain", "ack_seconds": 300}, {"tier": "lead", "channels": ["mailto://a@b.c"]}]}
    )

    ladders = parse_ladder(raw, ack_seconds=900, ack_seconds_critical=120)

    assert [(t.name, t.ack_seconds, t.ack_seconds_critical, t.channels) for t in ladders["grid-1"]] == [
        ("captain", 300, 120, ()),
        ("lead", 900, 120, ("mailto://a@b.c",)),
    ]
    assert [t.name for t in ladders["default"]] == ["captain", "dispatchers"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{", "not JSON"),
        ("[]", "an object"),
        ('{"default": []}', "a list of 1 to 10 tiers"),
        ('{"default": [{"tier": "lead"}]}', 'give "channels"'),
        ('{"default": [{"tier": "captain", "channels": ["json://x/y"]}]}', "only for kind"),
        ('{"default": [{"tier": "captain", "ack_seconds": 5}]}', "from 10"),
        ('{"default": [{"tier": "captain", "wait": 5}]}', "unknown field"),
        ('{"default": [{"tier": "captain"}, {"tier": "captain"}]}', "two tiers with one name"),
        ('{"default": [{"tier": "x", "kind": "mayor", "channels": ["json://x/y"]}]}', '"kind" is one of'),
    ],
)
def test_a_mistake_in_the_ladder_stops_the_process_at_start_saying_what(raw: str, says: str, settings: Any) -> None:
    with pytest.raises(ValueError, match="AIDLINE_ESCALATION_LADDER") as refused:
        bootstrap(dataclasses.replace(settings, escalation_ladder=raw))

    assert says in str(refused.value)


def test_an_unknown_time_zone_stops_the_process_at_start() -> None:
    with pytest.raises(SettingError, match="AIDLINE_TIMEZONE: 'Mars/Olympus_Mons' is not a time zone"):
        Settings.from_env({"AIDLINE_TIMEZONE": "Mars/Olympus_Mons"})
