"""monitoring/: Prometheus config, alert rules and their unit tests, Alertmanager routing and the
Grafana dashboards, checked with Debian's promtool and amtool (scripts/test.sh installs them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install prometheus prometheus-alertmanager (scripts/test.sh does)"
    return path


def run(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def monitoring_copy(tmp_path) -> Path:
    """monitoring/ with the secret files a real server has beside its config."""
    copy = tmp_path / "monitoring"
    shutil.copytree(MONITORING, copy)
    (copy / "secrets").mkdir()
    (copy / "secrets" / "opsconsole_metrics_token").write_text("a-token-for-the-config-check\n")
    return copy


def test_promtool_accepts_the_prometheus_config(monitoring_copy):
    result = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=monitoring_copy)
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_the_console_is_scraped_with_a_token_from_a_file_never_inline():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) >= {"opsconsole", "api"}
    assert jobs["opsconsole"]["authorization"] == {
        "type": "Bearer",
        "credentials_file": "secrets/opsconsole_metrics_token",
    }
    text = (MONITORING / "prometheus.yml").read_text()
    assert "credentials:" not in text and "bearer_token:" not in text


def test_promtool_refuses_the_config_when_the_token_file_is_missing():
    result = subprocess.run(
        [tool("promtool"), "check", "config", "prometheus.yml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "opsconsole_metrics_token" in result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules():
    run(tool("promtool"), "check", "rules", "rules/console.yml", "rules/api.yml")


def test_the_alert_unit_tests_pass():
    result = run(tool("promtool"), "test", "rules", *sorted(str(p) for p in (MONITORING / "tests").glob("*.yml")))
    assert result.stdout.count("SUCCESS") == len(list((MONITORING / "tests").glob("*.yml")))


def alerts_in(path: Path) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_every_alert_has_a_unit_test_that_fires_it():
    alerts = set()
    for rules in (MONITORING / "rules").glob("*.yml"):
        alerts |= alerts_in(rules)
    fired = set()
    for test_file in (MONITORING / "tests").glob("*.yml"):
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    assert alerts == fired


def test_the_console_rules_cover_what_the_issue_asks_for():
    assert alerts_in(MONITORING / "rules" / "console.yml") == {
        "BackupTooOld",
        "BackupVerifyFailing",
        "DeployFailed",
        "RollbackHappened",
        "DriftDetected",
        "DRNotReady",
        "WorkerDown",
        "RunStuck",
    }
    assert alerts_in(MONITORING / "rules" / "api.yml") == {"HighErrorRate", "HighLatency", "LowFraudDetectionRate"}


def test_the_latency_alert_uses_bucket_rates_aggregated_by_le():
    rules = {
        r["alert"]: r
        for g in yaml.safe_load((MONITORING / "rules" / "api.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert rules["HighLatency"]["expr"] == (
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 1"
    )


def test_amtool_accepts_the_alertmanager_config():
    run(tool("amtool"), "check-config", "alertmanager.yml")


@pytest.mark.parametrize(
    "labels, receiver",
    [
        (["severity=critical", "alertname=BackupTooOld"], "pagerduty-critical"),
        (["severity=warning", "alertname=DriftDetected"], "slack-warnings"),
    ],
)
def test_critical_alerts_page_and_warnings_go_to_slack(labels, receiver):
    result = run(tool("amtool"), "config", "routes", "test", "--config.file=alertmanager.yml", *labels)
    assert result.stdout.strip() == receiver


def test_alertmanager_secrets_are_file_references():
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    assert "slack_api_url" not in config["global"] and config["global"]["slack_api_url_file"]
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            assert "routing_key" not in pagerduty and "service_key" not in pagerduty
            assert pagerduty["routing_key_file"]
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack


def test_every_dashboard_query_parses(tmp_path):
    """promtool has no offline query parser, so each panel expression becomes a recording rule
    and `promtool check rules` parses it."""
    rules = []
    for dashboard in DASHBOARDS:
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel["targets"]:
                name = f"dashboard:{dashboard.stem}:panel_{panel['id']}_{target['refId']}"
                rules.append({"record": name, "expr": target["expr"]})
    assert len(rules) > 20
    generated = tmp_path / "dashboard_queries.yml"
    generated.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", str(generated))
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_broken_query_would_be_caught(tmp_path):
    generated = tmp_path / "broken.yml"
    generated.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]})
    )
    result = subprocess.run([tool("promtool"), "check", "rules", str(generated)], capture_output=True, text=True)
    assert result.returncode != 0


def test_there_are_console_api_and_fraud_dashboards_on_the_provisioned_datasource():
    assert [d.stem for d in DASHBOARDS] == ["api", "console", "fraud"]
    datasources = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    uids = set()
    for dashboard in DASHBOARDS:
        data = json.loads(dashboard.read_text())
        uids.add(data["uid"])
        assert data["panels"], dashboard
        for panel in data["panels"]:
            assert panel["datasource"]["uid"] == uid
            assert all(target["datasource"]["uid"] == uid for target in panel["targets"])
    assert len(uids) == len(DASHBOARDS)
