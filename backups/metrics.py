"""The backups' part of /metrics: the newest good backup (backups.models.good_backup(), the same
definition as the Backups page, the overdue notice and the Delivery page) per environment and
kind and per enabled policy with its RPO, and the restore tests' results. Importing this module
registers it (BackupsConfig.ready() does)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Max
from prometheus_client.core import GaugeMetricFamily, Metric

from backups.models import Backup, BackupPolicy, Verification, good_backup
from opsconsole.metrics import register_collector, timestamp_seconds


@register_collector
def backup_metrics() -> Iterator[Metric]:
    yield from newest_good_backups()
    yield from verifications()


def newest_good_backups() -> Iterator[Metric]:
    newest = GaugeMetricFamily(
        "opsconsole_backup_newest_success_timestamp_seconds",
        "When the newest good backup (available, not failed verification) finished.",
        labels=["environment", "kind"],
    )
    for row in Backup.objects.good().order_by().values("environment__name", "kind").annotate(newest=Max("finished_at")):
        newest.add_metric([row["environment__name"], row["kind"]], timestamp_seconds(row["newest"]))
    yield newest

    rpo = GaugeMetricFamily(
        "opsconsole_backup_policy_rpo_seconds",
        "Recovery-point objective of each enabled backup policy.",
        labels=["environment", "kind", "policy"],
    )
    policy_newest = GaugeMetricFamily(
        "opsconsole_backup_policy_newest_success_timestamp_seconds",
        "When the policy's newest good backup finished; 0 when it has none.",
        labels=["environment", "kind", "policy"],
    )
    for policy in (
        BackupPolicy.objects.filter(enabled=True)
        .order_by()
        .values("environment__name", "kind", "name", "rpo_minutes")
        .annotate(newest=Max("backups__finished_at", filter=good_backup("backups__")))
    ):
        labels = [policy["environment__name"], policy["kind"], policy["name"]]
        rpo.add_metric(labels, policy["rpo_minutes"] * 60)
        policy_newest.add_metric(labels, timestamp_seconds(policy["newest"]))
    yield from (rpo, policy_newest)


def verifications() -> Iterator[Metric]:
    verified = GaugeMetricFamily(
        "opsconsole_backup_last_verified_timestamp_seconds",
        "When a restore test of a backup last passed or failed.",
        labels=["environment", "kind", "result"],
    )
    failing = GaugeMetricFamily(
        "opsconsole_backup_verification_failing",
        "1 when the newest restore test of the environment's backups of this kind failed.",
        labels=["environment", "kind"],
    )
    latest: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)
    for row in (
        Backup.objects.filter(verification__in=(Verification.PASSED, Verification.FAILED), verified_at__isnull=False)
        .order_by()
        .values("environment__name", "kind", "verification")
        .annotate(newest=Max("verified_at"))
    ):
        key = (row["environment__name"], row["kind"])
        latest[key][row["verification"]] = row["newest"]
        verified.add_metric([*key, row["verification"]], timestamp_seconds(row["newest"]))
    for key, results in sorted(latest.items()):
        failed_last = "failed" in results and results["failed"] >= results.get("passed", results["failed"])
        failing.add_metric(list(key), 1 if failed_last else 0)
    yield from (verified, failing)
