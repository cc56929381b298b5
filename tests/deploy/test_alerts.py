"""deploy/prometheus/alerts.yml: valid for Prometheus (`promtool check rules`), its unit
tests pass (`promtool test rules`) and show every alert firing and not firing, it reads
only metrics Lyceum declares, every alert has a runbook section in docs/operations.md, and
the Kubernetes PrometheusRule carries exactly its groups."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from lyceum.kit.metrics import REGISTRY
from tests.deploy.manifests import KUBERNETES, read
from tests.support.servers import REPO_ROOT

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
# Prometheus's own series (not Lyceum's) the rules may read.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_OPERATORS = {"and", "or", "unless", "offset"}


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is needed to check the alert rules: scripts/test and .ci/run install "
            "it (ensure_promtool: Debian's prometheus)"
        )
    return subprocess.run(
        [path, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROMETHEUS,
        check=False,
    )


def rules() -> list[dict[str, Any]]:
    return [rule for group in read(ALERTS)["groups"] for rule in group["rules"]]


def series_names(family: Metric) -> set[str]:
    """The series names a metric family is queried by."""
    if family.type == "counter":
        return {f"{family.name}_total"}
    if family.type == "histogram":
        return {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
    if family.type == "summary":
        return {family.name, f"{family.name}_count", f"{family.name}_sum"}
    return {family.name}


def declared_series() -> set[str]:
    return {name for family in REGISTRY.collect() for name in series_names(family)}


def metrics_in(expr: str) -> set[str]:
    """The series a PromQL expression reads: identifiers left once label matchers,
    grouping clauses, ranges, strings and numbers are removed, except function calls
    and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\()?)", text):
        if match.group(1) or match.group(0) in PROMQL_WORDS | PROMQL_OPERATORS:
            continue
        names.add(match.group(0))
    return names


def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", ALERT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_show_every_alert_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in read(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert sorted(alerts - firing) == [], "alerts never shown firing"
    assert sorted(alerts - quiet) == [], "alerts never shown staying quiet"


def test_promtool_notices_a_broken_expectation(tmp_path: Any) -> None:
    """The unit tests can fail: the same file with one threshold lowered does."""
    changed = ALERTS.read_text(encoding="utf-8").replace("> 0.02", "> 0.001", 1)
    assert changed != ALERTS.read_text(encoding="utf-8")
    (tmp_path / "alerts.yml").write_text(changed, encoding="utf-8")
    (tmp_path / "alerts.test.yml").write_text(ALERT_TESTS.read_text("utf-8"), encoding="utf-8")
    tested = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", "alerts.test.yml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert tested.returncode != 0
    assert "LyceumHighErrorRate" in tested.stdout + tested.stderr


def test_every_metric_the_alerts_read_is_declared() -> None:
    """A metric renamed in lyceum.kit.metrics fails here, not silently in production."""
    declared = declared_series()
    assert "lyceum_http_request_duration_seconds_bucket" in declared
    assert "lyceum_job_runs_total" in declared
    used = {name for rule in rules() for name in metrics_in(rule["expr"])}
    assert used >= {
        "lyceum_http_requests_total",
        "lyceum_http_request_duration_seconds_bucket",
        "lyceum_job_oldest_waiting_seconds",
        "lyceum_job_runs_total",
        "lyceum_webhook_endpoints_disabled",
        "lyceum_ai_provider_errors_total",
        "lyceum_payment_provider_errors_total",
        "up",
    }
    assert sorted(used - declared - PROMETHEUS_SERIES) == []
    tested = {
        series["series"].split("{", 1)[0]
        for case in read(ALERT_TESTS)["tests"]
        for series in case["input_series"]
    }
    assert sorted(tested - declared - PROMETHEUS_SERIES) == [], "tests feed unknown series"


def test_the_metric_reader_sees_what_promql_reads() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(lyceum_x_bucket{route!~"a|b"}[5m])))'
        ' > 0.5 or max without (instance) (lyceum_y) unless on (queue) up{job="z"} == 0'
    )
    assert metrics_in(expr) == {"lyceum_x_bucket", "lyceum_y", "up"}


def test_every_alert_is_labelled_annotated_and_has_a_runbook() -> None:
    operations = OPERATIONS.read_text(encoding="utf-8")
    alerts_section = operations[operations.index("\n## Alerts\n") :]
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^### (.+)$", alerts_section, flags=re.M)
    }
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no section {anchor}"


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    generated = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen-prometheusrule"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    rule = yaml.safe_load((KUBERNETES / "base" / "prometheusrule.yaml").read_text("utf-8"))
    assert rule["spec"]["groups"] == read(ALERTS)["groups"]
    assert set(read(ALERTS)) == {"groups"}
