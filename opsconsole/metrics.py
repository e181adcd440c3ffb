"""The /metrics endpoint: the console's state in Prometheus text format.

Almost everything is read from the database at scrape time, with a handful of grouped queries,
so every gunicorn worker answers the same numbers and a restart loses nothing. Only the
console's own request rate and latency (opsconsole/metrics_middleware.py) are counted in the
process; see docs/monitoring.md for what that means with several workers.

The core exports its own metrics (runs, their durations, the queue); each app registers a
function yielding its own metric families (`<app>/metrics.py`) with `register_collector()` in its
AppConfig.ready(), so the core imports no app and an app that is not installed exports nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from opsconsole import redisclient
from opsconsole.metrics_middleware import REQUEST_REGISTRY
from opsconsole.runs.models import ACTIVE, EXECUTING, TERMINAL, Run

# Upper bounds, in seconds, of the run duration histogram: a self-test takes seconds, a deploy
# with a bake window minutes, a large restore hours.
RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

# A collector takes nothing and yields metric families, read from the database at each scrape.
MetricCollector = Callable[[], Iterable[Metric]]
COLLECTORS: list[MetricCollector] = []


def register_collector(collector: MetricCollector) -> MetricCollector:
    """Add an app's metrics to /metrics (call it from AppConfig.ready(); twice adds it once)."""
    if collector not in COLLECTORS:
        COLLECTORS.append(collector)
    return collector


def parse_allowlist(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """METRICS_ALLOWED_IPS entries (addresses or CIDR networks) as networks, or a clear error."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {entry!r} is not an address or network") from None
    return networks


def timestamp_seconds(moment: datetime | None) -> float:
    """A moment as a Prometheus timestamp; 0 for never."""
    return moment.timestamp() if moment else 0.0


class ConsoleCollector(Collector):
    """Yields every database-derived metric; one instance per scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from self.runs()
        yield from self.run_durations()
        for collector in COLLECTORS:
            yield from collector()
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
            oldest.add_metric([row["status"]], timestamp_seconds(moment or row["created"]))
            if row["status"] in EXECUTING and row["hb_max"]:
                newest = max(newest, row["hb_max"]) if newest else row["hb_max"]
                oldest_hb = min(oldest_hb, row["hb_min"]) if oldest_hb else row["hb_min"]
        if newest:
            heartbeat_newest.add_metric([], timestamp_seconds(newest))
            heartbeat_oldest.add_metric([], timestamp_seconds(oldest_hb))
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
        client = redisclient.client(settings.REDIS_URL)
        if backend == "celery":
            return int(client.llen("celery"))
        from rq import Queue

        return Queue("default", connection=client).count
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
