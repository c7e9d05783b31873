"""deploy/grafana/dashboards/ (written by tools/grafana_dashboards.py) and deploy/prometheus/alerts.yml
read only metrics that exist: every name a panel or a rule queries is exported by a service (its
modules imported, names read from prometheus_client's registry) or by Envoy, or is a recording rule;
every panel's query is PromQL that Prometheus accepts (promtool, as in test_prometheus_rules.py)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess

import pytest
import yaml

from tests.support.metric_names import ENVOY_METRICS, SCRAPE_METRICS, metric_names, service_metrics
from tests.unit.deploy.test_prometheus_rules import promtool
from tools import grafana_dashboards

ROOT = pathlib.Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_GROUPS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
RULES = [rule for group in RULE_GROUPS for rule in group["rules"]]
RECORDED = {rule["record"] for rule in RULES if "record" in rule}
# Grafana's interval variables, as Prometheus would get them
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def panels() -> list[tuple[str, dict]]:
    return [(path.name, panel) for path in DASHBOARDS for panel in json.loads(path.read_text())["panels"]]


def panel_queries() -> list[tuple[str, str]]:
    return [(f"{name}: {panel['title']}", target["expr"]) for name, panel in panels() for target in panel["targets"]]


@pytest.fixture(scope="module")
def exported() -> frozenset[str]:
    return service_metrics() | ENVOY_METRICS | SCRAPE_METRICS


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    written = grafana_dashboards.files()
    assert sorted(written) == DASHBOARDS, "run: python -m tools.grafana_dashboards"
    for path, text in written.items():
        assert path.read_text() == text, f"{path.name} is stale: python -m tools.grafana_dashboards"


def test_the_issue_s_dashboards_are_there() -> None:
    titles = {panel["title"] for _, panel in panels()}
    for wanted in ("Checkout funnel", "Payment success by gateway", "Gateway call latency", "REST latency p95 by route",
                   "Outbox lag", "Consumer lag", "Cache hit ratio", "Connection pool use"):
        assert any(title.startswith(wanted) for title in titles), wanted


def test_every_panel_reads_the_provisioned_prometheus_and_fits_the_grid() -> None:
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/datasources.yml").read_text())
    prometheus_uid = next(d["uid"] for d in provisioned["datasources"] if d["type"] == "prometheus")
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids) == 3
    for name, panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": prometheus_uid}, (name, panel["title"])
        assert panel["targets"] and all(t["datasource"]["uid"] == prometheus_uid for t in panel["targets"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, (name, panel["title"])


def test_every_metric_a_panel_queries_is_exported(exported) -> None:
    missing = {(where, name) for where, expr in panel_queries() for name in metric_names(expr)
               if name not in exported and name not in RECORDED}
    assert missing == set()


def test_every_metric_an_alert_or_recording_rule_reads_is_exported(exported) -> None:
    missing = {(rule.get("alert") or rule["record"], name) for rule in RULES for name in metric_names(rule["expr"])
               if name not in exported and name not in RECORDED}
    assert missing == set()


def test_the_extraction_sees_what_a_query_reads() -> None:
    """The check above is only as good as this: names in matchers, ranges, by-clauses and strings are not metrics."""
    expr = ('histogram_quantile(0.95, sum by (le, method) (rate(a_bucket{method=~"x|y", le!="1"}[$__rate_interval])))'
            ' / on (service) group_left b:recorded > bool 0.5 unless c offset 5m or vector(1e3)')
    assert metric_names(expr) == {"a_bucket", "b:recorded", "c"}


def test_prometheus_accepts_every_panel_query(tmp_path) -> None:
    rules = []
    for n, (where, expr) in enumerate(panel_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, where
        rules.append({"record": f"panel:query_{n}:check", "expr": expr})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"SUCCESS: {len(rules)} rules found", result.stdout), result.stdout
