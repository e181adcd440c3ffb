"""Load (issue #10, item 6): 50 signed-in people browsing the console while 10 deploys are in
flight, for 2 minutes, against gunicorn with 2 (sync) workers, 2 Celery worker processes (5 slots
each, so all 10 deploys run at once) and the sandbox AWS (moto server over HTTP).

Each simulated person has their own session and loops: open one of the main pages (runs,
environments, an environment's page with its deployment history, the audit log, a deploy's run
page followed by its live-log fragment), then read it for 1-3 s (uniformly random). Each of the
10 deployers owns one environment (its own ECS service in the sandbox) and deploys through the
API with a token (POST /api/v1/environments/<name>/deploy), follows the run through the API until
it ends, and deploys the other release straight away; each deploy rolls out (1 s in the sandbox)
and bakes 5 s reading the alarms, so 10 are in flight all the time.

An error is any response but 200 (a redirect to the login page counts), a timeout, a refused
connection, or a deploy that does not succeed. Latency is measured in the client, per request,
from sending to the last byte; the clients are threads of this process, on the same machine.

    .venv/bin/python bench/run.py --only load            # through the driver (one table)
    .venv/bin/python bench/load.py [--quick]             # alone; same table
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Row, ms, p50_p95  # noqa: E402
from bench.data import log  # noqa: E402

# (full, --quick)
USERS = (50, 6)
DEPLOYERS = (10, 2)
SECONDS = (120, 8)
THINK_SECONDS = (1.0, 3.0)
WORKER_PROCESSES, WORKER_SLOTS = 2, 5
BAKE_SECONDS = 5
P95_GOAL = 1.0  # seconds
TAGS = ("v1.1.0", "v1.2.0")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (to the login page, say) is an answer to count, not to follow."""

    def redirect_request(self, *args, **kwargs):
        return None


@contextlib.contextmanager
def celery_workers(count: int, slots: int, log_dir: Path):
    from opsconsole.celery import app

    app.control.purge()
    processes = []
    for n in range(1, count + 1):
        logfile = open(log_dir / f"worker{n}.log", "wb")  # noqa: SIM115 (lives as long as the worker)
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--concurrency", str(slots), "--name", f"load{n}@%h"],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "DEPLOY_POLL_MS": "500"},
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        deadline = time.monotonic() + 90
        while len(app.control.ping(timeout=0.5)) < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the Celery workers did not start; see {log_dir}")
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


class Tally:
    """Latencies per page and errors, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.deploys: dict[str, int] = defaultdict(int)  # final status -> count

    def page(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def fetch(opener, url: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, float]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    started = time.perf_counter()
    try:
        with opener.open(request, timeout=60) as response:
            body = response.read()
            return response.status, body, time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.perf_counter() - started


def browser(base: str, session_cookie: str):
    opener = urllib.request.build_opener(NoRedirect)
    opener.addheaders = [("Cookie", f"sessionid={session_cookie}")]
    return opener


def person(base: str, cookie: str, environments: list[str], recent_runs: list[int], tally: Tally, stop) -> None:
    opener = browser(base, cookie)
    rng = random.Random()
    while not stop.is_set():
        choice = rng.choice(["runs", "environments", "environment", "audit", "run log"])
        if choice == "runs":
            paths = [("runs", "/runs/")]
        elif choice == "environments":
            paths = [("environments", "/environments/")]
        elif choice == "environment":
            paths = [("environment (deployment history)", f"/environments/{rng.choice(environments)}/")]
        elif choice == "audit":
            paths = [("audit", "/audit/")]
        else:
            run_id = rng.choice(recent_runs) if recent_runs else None
            if run_id is None:
                continue
            paths = [("run page", f"/runs/{run_id}/"), ("run log (events fragment)", f"/runs/{run_id}/events/?after=0")]
        for kind, path in paths:
            try:
                status, _, seconds = fetch(opener, base + path)
            except OSError as exc:
                tally.error(f"GET {path}: {type(exc).__name__}: {exc}")
                continue
            if status != 200:
                tally.error(f"GET {path}: {status}")
            else:
                tally.page(kind, seconds)
        stop.wait(rng.uniform(*THINK_SECONDS))


def deployer(base: str, token: str, environment: str, releases: list[int], recent_runs, tally: Tally, stop) -> None:
    opener = urllib.request.build_opener(NoRedirect)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = 0
    while not stop.is_set():
        body = json.dumps({"release_id": releases[n % len(releases)]}).encode()
        n += 1
        try:
            status, answer, _ = fetch(
                opener, f"{base}/api/v1/environments/{environment}/deploy", data=body, headers=auth
            )
        except OSError as exc:
            tally.error(f"deploy {environment}: {type(exc).__name__}: {exc}")
            stop.wait(1)
            continue
        if status != 202:
            tally.error(f"deploy {environment}: {status} {answer[:200]!r}")
            stop.wait(1)
            continue
        run_id = json.loads(answer)["id"]
        recent_runs.append(run_id)
        deadline = time.monotonic() + 120
        while True:  # follow it to the end even after the clock ran out: no deploy is left mid-way
            time.sleep(1)
            try:
                status, answer, _ = fetch(opener, f"{base}/api/v1/runs/{run_id}", headers=auth)
            except OSError as exc:
                tally.error(f"run {run_id}: {type(exc).__name__}: {exc}")
                continue
            if status != 200:
                tally.error(f"run {run_id}: {status}")
                continue
            run = json.loads(answer)
            if run["status"] in ("succeeded", "failed", "errored", "canceled", "rolled_back"):
                with tally.lock:
                    tally.deploys[run["status"]] += 1
                if run["status"] != "succeeded":
                    tally.error(f"deploy run #{run_id} on {environment} ended {run['status']}: {run.get('error')}")
                break
            if time.monotonic() > deadline:
                tally.error(f"deploy run #{run_id} on {environment} did not end within 120 s")
                break


def prepare(stack, deployers: int, users: int):
    """Environments wired to the sandbox's services, the two releases, the people and a token."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from deployments.models import Release
    from opsconsole.access.models import ApiToken, Role, RoleBinding
    from opsconsole.environments.models import Environment, Tier

    environments = []
    for name, s in stack.environments.items():
        Environment.objects.update_or_create(
            name=name,
            defaults=dict(
                tier=Tier.STAGING,
                ecs_cluster=s.cluster,
                ecs_service=s.service,
                task_family=s.family,
                container_name=s.container,
                alarm_names=s.alarm_names,
                bake_seconds=BAKE_SECONDS,
                rollout_timeout_seconds=120,
                migration_command=[],
                smoke_checks=[],
                required_approvals=0,
            ),
        )
        environments.append(name)
    releases = [
        Release.objects.get_or_create(
            digest=stack.images[tag], defaults=dict(repository=stack.repository_uri, tag=tag, registered_by_name="ci")
        )[0].pk
        for tag in TAGS
    ]
    User = get_user_model()
    cookies = []
    for n in range(users):
        user, created = User.objects.get_or_create(username=f"load-user-{n}", defaults={"email": f"u{n}@example.com"})
        if created:
            RoleBinding.objects.create(user=user, role=Role.ADMIN)  # sees every page, the audit log included
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    ci, _ = User.objects.get_or_create(username="load-ci")
    RoleBinding.objects.get_or_create(user=ci, role=Role.DEPLOYER, environment=None)
    _, token = ApiToken.issue("load", ["view", "deploy"], created_by=ci)
    return environments, releases, cookies, token


