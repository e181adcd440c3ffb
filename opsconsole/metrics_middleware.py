"""Counts the console's own requests and their latency for /metrics.

These are the only per-process metrics: each gunicorn worker counts what it served. Without
PROMETHEUS_MULTIPROC_DIR a scrape sees one worker's numbers; with it, prometheus-client sums the
workers' files (see docs/monitoring.md). Labels are the route name, not the path, so a run id in
the URL does not make a new series.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# The `_created` series (when each label set first appeared in this process) only add noise.
disable_created_metrics()
REQUEST_REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "opsconsole_http_requests",
    "Requests served by the console, by method, route name and status code.",
    ["method", "view", "status"],
    registry=REQUEST_REGISTRY,
)
LATENCY = Histogram(
    "opsconsole_http_request_duration_seconds",
    "Time the console took to answer, by method and route name.",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REQUEST_REGISTRY,
)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.url_name or match.view_name or "unnamed") if match else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        LATENCY.labels(method, view).observe(time.perf_counter() - started)
        REQUESTS.labels(method, view, str(response.status_code)).inc()
        return response
