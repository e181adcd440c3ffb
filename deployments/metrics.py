"""The deployments' part of /metrics: finished deploys and rollbacks, and when the newest of each
outcome finished. Importing this module registers it (DeploymentsConfig.ready() does)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Max
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from deployments.models import Deployment
from opsconsole.metrics import register_collector, timestamp_seconds
from opsconsole.runs.models import TERMINAL


@register_collector
def deployment_metrics() -> Iterator[Metric]:
    finished = CounterMetricFamily(
        "opsconsole_deployments_finished",
        "Finished deploys and rollbacks by environment, kind and outcome.",
        labels=["environment", "kind", "status"],
    )
    last = GaugeMetricFamily(
        "opsconsole_deployment_last_finished_timestamp_seconds",
        "When the newest deploy or rollback with this outcome finished.",
        labels=["environment", "kind", "status"],
    )
    rows = (
        Deployment.objects.filter(run__status__in=TERMINAL)
        .order_by()
        .values("environment__name", "kind", "run__status")
        .annotate(n=Count("id"), newest=Max("run__finished_at"))
    )
    for row in rows:
        labels = [row["environment__name"], row["kind"], row["run__status"]]
        finished.add_metric(labels, row["n"])
        last.add_metric(labels, timestamp_seconds(row["newest"]))
    yield from (finished, last)
