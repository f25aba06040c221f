"""The Lua scripts: shipped as package files, documented at the top, fed by the Python vocabulary."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import clock, lifecycle
from service.models import Event, EventType, NeedStatus, OfferStatus
from service.store import Refusal, Refused, Transition
from service.store.scripts import Scripts, constants, source

LUA = resources.files("service.store") / "lua"
SCRIPTS = sorted(name for name in Scripts.NAMES)


def lua_set(name: str) -> set[str]:
    """The members of a status set as the scripts see it."""
    line = next(line for line in constants().splitlines() if line.startswith(f"local {name} = "))
    return set(re.findall(r"(\w+) = true", line))


def test_every_script_is_a_lua_file_in_the_package() -> None:
    shipped = {entry.name for entry in LUA.iterdir() if entry.name.endswith(".lua")}
    assert shipped == {f"{name}.lua" for name in SCRIPTS} | {"lib.lua"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_names_its_keys_and_arguments_at_the_top(name: str) -> None:
    header = [line for line in (LUA / f"{name}.lua").read_text().splitlines() if line.startswith("--")]
    text = "\n".join(header)
    assert header[0].startswith(f"-- {name}.lua: ")
    assert "KEYS" in text and "ARGV[1]" in text and "ARGV[2]" in text
    assert "Answers" in text


@pytest.mark.parametrize("name", ["MATCHABLE", "ACCEPTS_OFFERS", "IN_PROGRESS", "ESCALATES_FROM"])
def test_the_status_sets_of_the_scripts_are_the_lifecycle_s(name: str) -> None:
    assert lua_set(name) == {s.value for s in getattr(lifecycle, name)}


def test_no_script_spells_a_status_by_hand() -> None:
    statuses = {s.value for s in NeedStatus} | {s.value for s in OfferStatus}
    for entry in LUA.iterdir():
        text = entry.read_text()
        compared = set(re.findall(r"[=~]=\s*'(\w+)'", text))
        passed = set(re.findall(r"(?:set_status|end_offer|end_need_offers)\([^)]*'(\w+)'", text))
        assert not (compared | passed) & statuses, f"{entry.name}: use NEED.x / OFFER.x, not status literals"


def test_the_full_text_starts_with_the_constants_then_the_library() -> None:
    text = source("release")
    assert text.index("local NEED = ") < text.index("local function end_offer") < text.index("release.lua:")


def change(to: NeedStatus, *allowed: NeedStatus) -> Transition:
    event = Event(at="2026-01-01T00:00:00Z", type=EventType.REMATCH, actor="system")
    return Transition(
        allowed=frozenset(allowed), to=to, now_iso="2026-01-01T00:00:00Z", now_epoch=1767225600.0, event=event
    )


def test_a_refusal_is_a_named_exception_naming_the_current_status(deps: Any, make_need: Any) -> None:
    need = make_need()

    with pytest.raises(Refused) as refused:
        deps.store.needs.transition(need["id"], change(NeedStatus.CLOSED, NeedStatus.DONE))

    assert (refused.value.reason, refused.value.detail) == (Refusal.NEED_STATUS, "queued")


def test_an_allowed_change_answers_the_status_before(deps: Any, make_need: Any) -> None:
    need = make_need()

    before = deps.store.needs.transition(need["id"], change(NeedStatus.MATCHING, NeedStatus.QUEUED))

    assert before is NeedStatus.QUEUED
    assert deps.store.needs.get(need["id"]).status is NeedStatus.MATCHING


def test_a_missing_record_is_its_own_refusal(deps: Any) -> None:
    with pytest.raises(Refused) as refused:
        deps.store.needs.transition("need_missing", change(NeedStatus.MATCHING, NeedStatus.QUEUED))

    assert (refused.value.reason, refused.value.detail) == (Refusal.NO_NEED, None)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(micros=st.integers(min_value=0, max_value=4_102_444_800_000_000))
def test_the_scripts_write_times_as_the_clock_does(deps: Any, micros: int) -> None:
    """Times reach the scripts as epochs of the clock's microsecond moments."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    lib = (LUA / "lib.lua").read_text()
    script = f"{constants()}\n{lib}\nreturn iso(tonumber(ARGV[2]))"
    text = deps.redis.eval(script, 0, "aidline:", repr(clock.epoch(moment)))
    assert text.decode() == clock.iso(moment)


def test_a_script_the_server_no_longer_holds_is_loaded_again(deps: Any, make_need: Any) -> None:
    need = make_need()
    deps.redis.script_flush()

    before = deps.store.needs.transition(need["id"], change(NeedStatus.MATCHING, NeedStatus.QUEUED))

    assert before is NeedStatus.QUEUED
    assert deps.store.needs.get(need["id"]).status is NeedStatus.MATCHING


def test_a_script_call_whose_connection_breaks_before_it_is_sent_is_sent_on_a_new_one(
    deps: Any, make_need: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    need = make_need()
    broken: list[Any] = []
    send = redis.connection.Connection.send_packed_command

    def breaks_once(conn: Any, *args: Any, **kwargs: Any) -> Any:
        if not broken:
            broken.append(conn)
            raise redis.ConnectionError("connection reset")
        return send(conn, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", breaks_once)

    before = deps.store.needs.transition(need["id"], change(NeedStatus.MATCHING, NeedStatus.QUEUED))

    assert broken and before is NeedStatus.QUEUED
    assert deps.store.needs.get(need["id"]).status is NeedStatus.MATCHING
