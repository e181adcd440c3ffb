"""The Delivery page (issue #8 item 5): server time and SQL queries of /delivery/ as the deploy
history grows (run alone, `--only delivery`, up to --deployments; with the other modules, up to
the 5% size bench/history.py starts from), every deploy inside the chosen 90 days (bench.data
spreads them a minute apart, a third of them failed or rolled back: a worst case for time to
restore).

Requests go through Django's test Client in this process, signed in as a global admin: a warm-up
request, then timed ones (p50 and p95). The query count is taken at each size; the goal is that it
never changes.
"""

from __future__ import annotations

import time

from bench.common import Row, ms, p50_p95
from bench.data import admin_user, deployment_count, ensure_history, log

URL = "/delivery/?days=90"
# About eleven deploys a day across the environments for 90 days: a busy team on this console.
# Larger sizes are reported for context: the medians take every deploy of the period, so the time
# grows with it (linearly), while the number of queries does not.
GOAL_SIZE = 1_000
GOAL_P95 = 0.3
REQUESTS = 10


def measure(client) -> tuple[float, float, int]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()  # each request resets the log: start the capture from an empty one
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    count = len(queries)  # now: the capture reads the log lazily, and the next request resets it
    if response.status_code != 200:
        raise RuntimeError(f"GET {URL} answered {response.status_code}")
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(URL)
        times.append(time.perf_counter() - started)
    p50, p95 = p50_p95(times)
    return p50, p95, count


def run(args) -> list[Row]:
    from django.test import Client

    client = Client()
    client.force_login(admin_user())
    if getattr(args, "modules", ["delivery"]) == ["delivery"]:
        sizes = sorted({min(size, args.deployments) for size in (GOAL_SIZE, 5_000, 20_000)} | {args.deployments})
    else:
        # With the others, stay at or below the size bench/history.py measures first (5% of the
        # full size), so its small-data figures are still taken at small data.
        small = max(100, args.deployments // 20)
        sizes = sorted({min(GOAL_SIZE, small), small})
    rows, counts = [], []
    for size in sizes:
        ensure_history(size, 0)
        actual = deployment_count()  # more than asked when another module grew the database first
        p50, p95, count = measure(client)
        counts.append(count)
        log(f"delivery page at {actual:,} deployments: p50 {ms(p50)}, p95 {ms(p95)}, {count} queries")
        goal = size == actual == GOAL_SIZE
        rows.append(
            Row(
                f"delivery: page at {actual:,} deployments in 90 days",
                f"p50 {ms(p50)}, p95 {ms(p95)}; {count} queries",
                f"p95 < {GOAL_P95 * 1000:.0f} ms" if goal else "",
                p95 < GOAL_P95 if goal else None,
            )
        )
    rows.append(
        Row(
            "delivery: queries per page as the history grows",
            " / ".join(str(c) for c in counts),
            "the same at every size",
            len(set(counts)) == 1,
        )
    )
    return rows
