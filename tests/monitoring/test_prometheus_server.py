"""A real Prometheus server (Debian's `prometheus`) scrapes the live console with the bearer
token from a file and fires BackupTooOld for a stale backup, with the rule from
monitoring/rules/console.yml (its `for:` shortened so the test does not wait five minutes)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from backups.models import Backup, BackupPolicy, BackupStatus, Kind

from .test_monitoring_config import MONITORING, tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TOKEN = "live-metrics-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except OSError as exc:  # the server is still starting
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last answer: {last!r}")


@pytest.fixture
def prometheus(tmp_path, live_server, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    (tmp_path / "token").write_text(TOKEN + "\n")
    rules = yaml.safe_load((MONITORING / "rules" / "console.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    (tmp_path / "console.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["console.yml"],
        "scrape_configs": [
            {
                "job_name": "opsconsole",
                "authorization": {"type": "Bearer", "credentials_file": "token"},
                "static_configs": [{"targets": [live_server.url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("prometheus") or tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_the_console_and_fires_backup_too_old(staging, prometheus):
    stale = BackupPolicy.objects.create(environment=staging, kind=Kind.PG_DUMP, name="nightly", rpo_minutes=60)
    fresh = BackupPolicy.objects.create(environment=staging, kind=Kind.RDS_SNAPSHOT, name="hourly", rpo_minutes=60)
    for policy, age in ((stale, timedelta(hours=3)), (fresh, timedelta(minutes=5))):
        Backup.objects.create(
            environment=staging,
            policy=policy,
            kind=policy.kind,
            region="us-east-1",
            status=BackupStatus.AVAILABLE,
            finished_at=timezone.now() - age,
        )

    def target_up():
        targets = get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
        return targets and targets[0]["health"] == "up"

    wait_for(target_up, 60, "the console target to be scraped")

    def backup_too_old():
        alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "BackupTooOld" and a["state"] == "firing"]

    firing = wait_for(backup_too_old, 60, "BackupTooOld to fire")
    assert [alert["labels"]["policy"] for alert in firing] == ["nightly"]
    assert firing[0]["labels"]["environment"] == "staging"
    assert firing[0]["labels"]["severity"] == "critical"
    assert float(firing[0]["value"]) > 3 * 3600 - 60
