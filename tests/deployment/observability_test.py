"""deploy/observability: Prometheus config and alert rules pass promtool, each SLO alert
fires on a breach and stays quiet otherwise (promtool's rule unit tests), dashboards'
queries parse and name only metrics wavepod exports, the collector's pipelines are wired.

The OpenTelemetry Collector binary is not installable offline here (no registry ships
it), so its config is checked for structure: every pipeline names defined components.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path("deploy/observability")
PROMETHEUS = ROOT / "prometheus"
DASHBOARDS = ROOT / "grafana" / "dashboards"

# What the services export, as Prometheus names (OpenTelemetry's translation of the
# instruments; gateway_test and evaluator_test read several of them off live pages).
EXPORTED = {
    "rpc_server_duration_milliseconds_bucket",
    "rpc_server_duration_milliseconds_count",
    "rpc_server_duration_milliseconds_sum",
    "inference_queue_duration_milliseconds_bucket",
    "inference_compute_duration_milliseconds_bucket",
    "inference_batch_size_bucket",
    "wavepod_predictions_total",
    "wavepod_prediction_value_days_bucket",
    "wavepod_serving_cost_per_hour",
    "wavepod_serving_cost_per_1k_forecast",
    "wavepod_drift_psi",
    "wavepod_drift_ks",
    "wavepod_drift_z_score",
    "wavepod_online_mae_days",
    "wavepod_online_label_coverage",
    "wavepod_retrain_recommended",
    "up",  # Prometheus' own, per target
}
# The SLOs of the issue, one alert each.
SLO_ALERTS = {
    "InferenceLatencyP95High",
    "GrpcServerErrorRateHigh",
    "FeatureDriftHigh",
    "CostPer1kPredictionsOverForecast",
}
# Beyond the SLOs: a burst of calls that auth refused.
SECURITY_ALERTS = {"CallsRefused"}
_METRIC = re.compile(r"\b((?:wavepod|rpc|inference)[a-z0-9_:]*|up)\b(?!\s*\()")


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: apt-get install prometheus (.ci/run does)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True)


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _recorded() -> set[str]:
    return {str(rule["record"]) for rule in _rules() if "record" in rule}


def _metrics_in(expr: str) -> set[str]:
    # Label names inside {...} and `by (...)` lists are not metrics.
    stripped = re.sub(r"\{[^}]*\}", "", expr)
    stripped = re.sub(r"\b(by|without)\s*\([^)]*\)", "", stripped)
    return set(_METRIC.findall(stripped))


def test_prometheus_config_and_rules_pass_promtool() -> None:
    checked = _promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rule files found" in checked.stdout


def test_each_slo_alert_fires_on_a_breach_and_stays_quiet_otherwise() -> None:
    alerts = {str(rule["alert"]) for rule in _rules() if "alert" in rule}
    assert alerts >= SLO_ALERTS | SECURITY_ALERTS
    cases = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check["exp_alerts"]
    }
    quiet = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if not check["exp_alerts"]
    }
    tested_alerts = SLO_ALERTS | SECURITY_ALERTS
    assert fired >= tested_alerts and quiet >= tested_alerts, (fired, quiet)
    tested = _promtool("test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rules_name_only_exported_or_recorded_metrics() -> None:
    known = EXPORTED | _recorded()
    for rule in _rules():
        unknown = _metrics_in(str(rule["expr"])) - known
        assert not unknown, (rule.get("alert") or rule.get("record"), unknown)


def _dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_three_dashboards_on_the_provisioned_datasource() -> None:
    dashboards = _dashboards()
    assert set(dashboards) == {"executive", "oncall", "debug"}
    assert len({d["uid"] for d in dashboards.values()}) == 3
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    uid = {d["uid"] for d in datasources if d["type"] == "prometheus"}
    for name, dashboard in dashboards.items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["targets"], (name, panel["title"])
            assert {panel["datasource"]["uid"]} | {
                t["datasource"]["uid"] for t in panel["targets"]
            } <= uid, (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])


@pytest.mark.parametrize("name", ["executive", "oncall", "debug"])
def test_dashboard_queries_parse_and_name_known_metrics(name: str, tmp_path: Path) -> None:
    dashboard = _dashboards()[name]
    exprs = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    known = EXPORTED | _recorded()
    for title, expr in exprs:
        assert not _metrics_in(expr) - known, (title, _metrics_in(expr) - known)
    # promtool parses PromQL in rule files: each query becomes a recording rule, with
    # the dashboard's variables as "all" (what Grafana sends for All).
    variables = {f"${v['name']}": v.get("allValue", ".*") for v in dashboard["templating"]["list"]}

    def substituted(expr: str) -> str:
        for variable, value in variables.items():
            expr = expr.replace(variable, value)
        return expr

    rules = {
        "groups": [
            {
                "name": name,
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": substituted(expr)}
                    for i, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for query in (v["query"]["query"] for v in dashboard["templating"]["list"]):
        series = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
        assert series, query
        assert _metrics_in(series.group(1)) <= known, query


def test_collector_pipelines_name_defined_components() -> None:
    config = yaml.safe_load((ROOT / "otel-collector.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for pipeline, parts in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            assert set(parts.get(kind, [])) <= set(config.get(kind, {})), (pipeline, kind)
        assert parts["receivers"] and parts["exporters"], pipeline
    assert set(config["service"].get("extensions", [])) <= set(config.get("extensions", {}))
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc.endswith(":4317")
    # Prometheus scrapes what the collector's exporter serves.
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    port = config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    targets = {t for job in scrape for s in job["static_configs"] for t in s["targets"]}
    assert f"otel-collector:{port}" in targets
