"""The Terraform workspaces' part of /metrics: each workspace's drift status and when it was last
checked. Importing this module registers it (InfrastructureConfig.ready() does)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from infrastructure.models import Workspace
from opsconsole.metrics import register_collector, timestamp_seconds

DRIFT_STATUSES = ("unknown", "in_sync", "drifted", "error")


@register_collector
def drift_metrics() -> Iterator[Metric]:
    status = GaugeMetricFamily(
        "opsconsole_terraform_drift",
        "1 for the workspace's current drift status (unknown, in_sync, drifted, error), else 0.",
        labels=["environment", "workspace", "status"],
    )
    checked = GaugeMetricFamily(
        "opsconsole_terraform_drift_checked_timestamp_seconds",
        "When the workspace's drift was last checked; 0 if never.",
        labels=["environment", "workspace"],
    )
    for row in Workspace.objects.order_by().values("environment__name", "name", "drift_status", "drift_checked_at"):
        for value in DRIFT_STATUSES:
            status.add_metric([row["environment__name"], row["name"], value], int(row["drift_status"] == value))
        checked.add_metric([row["environment__name"], row["name"]], timestamp_seconds(row["drift_checked_at"]))
    yield from (status, checked)
