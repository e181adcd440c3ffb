"""The DR plans' part of /metrics: readiness, objectives, whether an environment runs in its DR
region, and what the newest succeeded drill measured. Importing this module registers it
(DrConfig.ready() does)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import OuterRef, Subquery
from prometheus_client.core import GaugeMetricFamily, Metric

from dr.models import DROperation, DRPlan, ReadinessCheck
from opsconsole.metrics import register_collector, timestamp_seconds


@register_collector
def dr_metrics() -> Iterator[Metric]:
    checks = ReadinessCheck.objects.filter(plan=OuterRef("pk")).order_by("-id")
    drills = DROperation.objects.filter(
        plan=OuterRef("pk"), operation="drill", run__status="succeeded", rto_seconds__isnull=False
    ).order_by("-id")
    plans = DRPlan.objects.order_by().annotate(
        ready=Subquery(checks.values("ok")[:1]),
        checked_at=Subquery(checks.values("checked_at")[:1]),
        drill_rto=Subquery(drills.values("rto_seconds")[:1]),
        drill_rpo=Subquery(drills.values("rpo_seconds")[:1]),
        drill_at=Subquery(drills.values("run__finished_at")[:1]),
    )
    ready = GaugeMetricFamily(
        "opsconsole_dr_ready",
        "1 when the newest readiness check of the environment's DR plan passed; 0 when it failed or never ran.",
        labels=["environment"],
    )
    checked = GaugeMetricFamily(
        "opsconsole_dr_readiness_checked_timestamp_seconds",
        "When the DR plan's readiness was last checked; 0 if never.",
        labels=["environment"],
    )
    targets = GaugeMetricFamily(
        "opsconsole_dr_target_seconds", "The DR plan's recovery objectives.", labels=["environment", "objective"]
    )
    failed_over = GaugeMetricFamily(
        "opsconsole_dr_failed_over", "1 while the environment runs in its DR region.", labels=["environment"]
    )
    drill_rto = GaugeMetricFamily(
        "opsconsole_dr_last_drill_rto_seconds",
        "Recovery time measured by the newest succeeded drill.",
        labels=["environment"],
    )
    drill_rpo = GaugeMetricFamily(
        "opsconsole_dr_last_drill_rpo_seconds",
        "Data loss window measured by the newest succeeded drill.",
        labels=["environment"],
    )
    drill_at = GaugeMetricFamily(
        "opsconsole_dr_last_drill_timestamp_seconds",
        "When the newest succeeded drill finished.",
        labels=["environment"],
    )
    for plan in plans.select_related("environment"):
        name = plan.environment.name
        ready.add_metric([name], 1 if plan.ready else 0)
        checked.add_metric([name], timestamp_seconds(plan.checked_at))
        targets.add_metric([name, "rpo"], plan.rpo_minutes * 60)
        targets.add_metric([name, "rto"], plan.rto_minutes * 60)
        failed_over.add_metric([name], int(plan.active_site == "dr"))
        if plan.drill_rto is not None:
            drill_rto.add_metric([name], plan.drill_rto)
            drill_at.add_metric([name], timestamp_seconds(plan.drill_at))
        if plan.drill_rpo is not None:
            drill_rpo.add_metric([name], plan.drill_rpo)
    yield from (ready, checked, targets, failed_over, drill_rto, drill_rpo, drill_at)
