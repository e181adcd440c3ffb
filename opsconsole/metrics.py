"""The /metrics endpoint: the console's state in Prometheus text format.

Almost everything is read from the database at scrape time, with a handful of grouped queries,
so every gunicorn worker answers the same numbers and a restart loses nothing. Only the
console's own request rate and latency (opsconsole/metrics_middleware.py) are counted in the
process; see docs/monitoring.md for what that means with several workers.

The apps are looked up through the app registry rather than imported: the core does not depend
on them, and an app that is not installed (or has no models yet) exports nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, OuterRef, Q, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from opsconsole.metrics_middleware import REQUEST_REGISTRY
from opsconsole.runs.models import ACTIVE, EXECUTING, TERMINAL, Run

# Upper bounds, in seconds, of the run duration histogram: a self-test takes seconds, a deploy
# with a bake window minutes, a large restore hours.
RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
DRIFT_STATUSES = ("unknown", "in_sync", "drifted", "error")


def parse_allowlist(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """METRICS_ALLOWED_IPS entries (addresses or CIDR networks) as networks, or a clear error."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {entry!r} is not an address or network") from None
    return networks


def _seconds(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


class ConsoleCollector(Collector):
    """Yields every database-derived metric; one instance per scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from self.runs()
        yield from self.run_durations()
        if apps.is_installed("deployments"):
            yield from self.deployments()
        if apps.is_installed("backups"):
            yield from self.backups()
        if apps.is_installed("infrastructure"):
            yield from self.drift()
        yield from self.dr()
        yield from self.queue()

    def runs(self) -> Iterator[Metric]:
        by_kind = GaugeMetricFamily(
            "opsconsole_runs", "Runs in the database by kind and current status.", labels=["kind", "status"]
        )
        for row in Run.objects.order_by().values("kind", "status").annotate(n=Count("id")):
            by_kind.add_metric([row["kind"], row["status"]], row["n"])
        yield by_kind

        oldest = GaugeMetricFamily(
            "opsconsole_run_active_oldest_timestamp_seconds",
            "When the oldest run in an active status entered it (created for queued and awaiting "
            "approval, started for running and rolling back).",
            labels=["status"],
        )
        heartbeat_newest = GaugeMetricFamily(
            "opsconsole_run_heartbeat_newest_timestamp_seconds",
            "Newest worker heartbeat among executing runs (absent when nothing executes).",
        )
        heartbeat_oldest = GaugeMetricFamily(
            "opsconsole_run_heartbeat_oldest_timestamp_seconds",
            "Oldest worker heartbeat among executing runs: a stale one means a worker stopped.",
        )
        rows = (
            Run.objects.filter(status__in=ACTIVE)
            .order_by()
            .values("status")
            .annotate(created=Min("created_at"), started=Min("started_at"), hb_max=Max("heartbeat_at"))
            .annotate(hb_min=Min("heartbeat_at"))
        )
        newest = oldest_hb = None
        for row in rows:
            moment = row["started"] if row["status"] in EXECUTING else row["created"]
            oldest.add_metric([row["status"]], _seconds(moment or row["created"]))
            if row["status"] in EXECUTING and row["hb_max"]:
                newest = max(newest, row["hb_max"]) if newest else row["hb_max"]
                oldest_hb = min(oldest_hb, row["hb_min"]) if oldest_hb else row["hb_min"]
        if newest:
            heartbeat_newest.add_metric([], _seconds(newest))
            heartbeat_oldest.add_metric([], _seconds(oldest_hb))
        yield from (oldest, heartbeat_newest, heartbeat_oldest)

    def run_durations(self) -> Iterator[Metric]:
        """Cumulative over every finished run in the database, so rate() and histogram_quantile()
        work on it like on an in-process histogram, and every worker reports the same."""
        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        aggregates = {
            f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
            for i, bound in enumerate(RUN_DURATION_BUCKETS)
        }
        rows = (
            Run.objects.filter(status__in=TERMINAL, started_at__isnull=False, finished_at__isnull=False)
            .order_by()
            .annotate(duration=duration)
            .values("kind")
            .annotate(total=Count("id"), seconds=Sum("duration"), **aggregates)
        )
        family = HistogramMetricFamily(
            "opsconsole_run_duration_seconds", "Duration of finished runs, started to finished.", labels=["kind"]
        )
        for row in rows:
            buckets = [(str(float(bound)), row[f"le_{i}"]) for i, bound in enumerate(RUN_DURATION_BUCKETS)]
            buckets.append(("+Inf", row["total"]))
            total = row["seconds"].total_seconds() if row["seconds"] else 0.0
            family.add_metric([row["kind"]], buckets, total)
        yield family

    def deployments(self) -> Iterator[Metric]:
        Deployment = apps.get_model("deployments", "Deployment")
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
            last.add_metric(labels, _seconds(row["newest"]))
        yield from (finished, last)

    def backups(self) -> Iterator[Metric]:
        Backup = apps.get_model("backups", "Backup")
        BackupPolicy = apps.get_model("backups", "BackupPolicy")
        good = Q(status="available", verification__in=("", "passed"))

        newest = GaugeMetricFamily(
            "opsconsole_backup_newest_success_timestamp_seconds",
            "When the newest good backup (available, not failed verification) finished.",
            labels=["environment", "kind"],
        )
        for row in (
            Backup.objects.filter(good)
            .order_by()
            .values("environment__name", "kind")
            .annotate(newest=Max("finished_at"))
        ):
            newest.add_metric([row["environment__name"], row["kind"]], _seconds(row["newest"]))
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
            .annotate(
                newest=Max(
                    "backups__finished_at",
                    filter=Q(backups__status="available", backups__verification__in=("", "passed")),
                )
            )
        ):
            labels = [policy["environment__name"], policy["kind"], policy["name"]]
            rpo.add_metric(labels, policy["rpo_minutes"] * 60)
            policy_newest.add_metric(labels, _seconds(policy["newest"]))
        yield from (rpo, policy_newest)

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
            Backup.objects.filter(verification__in=("passed", "failed"), verified_at__isnull=False)
            .order_by()
            .values("environment__name", "kind", "verification")
            .annotate(newest=Max("verified_at"))
        ):
            key = (row["environment__name"], row["kind"])
            latest[key][row["verification"]] = row["newest"]
            verified.add_metric([*key, row["verification"]], _seconds(row["newest"]))
        for key, results in sorted(latest.items()):
            failed_last = "failed" in results and results["failed"] >= results.get("passed", results["failed"])
            failing.add_metric(list(key), 1 if failed_last else 0)
        yield from (verified, failing)

    def drift(self) -> Iterator[Metric]:
        Workspace = apps.get_model("infrastructure", "Workspace")
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
            checked.add_metric([row["environment__name"], row["name"]], _seconds(row["drift_checked_at"]))
        yield from (status, checked)

    def dr(self) -> Iterator[Metric]:
        try:
            DRPlan = apps.get_model("dr", "DRPlan")
            ReadinessCheck = apps.get_model("dr", "ReadinessCheck")
            DROperation = apps.get_model("dr", "DROperation")
        except LookupError:  # the dr app is not installed
            return
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
            checked.add_metric([name], _seconds(plan.checked_at))
            targets.add_metric([name, "rpo"], plan.rpo_minutes * 60)
            targets.add_metric([name, "rto"], plan.rto_minutes * 60)
            failed_over.add_metric([name], int(plan.active_site == "dr"))
            if plan.drill_rto is not None:
                drill_rto.add_metric([name], plan.drill_rto)
                drill_at.add_metric([name], _seconds(plan.drill_at))
            if plan.drill_rpo is not None:
                drill_rpo.add_metric([name], plan.drill_rpo)
        yield from (ready, checked, targets, failed_over, drill_rto, drill_rpo, drill_at)

    def queue(self) -> Iterator[Metric]:
        depth = queue_depth()
        up = GaugeMetricFamily(
            "opsconsole_queue_up", "1 when the queue's length could be read, else 0.", labels=["backend"]
        )
        up.add_metric([settings.OPSCONSOLE_QUEUE], 0 if depth is None else 1)
        yield up
        if depth is not None:
            family = GaugeMetricFamily(
                "opsconsole_queue_depth", "Messages waiting in the job queue.", labels=["backend"]
            )
            family.add_metric([settings.OPSCONSOLE_QUEUE], depth)
            yield family


def queue_depth() -> int | None:
    """Messages waiting for a worker, or None when the broker cannot be read quickly.

    Celery on Redis keeps its default queue in the list "celery"; RQ counts its own queue; the
    inline backend executes in the request, so nothing ever waits. The filesystem broker of the
    sandbox is not read (None).
    """
    backend = settings.OPSCONSOLE_QUEUE
    if backend == "inline":
        return 0
    if not settings.REDIS_URL:
        return None
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            if backend == "celery":
                return int(client.llen("celery"))
            from rq import Queue

            return Queue("default", connection=client).count
        finally:
            client.close()
    except Exception:  # a scrape must answer even when the broker is down; queue_up says so
        return None


def scrape_allowed(request: HttpRequest) -> int | None:
    """None when the request may read metrics, else the status to refuse it with (401 or 403)."""
    token = getattr(settings, "METRICS_TOKEN", None) or ""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer "):
        offered = header.removeprefix("Bearer ").strip()
        if token and hmac.compare_digest(offered.encode(), token.encode()):
            return None
        return 401
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        address = None
    networks = parse_allowlist(getattr(settings, "METRICS_ALLOWED_IPS", []))
    if address is not None and any(address in network for network in networks):
        return None
    return 401 if token else 403


def render_metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)
    else:
        requests = REQUEST_REGISTRY
    return generate_latest(registry) + generate_latest(requests)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = scrape_allowed(request)
    if refusal is not None:
        response = HttpResponse("Metrics need a valid bearer token or an allowed address.\n", status=refusal)
        response["Content-Type"] = "text/plain; charset=utf-8"
        if refusal == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The 0.0.4 text format is what generate_latest() writes and what every Prometheus parses.
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
