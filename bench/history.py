"""History at scale (item 1): server time and SQL queries per page with 100,000 deployments and
1,000,000 audit events, against Django admin's changelist over the same audit table.

Requests go through Django's test Client in this process (the whole middleware stack, templates
included; no network), signed in as a global admin. Each page: a few warm-up requests, then
`--requests` timed ones (p50 and p95). Query counts come from CaptureQueriesContext on one extra
request, taken three ways: at 5% of the data, at full size, and on a page holding a single row;
the goal is that all three are equal (no query per row, none growing with the table).
"""

from __future__ import annotations

import time

from bench.common import Row, ms, p50_p95
from bench.data import ensure_history, log

GOAL_P95 = 0.050


def _client():
    from django.test import Client

    from bench.data import admin_user

    client = Client()
    client.force_login(admin_user())
    return client


def _get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    else:
        response.content  # noqa: B018 (rendered already; touch it as a server would)
    return response


def query_count(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        _get(client, url)
    return len(queries)


def timed(client, url: str, requests: int) -> list[float]:
    for _ in range(3):
        _get(client, url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        _get(client, url)
        times.append(time.perf_counter() - started)
    return times


def pages() -> dict[str, tuple[str, str]]:
    """name -> (url, url of a page with one row), at the current data."""
    from deployments.models import Deployment
    from opsconsole.audit.models import AuditEvent
    from opsconsole.environments.models import Environment
    from opsconsole.runs.models import Run

    production = Environment.objects.get(name="production")
    env_ids = list(Deployment.objects.filter(environment=production).order_by("id").values_list("id", flat=True)[:2])
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    first_runs = list(Run.objects.order_by("id").values_list("id", flat=True)[:2])
    dana = list(AuditEvent.objects.filter(actor_name="dana").order_by("seq").values_list("seq", flat=True)[:2])
    deploys = list(
        AuditEvent.objects.filter(action__startswith="deployments.deploy")
        .order_by("seq")
        .values_list("seq", flat=True)[:2]
    )
    return {
        "environment history page (production)": (
            "/environments/production/",
            f"/environments/production/?before={env_ids[1]}",
        ),
        "audit page, first page": ("/audit/", "/audit/?before=2"),
        "audit page, filtered by actor": ("/audit/?actor=dana", f"/audit/?actor=dana&before={dana[1]}"),
        "audit page, filtered by action prefix": (
            "/audit/?action=deployments.deploy",
            f"/audit/?action=deployments.deploy&before={deploys[1]}",
        ),
        "audit page, filtered by an action nothing matches": ("/audit/?action=no.such", "/audit/?action=no.such"),
        "audit page, deep in (keyset, half way)": (f"/audit/?before={last_seq // 2}", "/audit/?before=2"),
        "runs page": ("/runs/", f"/runs/?before={first_runs[1]}"),
    }


def run(args) -> list[Row]:
    client = _client()
    small_deployments, small_events = max(100, args.deployments // 20), max(1000, args.audit_events // 20)
    ensure_history(small_deployments, small_events)
    small_counts = {name: query_count(client, url) for name, (url, _) in pages().items()}
    ensure_history(args.deployments, args.audit_events)
    rows = []
    audit_first_p50 = None
    for name, (url, one_row_url) in pages().items():
        count, one_row = query_count(client, url), query_count(client, one_row_url)
        p50, p95 = p50_p95(timed(client, url, args.requests))
        if name == "audit page, first page":
            audit_first_p50 = p50
        constant = count == small_counts[name] == one_row
        log(f"{name}: p50 {ms(p50)}, p95 {ms(p95)}, queries {small_counts[name]}/{count}/{one_row}")
        rows.append(
            Row(
                f"history: {name}",
                f"p50 {ms(p50)}, p95 {ms(p95)}; {count} queries",
                "p95 < 50 ms; same queries at 5% data, full data, 1-row page",
                p95 < GOAL_P95 and constant,
                f"queries {small_counts[name]} / {count} / {one_row}",
            )
        )
    admin_url = "/admin/audit/auditevent/"
    admin_p50, admin_p95 = p50_p95(timed(client, admin_url, args.requests))
    ratio = admin_p50 / audit_first_p50
    rows.append(
        Row(
            "history: audit page vs Django admin changelist (same table)",
            f"{ratio:.1f}x faster (admin p50 {ms(admin_p50)}, p95 {ms(admin_p95)})",
            ">= 5x",
            ratio >= 5,
        )
    )
    rows.insert(
        0,
        Row(
            "history: data",
            f"{args.deployments:,} deployments, {args.audit_events:,} audit events",
            note=f"{args.requests} requests per page, Django test Client in-process",
        ),
    )
    return rows