def run(args) -> list[Row]:
    from bench.live_log import web_server
    from bench.orchestration import sandbox
    from sandbox.bootstrap import create_stack

    quick = getattr(args, "quick", False)
    users = getattr(args, "load_users", None) or USERS[quick]
    deployers = getattr(args, "load_deploys", None) or DEPLOYERS[quick]
    seconds = getattr(args, "load_seconds", None) or SECONDS[quick]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    tally = Tally()
    try:
        with sandbox() as endpoint:
            os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox")
            stack = create_stack(endpoint, environments=tuple(f"load-{n}" for n in range(deployers)))
            environments, releases, cookies, token = prepare(stack, deployers, users)
            with celery_workers(WORKER_PROCESSES, WORKER_SLOTS, log_dir), web_server() as base:
                stop, recent_runs = threading.Event(), []
                threads = [
                    threading.Thread(target=deployer, args=(base, token, env, releases, recent_runs, tally, stop))
                    for env in environments
                ] + [
                    threading.Thread(target=person, args=(base, cookie, environments, recent_runs, tally, stop))
                    for cookie in cookies
                ]
                log(f"load: {users} people, {deployers} deployers for {seconds} s against {base}")
                started = time.monotonic()
                for thread in threads:
                    thread.start()
                time.sleep(seconds)
                stop.set()
                for thread in threads:
                    thread.join(timeout=180)
                elapsed = time.monotonic() - started
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    everything = [s for values in tally.latencies.values() for s in values]
    if not everything:
        raise RuntimeError(f"no page was served; errors: {tally.errors[:5]}")
    p50, p95 = p50_p95(everything)
    deploys = sum(tally.deploys.values())
    succeeded = tally.deploys.get("succeeded", 0)
    requests = len(everything) + len(tally.errors)
    log(f"load: {requests} page requests, {len(tally.errors)} errors, {deploys} deploys ({dict(tally.deploys)})")
    for error in tally.errors[:10]:
        log(f"load error: {error}")
    setting = f"{users} people, {deployers} deploys in flight, {seconds} s, gunicorn 2 sync workers"
    rows = [
        Row(f"load: errors ({setting})", f"{len(tally.errors)} of {requests} requests", "0", not tally.errors),
        Row(
            "load: deploys during the load",
            f"{succeeded} of {deploys} succeeded",
            "all",
            deploys > 0 and succeeded == deploys,
            f"{deploys / elapsed * 60:.0f} deploys/min, the last ones finishing after the clock",
        ),
        Row("load: page latency p95, all pages", ms(p95), f"< {ms(P95_GOAL)}", p95 < P95_GOAL, f"p50 {ms(p50)}"),
        Row("load: pages served", f"{len(everything) / seconds:.1f} pages/s", note=f"{len(everything)} pages"),
    ]
    for kind, values in sorted(tally.latencies.items()):
        k50, k95 = p50_p95(values)
        rows.append(Row(f"load: p95 {kind}", ms(k95), note=f"p50 {ms(k50)}, max {ms(max(values))}, n={len(values)}"))
    return rows


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--only", "load", *sys.argv[1:]]))
