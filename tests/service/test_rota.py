"""Who is on call: the rota's pure rules (service.rota), in Asia/Shanghai (UTC+8, no daylight saving) and a
zone with daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.models import Override, Rota, Shift, Weekday
from service.rota import OnCall, check_rota, minutes_of, on_call

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON = Weekday.MON
TUE = Weekday.TUE


def local(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    """A local wall-clock time as the UTC moment a clock would give."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def rota(*shifts: tuple[Weekday, str, str, str], overrides: tuple[tuple[str, str, str], ...] = ()) -> Rota:
    return Rota(
        grid="grid-1",
        shifts=[Shift(weekday=d, start=s, end=e, volunteer_id=v) for d, s, e, v in shifts],
        overrides=[Override(start=f, end=t, volunteer_id=v) for f, t, v in overrides],
    )


# 2026-11-30 is a Monday.
DAY_AND_NIGHT = rota(
    (MON, "08:00", "20:00", "vol_day"),
    (MON, "20:00", "24:00", "vol_night"),
    (TUE, "00:00", "06:00", "vol_night"),
    (TUE, "06:00", "18:00", "vol_day"),
)


def test_the_captain_of_the_shift_is_on_call_until_the_shift_ends_in_utc() -> None:
    now = on_call(DAY_AND_NIGHT, local("2026-11-30T09:15"), SHANGHAI)

    assert now == OnCall("vol_day", local("2026-11-30T20:00"), "shift")
    assert now.until == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_night_split_at_midnight_is_one_stretch_of_cover() -> None:
    """22:00-24:00 and 00:00-06:00 by the same captain: on call until 06:00 the next morning."""
    at_ten_pm = on_call(DAY_AND_NIGHT, local("2026-11-30T22:00"), SHANGHAI)
    after_midnight = on_call(DAY_AND_NIGHT, local("2026-12-01T00:00"), SHANGHAI)

    assert at_ten_pm == OnCall("vol_night", local("2026-12-01T06:00"), "shift")
    assert after_midnight == at_ten_pm


def test_a_shift_ending_at_24_00_ends_at_the_next_midnight() -> None:
    now = on_call(rota((MON, "18:00", "24:00", "vol_a")), local("2026-11-30T23:59"), SHANGHAI)

    assert now == OnCall("vol_a", local("2026-12-01T00:00"), "shift")


def test_nobody_on_call_says_when_somebody_next_is() -> None:
    now = on_call(DAY_AND_NIGHT, local("2026-12-01T19:00"), SHANGHAI)

    assert now == OnCall(None, local("2026-12-07T08:00"), None)


def test_a_grid_without_a_rota_has_nobody_on_call_and_nothing_in_sight() -> None:
    assert on_call(None, local("2026-11-30T09:00"), SHANGHAI) == OnCall(None, None)
    assert on_call(rota(), local("2026-11-30T09:00"), SHANGHAI) == OnCall(None, None)


def test_one_captain_all_week_has_no_end_in_sight() -> None:
    always = rota(*((day, "00:00", "24:00", "vol_a") for day in Weekday))

    assert on_call(always, local("2026-11-30T09:00"), SHANGHAI) == OnCall("vol_a", None, "shift")


def test_an_override_wins_over_the_shift_and_ends_its_cover_early() -> None:
    swapped = rota(
        (MON, "08:00", "20:00", "vol_day"),
        overrides=(("2026-11-30T12:00", "2026-11-30T15:00", "vol_sub"),),
    )

    assert on_call(swapped, local("2026-11-30T09:00"), SHANGHAI) == OnCall(
        "vol_day", local("2026-11-30T12:00"), "shift"
    )
    assert on_call(swapped, local("2026-11-30T13:00"), SHANGHAI) == OnCall(
        "vol_sub", local("2026-11-30T15:00"), "override"
    )
    assert on_call(swapped, local("2026-11-30T15:00"), SHANGHAI) == OnCall(
        "vol_day", local("2026-11-30T20:00"), "shift"
    )


