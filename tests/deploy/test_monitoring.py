"""The monitoring kit in deploy/: Prometheus accepts the config and the alert rules, the alerts fire when they
should (promtool's rule unit tests), every query in the rules and the Grafana dashboard names only metrics and
labels a real Aidline exports at /metrics, and the compose file's `monitoring` profile mounts files that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "aidline.json"
COMPOSE = ROOT / "docker-compose.yml"

PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
"""Series Prometheus makes itself for every scrape target."""


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed (make install installs Debian's prometheus package)")
    return subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


# --- a small PromQL reader: which metrics and label matchers an expression uses -------------------------------

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "atan2",
}  # fmt: skip
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
RANGE = re.compile(r"\[[^\]]*\]")
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:])(?!\s*\()")
NUMBER_SUFFIXED = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b")


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """Each metric named in `expr` with its label matchers (label, operator, value)."""
    expr = re.sub(r"\$\{?\w+\}?", "5m", expr)  # Grafana variables such as $__rate_interval
    for match in SELECTOR.finditer(expr):
        name, body = match.group(1), match.group(2)
        matchers = [(m.group(1), m.group(2), json.loads(m.group(3))) for m in MATCHER.finditer(body)]
        named = [value for label, operator, value in matchers if label == "__name__" and operator == "="]
        rest = [m for m in matchers if m[0] != "__name__"]
        for metric in ([name] if name and name not in KEYWORDS else []) + named:
            yield metric, rest
    bare = SELECTOR.sub(lambda m: " ", STRING.sub('""', expr))
    bare = RANGE.sub(" ", GROUPING.sub(" ", bare))
    bare = NUMBER_SUFFIXED.sub(" ", bare)
    for match in IDENTIFIER.finditer(bare):
        if match.group(1) not in KEYWORDS:
            yield match.group(1), []


def metrics_in(expr: str) -> set[str]:
    return {name for name, _ in selectors(expr)}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("aidline_workers < 1", {"aidline_workers"}),
        ('aidline_needs{status="escalated"} > 0', {"aidline_needs"}),
        (
            "aidline_queue_depth > 20 and deriv(aidline_queue_depth[10m]) > 0",
            {"aidline_queue_depth"},
        ),
        (
            "histogram_quantile(0.9, sum by (le) (rate(aidline_intake_to_first_offer_seconds_bucket"
            "[$__rate_interval]))) > on() group_left vector(1)",
            {"aidline_intake_to_first_offer_seconds_bucket"},
        ),
        ("sum without (instance) (rate(x_total[5m])) / on (job) group_left y", {"x_total", "y"}),
        (
            '60 * rate(aidline_offers_ended_total{outcome=~"expired|declined"}[1h] offset 1d)',
            {"aidline_offers_ended_total"},
        ),
        ('up{job="aidline"} == 0', {"up"}),
        ('{__name__="aidline_workers", queue="x"}', {"aidline_workers"}),
    ],
)
def test_the_promql_reader_finds_every_metric_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metrics_in(expr) == names


def test_the_promql_reader_reads_label_matchers() -> None:
    found = list(selectors('rate(aidline_offers_ended_total{outcome="expired", queue!~"a|b"}[5m])'))
    assert ("aidline_offers_ended_total", [("outcome", "=", "expired"), ("queue", "!~", "a|b")]) in found


# --- what /metrics exports --------------------------------------------------------------------------------------


@pytest.fixture
def exported(client: Any) -> dict[str, dict[str, set[str]]]:
    """Every series name a real app exports at /metrics, with the values seen for each of its labels."""
    reply = client.get("/metrics")
    assert reply.status_code == 200
    names: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(reply.get_data(as_text=True)):
        for sample in family.samples:
            labels = names.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) for every query of every panel, rows' panels included."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    return list(walk(dashboard["panels"]))


def unknown_references(expr: str, exported: dict[str, dict[str, set[str]]]) -> list[str]:
    problems = []
    for name, matchers in selectors(expr):
        if name in PROMETHEUS_OWN:
            continue
        if name not in exported:
            problems.append(f"{name} is not exported")
            continue
        for label, operator, value in matchers:
            if label not in exported[name]:
                problems.append(f"{name} has no label {label}")
            elif operator == "=" and value not in exported[name][label]:
                problems.append(f'{name}{{{label}="{value}"}} is never exported')
            elif operator in ("=~", "!~"):
                pattern = re.compile(value)
                if not any(pattern.fullmatch(v) for v in exported[name][label]):
                    problems.append(f"{name}: {label}{operator}{value!r} matches no exported value")
    return problems


def test_the_checker_catches_a_misspelled_metric_or_label(exported: dict[str, dict[str, set[str]]]) -> None:
    assert unknown_references("aidline_worker < 1", exported) == ["aidline_worker is not exported"]
    assert unknown_references('aidline_needs{state="escalated"}', exported) == ["aidline_needs has no label state"]
    assert unknown_references('aidline_needs{status="lost"}', exported) == [
        'aidline_needs{status="lost"} is never exported'
    ]
    assert unknown_references("rate(aidline_escalations[5m])", exported) == ["aidline_escalations is not exported"]
    assert unknown_references("rate(aidline_escalations_total[5m])", exported) == []


def test_every_alert_queries_only_exported_metrics(exported: dict[str, dict[str, set[str]]]) -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        assert metrics_in(rule["expr"]), rule["alert"]
        assert unknown_references(rule["expr"], exported) == [], rule["alert"]


def test_every_dashboard_query_uses_only_exported_metrics(exported: dict[str, dict[str, set[str]]]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    for title, expr in queries:
        assert metrics_in(expr), title
        assert unknown_references(expr, exported) == [], title


# --- promtool ----------------------------------------------------------------------------------------------------


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_accepts_the_prometheus_config_and_finds_its_rules() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_the_alerts_fire_when_they_should_and_stay_quiet_otherwise() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_a_severity_and_a_runbook_line() -> None:
    tested = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text(encoding="utf-8"))
    covered = {case["alertname"] for test in tested["tests"] for case in test["alert_rule_test"]}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in alert_rules():
        assert rule["alert"] in covered
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert f"`{rule['alert']}`" in readme, f"README.md has no runbook line for {rule['alert']}"


# --- the compose profile and Grafana's provisioning ----------------------------------------------------------------


def test_the_monitoring_profile_runs_prometheus_and_grafana_on_files_that_exist() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in compose["volumes"], f"{name} mounts an undeclared volume {source}"
    for name in ("redis", "api", "worker"):
        assert "profiles" not in services[name], f"{name} must start without a profile"
    mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def test_prometheus_scrapes_the_api_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose["services"]
    assert f"{port}:{port}" in compose["services"][host]["ports"]


def test_grafana_provisions_the_prometheus_source_the_dashboard_uses() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (source,) = sources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "aidline.yml").read_text(encoding="utf-8"))
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"] if panel["type"] != "row"} | {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    }
    assert uids == {source["uid"]}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
