"""The monitoring files of the compose stack, checked without Grafana (not installable
here, and no Docker daemon): the dashboards are valid Grafana dashboards whose every
PromQL expression parses (promtool, when installed) and names only metrics Lyceum
exports; the provisioning, Prometheus config and docker-compose.yml point at files that
exist and at each other."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lyceum.kit.metrics import REGISTRY
from tests.support.servers import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = REPO_ROOT / "docker-compose.yml"
EXPECTED = {
    "lyceum-api",
    "lyceum-jobs",
    "lyceum-tutor",
    "lyceum-chat",
    "lyceum-payments-webhooks",
}
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge", "text", "row"}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's own variables, as Prometheus would see a typical value of each.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    """Every sample name REGISTRY can expose, whether or not a series exists yet."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside strings, label
    matchers, ranges and grouping clauses that are not functions or keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        name = match.group(0)
        before = bare[match.start() - 1] if match.start() else " "
        after = bare[match.end() :].lstrip()
        if before.isdigit() or before == "." or after.startswith("("):
            continue  # part of a number (1e-9), or a function call
        if name.lower() in KEYWORDS:
            continue
        found.add(name)
    return found


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def expressions() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every target."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_five_dashboards_exist_with_unique_uids() -> None:
    boards = dashboards()
    assert set(boards) == EXPECTED
    uids = [board["uid"] for board in boards.values()]
    assert sorted(uids) == sorted(EXPECTED)  # uid = file name, each once
    titles = [board["title"] for board in boards.values()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_dashboard_has_the_schema_essentials(name: str) -> None:
    board = dashboards()[name]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["time"]["from"] and board["time"]["to"]
    variables = {item["name"]: item for item in board["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    provisioned = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    [datasource] = provisioned["datasources"]
    assert source["current"]["value"] == datasource["uid"] and datasource["type"] == "prometheus"

    panels = board["panels"]
    assert len(panels) >= 4
    assert len({panel["id"] for panel in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["title"] and panel["description"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y"))
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        assert panel["datasource"] == DATASOURCE_REF
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({target["refId"] for target in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == DATASOURCE_REF
            assert target["expr"].strip()


def test_every_expression_names_only_exported_metrics() -> None:
    exported = exported_names()
    unknown = [
        (board, title, sorted(metric_names(expr) - exported))
        for board, title, expr in expressions()
        if metric_names(expr) - exported
    ]
    assert unknown == []
    assert all(metric_names(expr) for _, _, expr in expressions())


def test_the_name_check_finds_a_metric_that_does_not_exist() -> None:
    expr = (
        'sum by (route) (rate(lyceum_http_requests_total{status=~"5.."}[5m])) '
        "/ ignoring(le) sum(rate(lyceum_http_requets_total[$__rate_interval])) > 1e-9"
    )
    assert metric_names(expr) == {"lyceum_http_requests_total", "lyceum_http_requets_total"}
    assert metric_names(expr) - exported_names() == {"lyceum_http_requets_total"}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (scripts/_setup.sh ensure_promtool installs it)")
    return found


def _promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_expression_parses(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = [
        {"record": f"lyceum:dashboard_check:{number}", "expr": _promql(expr)}
        for number, (_, _, expr) in enumerate(expressions())
    ]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout


def test_promtool_refuses_a_broken_expression(tmp_path: Path) -> None:
    promtool = _promtool()
    path = tmp_path / "broken.rules.yml"
    broken = {"record": "lyceum:broken", "expr": "sum(rate(lyceum_http_requests_total[5m])"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [broken]}]}))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True)
    assert checked.returncode != 0


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path of each bind mount (./...)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = REPO_ROOT / source
    return mounts


def test_prometheus_scrapes_the_api_and_the_worker_and_loads_the_alerts(tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {"lyceum-api": ["api:8000"], "lyceum-worker": ["worker:9100"]}
    compose = _compose()["services"]
    assert compose["worker"]["environment"]["WORKER_METRICS_PORT"] == "9100"
    assert "8000" in compose["api"]["command"]
    api = next(job for job in config["scrape_configs"] if job["job_name"] == "lyceum-api")
    token_file = api["authorization"]["credentials_file"]
    assert token_file in " ".join(compose["prometheus"]["command"])

    promtool = _promtool()
    # The same config with the container's paths pointed at local files.
    rules = tmp_path / "alerts.yml"
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    rules.write_text(alerts.read_text() if alerts.exists() else "groups: []\n")
    token = tmp_path / "metrics_token"
    token.write_text("a-token-for-the-check")
    local = PROMETHEUS.read_text().replace("/etc/prometheus/alerts.yml", str(rules))
    local = local.replace(token_file, str(token))
    copy = tmp_path / "prometheus.yml"
    copy.write_text(local)
    checked = subprocess.run(
        [promtool, "check", "config", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_prometheus_and_grafana_on_the_files_in_the_repo() -> None:
    services = _compose()["services"]
    for name, image in (("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")):
        service = services[name]
        assert service["image"].startswith(image)
        tag = service["image"].split(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a release, not {tag}"
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name} mounts {source}, which does not exist"
            assert target.startswith("/")

    prometheus = _mounts(services["prometheus"])
    assert prometheus["/etc/prometheus"] == DEPLOY / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in " ".join(
        services["prometheus"]["command"]
    )

    grafana = _mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning/datasources"] == PROVISIONING / "datasources"
    assert grafana["/etc/grafana/provisioning/dashboards"] == PROVISIONING / "dashboards"
    provider = yaml.safe_load(
        (PROVISIONING / "dashboards" / "lyceum.yml").read_text(encoding="utf-8")
    )
    [dashboards_provider] = provider["providers"]
    assert grafana[dashboards_provider["options"]["path"]] == DASHBOARDS
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_provider["options"]["path"] + "/")
    assert (DASHBOARDS / Path(home).name).exists()
    datasource = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
