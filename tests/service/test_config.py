"""Settings from the environment: a value the process cannot use stops it at start, naming the variable."""

from __future__ import annotations

import pytest

from service.bootstrap import check_settings
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


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REDIS_URL", "localhost:6379", "REDIS_URL: 'localhost:6379' is not a Redis URL"),
        ("AIDLINE_KEY_PREFIX", "", "AIDLINE_KEY_PREFIX: '' is not a prefix"),
        ("AIDLINE_PUBLIC_URL", "aidline.example.org", "AIDLINE_PUBLIC_URL: 'aidline.example.org' is not an http"),
        ("AIDLINE_FIRST_RING_KM", "0", "AIDLINE_FIRST_RING_KM: '0' is not a number of km above 0"),
        ("AIDLINE_AREA_KM2", "-1", "AIDLINE_AREA_KM2: '-1' is not a number of km2 above 0"),
        ("AIDLINE_MAX_RADIUS_KM", "-5", "AIDLINE_MAX_RADIUS_KM: '-5' is not a number of km above 0"),
        ("AIDLINE_MAX_RADIUS_KM", "inf", "AIDLINE_MAX_RADIUS_KM: 'inf' is not a number"),
        ("AIDLINE_MAX_OFFERS", "0", "AIDLINE_MAX_OFFERS: '0' is not a whole number from 1"),
        ("AIDLINE_BATCH_WINDOW_MS", "-1", "AIDLINE_BATCH_WINDOW_MS: '-1' is not a whole number of ms from 0"),
        ("AIDLINE_PARALLEL_OFFERS", "urgent=3", "AIDLINE_PARALLEL_OFFERS: 'urgent=3' is not priority=count"),
        ("AIDLINE_PARALLEL_OFFERS", "critical=0", "AIDLINE_PARALLEL_OFFERS: 'critical=0' is not priority=count"),
        ("AIDLINE_PARALLEL_OFFERS", "critical", "AIDLINE_PARALLEL_OFFERS: 'critical' is not priority=count"),
        ("AIDLINE_PARALLEL_AFTER_EXPIRY", "0", "AIDLINE_PARALLEL_AFTER_EXPIRY: '0' is not a whole number from 1"),
        ("AIDLINE_PARALLEL_REACH_KM", "-2", "AIDLINE_PARALLEL_REACH_KM: '-2' is not a number of km from 0"),
        ("AIDLINE_MOVE_SAVING_KM", "-0.5", "AIDLINE_MOVE_SAVING_KM: '-0.5' is not a number of km from 0"),
        ("AIDLINE_PREEMPT_MARGIN_KM", "-1", "AIDLINE_PREEMPT_MARGIN_KM: '-1' is not a number of km from 0"),
        ("AIDLINE_FAIR_SLACK_RATIO", "-0.1", "AIDLINE_FAIR_SLACK_RATIO: '-0.1' is not a number from 0"),
        ("AIDLINE_FAIR_SLACK_KM", "-1", "AIDLINE_FAIR_SLACK_KM: '-1' is not a number of km from 0"),
        ("AIDLINE_FAIR_POOL", "-1", "AIDLINE_FAIR_POOL: '-1' is not a whole number from 0"),
        ("AIDLINE_TRAVEL_SPEED_KMH", "0", "AIDLINE_TRAVEL_SPEED_KMH: '0' is not a speed in km/h above 0"),
        ("AIDLINE_AUTO_CLOSE_SECONDS", "0", "AIDLINE_AUTO_CLOSE_SECONDS: '0' is not a whole number from 1"),
        ("AIDLINE_REOPEN_WINDOW_SECONDS", "-1", "AIDLINE_REOPEN_WINDOW_SECONDS: '-1' is not a whole number from 0"),
        ("AIDLINE_DEADLINE_RISK_RATIO", "1.5", "AIDLINE_DEADLINE_RISK_RATIO: '1.5' is not a share above 0"),
        ("AIDLINE_GEOCODER", "nosuch", "AIDLINE_GEOCODER: 'nosuch' is not a geocoder geopy knows (arcgis, "),
        ("AIDLINE_GEOCODER_SCHEME", "ftp", "AIDLINE_GEOCODER_SCHEME: 'ftp' is not http or https"),
        ("AIDLINE_GEOCODER_TIMEOUT", "0", "AIDLINE_GEOCODER_TIMEOUT: '0' is not a number of seconds above 0"),
        ("AIDLINE_WORKER_PROCESSES", "0", "AIDLINE_WORKER_PROCESSES: '0' is not a whole number from 1"),
        ("AIDLINE_NOTIFY_PROCESSES", "-1", "AIDLINE_NOTIFY_PROCESSES: '-1' is not a whole number from 0"),
        ("AIDLINE_MAINTENANCE_INTERVAL", "0", "AIDLINE_MAINTENANCE_INTERVAL: '0' is not a whole number from 1"),
        ("AIDLINE_JOB_TIMEOUT", "0", "AIDLINE_JOB_TIMEOUT: '0' is not a whole number from 1"),
        ("AIDLINE_NOTIFY_RETRY_INTERVALS", "30,-1", "AIDLINE_NOTIFY_RETRY_INTERVALS: '30,-1' is not seconds from 0"),
        ("AIDLINE_SMS_URL_TEMPLATE", "nothing", "AIDLINE_SMS_URL_TEMPLATE: 'nothing' is not an apprise URL with"),
        ("AIDLINE_SMS_URL_TEMPLATE", "sns://k:s@r/", "AIDLINE_SMS_URL_TEMPLATE: 'sns://k:s@r/' is not an apprise URL"),
        ("AIDLINE_SMS_URL_TEMPLATE", "sns://k/{phone}/{to}", "AIDLINE_SMS_URL_TEMPLATE: 'sns://k/{phone}/{to}' is not"),
        ("AIDLINE_DISPATCHER_CHANNELS", "mailto://a@b.org desk", "AIDLINE_DISPATCHER_CHANNELS: 'mailto://a@b.org d"),
        ("AIDLINE_GRID_CHANNELS", "grid-1", "AIDLINE_GRID_CHANNELS: 'grid-1' is not grid=urls"),
        ("AIDLINE_GRID_CHANNELS", "grid-1=desk", "AIDLINE_GRID_CHANNELS: 'grid-1=desk' is not grid=urls"),
        ("AIDLINE_OFFER_REMINDER_RATIO", "1", "AIDLINE_OFFER_REMINDER_RATIO: '1' is not a share above 0 and below 1"),
        ("AIDLINE_TIMEZONE", "Mars/Olympus_Mons", "AIDLINE_TIMEZONE: 'Mars/Olympus_Mons' is not a time zone"),
        ("AIDLINE_MAX_CONTENT_LENGTH", "0", "AIDLINE_MAX_CONTENT_LENGTH: '0' is not a whole number from 1"),
        ("AIDLINE_MAX_BULK_CONTENT_LENGTH", "-1", "AIDLINE_MAX_BULK_CONTENT_LENGTH: '-1' is not a whole number"),
        ("AIDLINE_RATE_LIMIT_OPS", "lots", "AIDLINE_RATE_LIMIT_OPS: 'lots' is not a rate limit like 300/minute"),
        ("AIDLINE_RATE_LIMIT_DISPATCHER", "50/fortnight", "AIDLINE_RATE_LIMIT_DISPATCHER: '50/fortnight' is not"),
        ("AIDLINE_RATE_LIMIT_INTAKE", "many", "AIDLINE_RATE_LIMIT_INTAKE: 'many' is not a rate limit"),
        ("AIDLINE_RATE_LIMIT_VOLUNTEER", "5", "AIDLINE_RATE_LIMIT_VOLUNTEER: '5' is not a rate limit"),
        ("AIDLINE_RATE_LIMIT_ANONYMOUS", "x/minute", "AIDLINE_RATE_LIMIT_ANONYMOUS: 'x/minute' is not a rate limit"),
        ("AIDLINE_RATE_LIMIT_INBOUND", "-", "AIDLINE_RATE_LIMIT_INBOUND: '-' is not a rate limit"),
        ("AIDLINE_RATE_LIMIT_CAPTAIN", "fast", "AIDLINE_RATE_LIMIT_CAPTAIN: 'fast' is not a rate limit"),
        ("AIDLINE_PROXY_HOPS", "-1", "AIDLINE_PROXY_HOPS: '-1' is not a whole number from 0"),
        ("AIDLINE_MAP_TILES_URL", "tiles.example.org", "AIDLINE_MAP_TILES_URL: 'tiles.example.org' is not an http(s)"),
    ],
)
def test_a_value_out_of_its_range_names_the_variable_and_what_it_takes(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({variable: value})

    assert str(refused.value).startswith(says)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("AIDLINE_GEOCODER", "bing", "AIDLINE_GEOCODER: 'bing' cannot be used: "),
        ("AIDLINE_INCIDENT_RULES", "water=lots", "AIDLINE_INCIDENT_RULES: "),
        ("AIDLINE_ESCALATION_LADDER", "{", "AIDLINE_ESCALATION_LADDER: not JSON"),
        ("AIDLINE_ACK_SECONDS", "1", "AIDLINE_ACK_SECONDS: 1 is not within 10 to"),
    ],
)
def test_what_the_domain_parses_is_checked_before_a_process_starts(variable: str, value: str, says: str) -> None:
    settings = Settings.from_env({variable: value})

    with pytest.raises(SettingError) as refused:
        check_settings(settings)

    assert str(refused.value).startswith(says)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "unix:///run/redis.sock"),
        ("AIDLINE_PARALLEL_OFFERS", "critical=3,high=2"),
        ("AIDLINE_PARALLEL_OFFERS", ""),
        ("AIDLINE_BATCH_WINDOW_MS", "0"),
        ("AIDLINE_MOVE_SAVING_KM", "0"),
        ("AIDLINE_FAIR_POOL", "0"),
        ("AIDLINE_NOTIFY_PROCESSES", "0"),
        ("AIDLINE_SMS_URL_TEMPLATE", "sns://key:secret@us-east-1/{phone}"),
        ("AIDLINE_SMS_URL_TEMPLATE", "twilio://sid:token@+15550000000/{phone_digits}"),
        ("AIDLINE_GRID_CHANNELS", "grid-1=mailto://a@b.org json://h/x;grid-2=tgram://bot/chat"),
        ("AIDLINE_RATE_LIMIT_OPS", ""),
        ("AIDLINE_RATE_LIMIT_DISPATCHER", "50/second;20000/minute"),
        ("AIDLINE_MAP_TILES_URL", "https://{s}.tile.example.org/{z}/{x}/{y}.png"),
        ("AIDLINE_GEOCODER", "nominatim"),
    ],
)
def test_values_the_readme_gives_are_taken(variable: str, value: str) -> None:
    check_settings(Settings.from_env({variable: value}))
