"""Settings from the environment: a value the process cannot use stops it at start, naming the variable."""

from __future__ import annotations

import pytest

from service.config import SettingError, Settings


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("AIDLINE_MAX_OFFERS", "ten", "AIDLINE_MAX_OFFERS: 'ten' is not a whole number"),
        ("AIDLINE_TRAVEL_SPEED_KMH", "fast", "AIDLINE_TRAVEL_SPEED_KMH: 'fast' is not a number"),
        ("AIDLINE_RATE_LIMITS", "nope", "AIDLINE_RATE_LIMITS: 'nope' is not true or false"),
        ("AIDLINE_NOTIFY_RETRY_INTERVALS", "30,sixty", "AIDLINE_NOTIFY_RETRY_INTERVALS: '30,sixty' is not in the form"),
        ("AIDLINE_VISIT_CADENCE", "red=x", "AIDLINE_VISIT_CADENCE: 'red=x' is not level=days"),
    ],
)
def test_a_value_that_is_not_one_names_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({variable: value})

    assert str(refused.value).startswith(says)


@pytest.mark.parametrize(("value", "meant"), [("true", True), ("Yes", True), ("1", True), ("off", False), ("", False)])
def test_switches_take_the_usual_words(value: str, meant: bool) -> None:
    assert Settings.from_env({"AIDLINE_RATE_LIMITS": value}).rate_limits is meant
