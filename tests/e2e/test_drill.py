"""`aidline drill` against Aidline as deployed (gunicorn, `aidline worker`, a private Redis): a small
drill is played over HTTP alone, its report accounts for every need, and `aidline drill clean`
removes what it created. Nothing here asserts how fast anything was."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    Background,
    Http,
    RedisServer,
    aidline,
    flushed,
    process_env,
    serving_api,
    start_aidline_worker,
)

pytestmark = pytest.mark.slow

REPORT_KEYS = {
    "needs",
    "resolved",
    "escalated",
    "escalation_reasons",
    "deferred",
    "first_offer_s",
    "acceptance_s",
    "urgent_after_ordinary",
    "travel_km",
    "optimal_travel_km",
    "tasks_per_volunteer",
    "notifications",
    "speed",
}


@pytest.fixture(scope="module")
def env(private_redis: RedisServer) -> dict[str, str]:
    flushed(private_redis.url).close()
    # the drill sends a request per step; the test is not about the rate limit
    return process_env(private_redis.url, AIDLINE_RATE_LIMITS="false")


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    with serving_api(env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as http:
        yield http


@pytest.fixture
def worker(spawn: Callable[..., Background], env: dict[str, str]) -> Background:
    return start_aidline_worker(spawn, env)


def test_a_small_drill_accounts_for_every_need_and_cleans_up(
    api: Http, env: dict[str, str], worker: Background, tmp_path: Path
) -> None:
    token = aidline("token", "create", "--role", "dispatcher", env=env).stdout.strip()
    url = f"http://127.0.0.1:{api.port}"
    report_path, chart_path = tmp_path / "report.json", tmp_path / "chart.png"

    played = aidline(
        "drill", "mini", "--url", url, "--token", token, "--speed", "60", "--seed", "3",
        "--json", str(report_path), "--chart", str(chart_path), "--timeout", "150",
        env=env, timeout=240, check=False,
    )  # fmt: skip

    assert "resolved (done or closed)" in played.stdout, played.stdout
    report = json.loads(report_path.read_text())
    assert played.returncode == (1 if report["timed_out"] else 0), played.stderr
    assert REPORT_KEYS <= report.keys()
    assert report["needs"] == 8
    assert sum(report["statuses"].values()) == 8
    assert report["resolved"] + report["escalated"] + report["deferred"] + report["cancelled"] + report["open"] == 8
    if not report["timed_out"]:
        assert report["open"] == 0, "a drill that ended by itself ended with every need finished"
    assert report["resolved"] >= 1, report
    assert report["optimal_travel_km"] <= report["travel_km"] + 1e-6
    assert set(report["first_offer_s"]) == {"p50", "p95", "max"} == set(report["acceptance_s"])
    assert set(report["notifications"]) >= {"sent", "failed"}
    assert chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dispatcher = api.with_token(token)
    listed = dispatcher.get("/api/v1/needs?limit=200").json["items"]
    assert len(listed) == 8 and all(n["drill"] for n in listed)

    cleaned = aidline("drill", "clean", "--url", url, "--token", token, env=env)

    assert "removed 8 needs and 4 volunteers" in cleaned.stdout, cleaned.stdout
    assert dispatcher.get("/api/v1/needs").json["items"] == []
    assert dispatcher.get("/api/v1/volunteers").json["items"] == []


def test_a_drill_that_times_out_exits_non_zero_with_one_line_saying_why(
    api: Http, env: dict[str, str], worker: Background, tmp_path: Path
) -> None:
    token = aidline("token", "create", "--role", "dispatcher", env=env).stdout.strip()
    url = f"http://127.0.0.1:{api.port}"

    played = aidline(
        "drill", "mini", "--url", url, "--token", token, "--speed", "60", "--seed", "3", "--timeout", "1",
        "--json", str(tmp_path / "report.json"), "--quiet", env=env, timeout=240, check=False,
    )  # fmt: skip
    aidline("drill", "clean", "--url", url, "--token", token, env=env)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["timed_out"] and report["open"] > 0, report
    assert played.returncode == 1, played.stderr
    [reason] = played.stderr.splitlines()
    assert re.match(r"^Error: drill mini timed out after \d+ s with ", reason), reason
    assert f"{report['open']} of its {report['needs']} needs unfinished" in reason
    assert "resolved (done or closed)" in played.stdout, "the report comes first"


def test_drill_list_names_every_scenario(env: dict[str, str]) -> None:
    listed = aidline("drill", "list", env=env).stdout

    for name in ("outage", "gale", "winter", "mini"):
        assert name in listed
