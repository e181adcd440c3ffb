"""Audit log (item 3): appends per second with 4 concurrent writers on one chain, and verifying
the whole chain (1,000,000 events) in time and flat memory.

Writers and the verifier are child processes (this file with --append / --verify), each with
its own database connection, as the web and worker processes would be. The writers start
together (each says it is ready, then all are told to go) and each calls
`opsconsole.audit.log.record()` in a loop; the rate is all appends over the time from the first
start to the last finish. The verifier
reports its time and its peak RSS (VmHWM), next to its peak before it began (Django started,
connected), and the peak of the worker processes it splits the chain between (one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Row, peak_rss_mb  # noqa: E402

WRITERS = 4


def _child(*argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *argv], cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def appends(total: int, synchronous_commit: str = "on") -> tuple[float, int]:
    """`total` appends by WRITERS processes at once; returns (appends per second, appends)."""
    per_writer = total // WRITERS
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--append",
                str(per_writer),
                "--writer",
                str(n),
                "--synchronous-commit",
                synchronous_commit,
            ],  # fmt: skip
            cwd=ROOT,
            env=os.environ.copy(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    # Each says "ready" once connected; then all are told to go at once.
    for child in children:
        if child.stdout.readline().strip() != "ready":
            child.kill()
            raise RuntimeError(f"an audit writer failed to start:\n{child.stderr.read()[-2000:]}")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, err = child.communicate()
        if child.returncode:
            raise RuntimeError(f"an audit writer failed:\n{err[-2000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    return per_writer * WRITERS / elapsed, per_writer * WRITERS


def run(args) -> list[Row]:
    from bench.data import audit_count, ensure_history

    ensure_history(args.deployments, args.audit_events)
    rate, written = appends(args.appends)
    # The same with commits that return before their WAL is flushed: not the console's setting
    # (an append must be durable), but it shows how much of the time is the disk's flush.
    async_rate, _ = appends(args.appends, synchronous_commit="off")
    events = audit_count()
    verified = _child("--verify")
    in_process = _child("--verify", "--processes", "1")  # as the audit page's button does
    if not (verified["ok"] and in_process["ok"]):
        raise RuntimeError(f"the chain did not verify: {verified} {in_process}")
    growth = verified["peak_rss_mb"] - verified["before_mb"]
    return [
        Row(
            f"audit: appends/s, {WRITERS} concurrent writers, one chain",
            f"{rate:,.0f}/s",
            ">= 1,000/s",
            rate >= 1000,
            f"{written:,} appends onto {events - 2 * written:,} events; chain verified after",
        ),
        Row(
            "audit: the same with synchronous_commit=off (for comparison only)",
            f"{async_rate:,.0f}/s",
            note="shows how much of an append is the WAL flush",
        ),
        Row(
            f"audit: verify the whole chain ({verified['checked']:,} events)",
            f"{verified['seconds']:.1f} s",
            "< 10 s",
            verified["seconds"] < 10,
            f"{verified['checked'] / verified['seconds']:,.0f} events/s; {verified['processes']} worker processes"
            " (verify_chain(processes=cores), as manage.py verify_audit)",
        ),
        Row(
            "audit: the same verified in-process (the audit page's button, in a web request)",
            f"{in_process['seconds']:.1f} s",
            note=f"{in_process['checked'] / in_process['seconds']:,.0f} events/s, one core; peak RSS "
            f"{in_process['peak_rss_mb']:.0f} MB ({in_process['peak_rss_mb'] - in_process['before_mb']:+.0f} MB)",
        ),
        Row(
            "audit: verifier peak RSS",
            f"{verified['peak_rss_mb']:.0f} MB ({growth:+.0f} MB while verifying); each worker <= "
            f"{verified['workers_peak_mb']:.0f} MB",
            "flat: < 50 MB growth, workers < 50 MB over the verifier's start",
            growth < 50 and verified["workers_peak_mb"] < verified["before_mb"] + 50,
        ),
    ]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description="child processes of the audit benchmark")
    parser.add_argument("--append", type=int)
    parser.add_argument("--writer", type=int, default=0)
    parser.add_argument("--synchronous-commit", default="on")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    _setup_django()
    from django.db import connection

    from opsconsole.audit.log import record, verify_chain
    from opsconsole.audit.models import AuditEvent

    AuditEvent.objects.order_by("-seq").first()  # connected, as the web and worker processes are
    if args.verify:
        before = peak_rss_mb()
        started = time.perf_counter()
        report = verify_chain(processes=args.processes)  # one per core, as `manage.py verify_audit` does
        seconds = time.perf_counter() - started
        workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # reaped workers' peak
        print(json.dumps({"ok": report.ok, "checked": report.checked, "problem": report.problem,
                          "seconds": seconds, "before_mb": before, "peak_rss_mb": peak_rss_mb(),
                          "workers_peak_mb": workers_mb, "processes": args.processes}))  # fmt: skip
    elif args.append:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [args.synchronous_commit])
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        for n in range(args.append):
            record("bench.audit.appended", actor_name=f"writer-{args.writer}", target=f"bench:{n}", details={"n": n})
        print(json.dumps({"started": started, "finished": time.time()}))


if __name__ == "__main__":
    main()