def test_an_override_across_midnight_covers_both_days() -> None:
    holiday = rota(
        (MON, "08:00", "20:00", "vol_day"),
        (TUE, "08:00", "20:00", "vol_day"),
        overrides=(("2026-11-30T18:00", "2026-12-01T10:00", "vol_sub"),),
    )

    for moment in ("2026-11-30T18:00", "2026-11-30T23:30", "2026-12-01T03:00", "2026-12-01T09:59"):
        assert on_call(holiday, local(moment), SHANGHAI) == OnCall("vol_sub", local("2026-12-01T10:00"), "override")
    assert on_call(holiday, local("2026-12-01T10:00"), SHANGHAI) == OnCall(
        "vol_day", local("2026-12-01T20:00"), "shift"
    )


def test_an_override_followed_by_the_same_captains_shift_is_one_stretch() -> None:
    early = rota((MON, "08:00", "20:00", "vol_day"), overrides=(("2026-11-30T06:00", "2026-11-30T08:00", "vol_day"),))

    assert on_call(early, local("2026-11-30T06:30"), SHANGHAI) == OnCall(
        "vol_day", local("2026-11-30T20:00"), "override"
    )


def test_shifts_keep_their_wall_clock_hours_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # summer time ends 2026-10-25 (a Sunday) at 03:00
    weekly = rota((Weekday.SUN, "08:00", "20:00", "vol_a"), (Weekday.SAT, "08:00", "20:00", "vol_a"))

    saturday = on_call(weekly, local("2026-10-24T09:00", berlin), berlin)
    sunday = on_call(weekly, local("2026-10-25T19:00", berlin), berlin)

    assert saturday.until == datetime(2026, 10, 24, 18, 0, tzinfo=UTC)  # 20:00 summer time (UTC+2)
    assert sunday.until == datetime(2026, 10, 25, 19, 0, tzinfo=UTC)  # 20:00 winter time (UTC+1)


# ---- checking a rota --------------------------------------------------------------------------------


def test_times_of_day_run_from_00_00_to_24_00() -> None:
    assert [minutes_of(t) for t in ("00:00", "06:30", "23:59", "24:00")] == [0, 390, 1439, 1440]
    for bad in ("24:01", "25:00", "7:00", "12:60", "noon"):
        with pytest.raises(ValueError):
            minutes_of(bad)


def test_a_sound_rota_breaks_no_rule() -> None:
    body = {
        "shifts": [
            {"weekday": "mon", "start": "20:00", "end": "24:00", "volunteer_id": "a"},
            {"weekday": "tue", "start": "00:00", "end": "06:00", "volunteer_id": "a"},
            {"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": "b"},
        ],
        "overrides": [{"from": "2026-12-24T18:00", "to": "2026-12-26T08:00", "volunteer_id": "b"}],
    }

    assert check_rota(body, SHANGHAI) == {}


def test_overlapping_shifts_on_a_weekday_are_named_by_the_later_ones_start() -> None:
    body = {
        "shifts": [
            {"weekday": "mon", "start": "08:00", "end": "20:00", "volunteer_id": "a"},
            {"weekday": "tue", "start": "08:00", "end": "20:00", "volunteer_id": "a"},
            {"weekday": "mon", "start": "19:00", "end": "24:00", "volunteer_id": "b"},
        ]
    }

    assert check_rota(body, SHANGHAI) == {"shifts.2.start": ["Overlaps another shift on the same weekday."]}


def test_a_shift_ending_before_it_starts_is_refused_on_its_end() -> None:
    body = {"shifts": [{"weekday": "mon", "start": "22:00", "end": "06:00", "volunteer_id": "a"}]}

    assert list(check_rota(body, SHANGHAI)) == ["shifts.0.end"]


def test_overrides_must_end_after_they_start_and_not_overlap() -> None:
    body = {
        "overrides": [
            {"from": "2026-12-01T08:00", "to": "2026-12-01T08:00", "volunteer_id": "a"},
            {"from": "2026-12-02T08:00", "to": "2026-12-03T08:00", "volunteer_id": "a"},
            {"from": "2026-12-03T07:00", "to": "2026-12-03T09:00", "volunteer_id": "b"},
            {"from": "2026-02-30T08:00", "to": "2026-03-01T08:00", "volunteer_id": "b"},
        ]
    }

    assert check_rota(body, SHANGHAI) == {
        "overrides.0.to": ["An override ends after it starts."],
        "overrides.2.from": ["Overlaps another override."],
        "overrides.3.from": ["Not a date and time (YYYY-MM-DDTHH:MM)."],
    }
