"""Reports API: the summary as JSON and CSV, its validation and who may read it; and `aidline report`."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from service.cli import cli
from tests.api.validation import assert_rejects

URL = "/api/v1/reports/summary"
HERE = {"lat": 46.34, "lon": 132.25}


@pytest.fixture
def served(client: Any, tokens: Any, make_volunteer: Any, make_need: Any, work: Any) -> dict[str, Any]:
    """One need in grid-1 offered, accepted, done and rated 5 by its requester; one in grid-2 cancelled."""
    volunteer = make_volunteer(name="李金凤", on_duty=True, location=HERE, skills=["driving"])
    need = make_need(kind="errand_shopping", location=HERE, grid="grid-1", priority="normal", vulnerability=[])
    work()
    [offer] = client.get(f"/api/v1/needs/{need['id']}", headers=tokens.dispatcher).get_json()["assignments"]
    headers = tokens.volunteer(volunteer["id"])
    assert client.post(f"/api/v1/offers/{offer['offer_id']}/accept", headers=headers).status_code == 200
    progress = client.post(f"/api/v1/needs/{need['id']}/progress", json={"status": "done"}, headers=headers)
    assert progress.status_code == 200, progress.get_json()
    feedback = client.post(f"/api/v1/track/{need['tracking_code']}/feedback", json={"rating": 5, "fixed": True})
    assert feedback.status_code == 200, feedback.get_json()
    other = make_need(kind="errand_shopping", location=HERE, grid="grid-2", vulnerability=[])
    cancel = client.post(f"/api/v1/needs/{other['id']}/cancel", json={"reason": "duplicate"}, headers=tokens.dispatcher)
    assert cancel.status_code == 200, cancel.get_json()
    return {"need": need, "volunteer": volunteer}


def today(deps: Any) -> str:
    return deps.clock.now().date().isoformat()


def test_the_summary_gives_totals_and_a_row_per_grid(client, tokens, deps, served) -> None:
    response = client.get(
        URL, query_string={"from": today(deps), "to": today(deps), "group_by": "grid"}, headers=tokens.ops
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["group_by"], body["timezone"]) == (today(deps), today(deps), "grid", "UTC")
    totals = body["totals"]
    assert (totals["received"], totals["resolved"], totals["resolution_rate"]) == (2, 1, 0.5)
    assert (totals["satisfaction"], totals["mean_rating"], totals["on_time_rate"]) == (1.0, 5.0, 1.0)
    assert totals["tasks"] == 1
    assert set(totals["visits"]) == {"red", "orange", "yellow", "green"}
    rows = {row["key"]: row for row in body["groups"]}
    assert (rows["grid-1"]["resolved"], rows["grid-2"]["resolved"]) == (1, 0)
    assert rows["grid-2"]["resolution_rate"] == 0.0


def test_volunteer_rows_carry_their_name_and_service(client, tokens, deps, served) -> None:
    body = client.get(URL, query_string={"group_by": "volunteer"}, headers=tokens.dispatcher).get_json()

    [row] = body["groups"]
    assert (row["key"], row["label"], row["tasks"], row["received"]) == (served["volunteer"]["id"], "李金凤", 1, None)


def test_csv_has_a_bom_and_reads_back_with_chinese_text(client, tokens, deps, served) -> None:
    response = client.get(
        URL, query_string={"group_by": "volunteer", "format": "csv", "lang": "zh"}, headers=tokens.dispatcher
    )

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.mimetype_params["charset"] == "utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"))))
    assert [r["名称"] for r in rows] == ["李金凤", "合计"]
    assert rows[0]["服务次数"] == "1"
    assert rows[1]["受理数"] == "2"
    assert rows[1]["满意率"] == "1.0"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2099-12-01"}, "from"),
        ({"group_by": "street"}, "group_by"),
        ({"format": "xlsx"}, "format"),
        ({"lang": "fr"}, "lang"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_queries_are_422_naming_the_field(client, tokens, query, field) -> None:
    assert_rejects(client.get(URL, query_string=query, headers=tokens.dispatcher), field)


def test_a_span_of_three_years_is_allowed(client, tokens) -> None:
    end = date(2026, 11, 29)
    start = end - timedelta(days=3 * 365)
    response = client.get(URL, query_string={"from": start.isoformat(), "to": end.isoformat()}, headers=tokens.ops)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(("role", "status"), [("dispatcher", 200), ("ops", 200), ("intake", 403)])
def test_dispatchers_and_ops_read_reports(client, tokens, role, status) -> None:
    assert client.get(URL, headers=tokens.headers(role)).status_code == status


def test_a_volunteer_may_not_read_reports_and_nobody_without_a_token(client, tokens, make_volunteer) -> None:
    volunteer = make_volunteer()
    assert client.get(URL, headers=tokens.volunteer(volunteer["id"])).status_code == 403
    assert client.get(URL).status_code == 401


def test_the_summary_is_in_the_openapi_document(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/reports/summary"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"from", "to", "group_by", "format", "lang"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "ReportFigures" in spec["components"]["schemas"]


# ---- aidline report --------------------------------------------------------------------------------


def run_report(settings: Any, *args: str) -> Any:
    return CliRunner().invoke(cli, ["report", *args], env={"REDIS_URL": settings.redis_url}, catch_exceptions=False)


def test_the_command_prints_a_table_with_a_line_per_group_and_a_total(settings, deps, served) -> None:
    day = today(deps)
    result = run_report(settings, "--from", day, "--to", day, "--group-by", "grid")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{day} .. {day} (UTC)"
    assert [line.split()[0] for line in lines[3:]] == ["grid-1", "grid-2", "total"]
    assert "50.0%" in lines[-1]


def test_the_command_prints_csv_in_chinese(settings, deps, served) -> None:
    day = today(deps)
    result = run_report(settings, "--from", day, "--to", day, "--group-by", "volunteer", "--csv", "--lang", "zh")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("\ufeff分组,名称")
    assert "李金凤" in result.output


def test_the_command_refuses_a_span_ending_before_it_starts(settings) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--from", "2026-02-01", "--to", "2026-01-01"], env={"REDIS_URL": settings.redis_url}
    )
    assert result.exit_code == 2
    assert "--to" in result.output


def test_the_command_names_from_when_it_is_after_today(settings) -> None:
    result = CliRunner().invoke(cli, ["report", "--from", "2099-12-01"], env={"REDIS_URL": settings.redis_url})
    assert result.exit_code == 2
    assert "--from" in result.output
