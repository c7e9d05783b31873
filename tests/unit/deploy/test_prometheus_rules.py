"""deploy/prometheus/alerts.yml: Prometheus accepts it, every alert is shaped alike (for, severity,
summary, description, a runbook section that exists), and its `promtool test rules` unit tests
(deploy/prometheus/tests/) pass, with each alert tested both firing and quiet.

promtool is Debian's `prometheus` package (`apt-get install -y --no-install-recommends
prometheus`; .ci/run installs it). Without it these tests fail with that hint, here as in CI: as
with the browser tests' Chromium, a missing tool is a failure, never a skip. PROMTOOL names another
binary."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"

# The PRD's ("Monitoring & Alerting") and issue 12's.
EXPECTED_ALERTS = {
    "PaymentSuccessRateLow", "ApiLatencyHigh", "RpcLatencyHigh", "WebhookFailureRateHigh", "DbConnectionPoolExhausted",
    "CacheMissRateHigh", "GatewayCircuitBreakerOpen", "OutboxLagHigh", "DeadLettersPresent", "Http5xxRateHigh",
    "EnrollmentLagHigh", "EnrollmentsStalled", "ScrapeTargetDown", "OutboxRelayMissing",
}


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: apt-get install -y --no-install-recommends prometheus "
                    "(or set PROMTOOL)", pytrace=False)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent)


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_prometheus_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = run_promtool("test", "rules", *(str(path) for path in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_the_prd_alerts_and_ours_are_there_each_with_for_severity_and_a_runbook_section() -> None:
    found = alerts()
    assert {rule["alert"] for rule in found} == EXPECTED_ALERTS
    anchors = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
               for line in OPERATIONS.read_text().splitlines() if line.startswith("### ")}
    for rule in found:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[ms]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in ("page", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"docs/OPERATIONS.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/OPERATIONS.md has no '### {name}' section"


def test_each_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["../alerts.yml"], path
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == EXPECTED_ALERTS, EXPECTED_ALERTS - firing
    assert quiet == EXPECTED_ALERTS, EXPECTED_ALERTS - quiet
