"""Every URL the console serves (but the Django admin), requested by every kind of visitor with
GET and POST: never a 500, anonymous visitors are sent to sign in (pages) or get 401 (API), and
nothing changes unless the visitor may change it.

URLs are discovered from the URL conf, so a new view is covered the day it is added; a new
path argument fails here until path_for() says what to put in it.
"""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from backups.models import Backup, BackupPolicy, Kind
from dr.models import DROperation, DRPlan, ReadinessCheck
from opsconsole.access.models import ApiToken
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import EnvironmentLock, Run, Status
from tests.conftest import PASSWORD, client_for

# Transactional only where the request acts: then the run really executes (the test queue is
# inline, dispatched on commit). Refusals need no commit and run in a rolled-back transaction.
pytestmark = pytest.mark.django_db

SKIPPED_INCLUDES = ("admin/",)
PUBLIC = {"login/", "healthz", "readyz"}
# Read with METRICS_TOKEN or from METRICS_ALLOWED_IPS only (neither is set here): no session is enough.
TOKEN_ONLY = {"metrics"}
ARGUMENT = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")

# The deployer is bound to staging, where the run and the environment under test live. These
# POSTs must act (which proves the request bodies below are ones that would act)...
CHANGES_FOR_DEPLOYER = {
    ("POST", "runs/selftest/"),
    ("POST", "runs/<int:run_id>/cancel/"),
    ("POST", "api/v1/runs"),
    ("POST", "api/v1/runs/<int:run_id>/cancel"),
}
# ...and these may: the deployer holds the permission they need, but whether they act depends on
# more state (a release to deploy, a previous one to roll back to) than this world sets up.
DEPLOYER_MAY_CHANGE = CHANGES_FOR_DEPLOYER | {
    ("POST", "environments/<slug:name>/deploy/"),
    ("POST", "environments/<slug:name>/rollback/"),
    ("POST", "environments/<slug:name>/lock/"),
    ("POST", "releases/sync/"),
    ("POST", "api/v1/environments/<slug:name>/deploy"),
    ("POST", "api/v1/environments/<slug:name>/rollback"),
    ("POST", "api/v1/releases"),
}
VISITORS = ("anonymous", "nobody", "viewer", "deployer")


def discover(patterns=None, prefix: str = "") -> list[str]:
    patterns = get_resolver().url_patterns if patterns is None else patterns
    routes = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route not in SKIPPED_INCLUDES:
                routes += discover(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            assert isinstance(entry.pattern, RoutePattern), f"add support for regex URL {route!r}"
            routes.append(route)
    return routes


ROUTES = discover()


def expectation(route: str, visitor: str, method: str) -> str:
    """Whether the request "must", "may" or "must not" change anything."""
    if visitor != "deployer":
        return "must not"
    if (method, route) in CHANGES_FOR_DEPLOYER:
        return "must"
    return "may" if (method, route) in DEPLOYER_MAY_CHANGE else "must not"


def cases():
    for route in ROUTES:
        for visitor in VISITORS:
            for method in ("GET", "POST"):
                acts = expectation(route, visitor, method)
                marks = [pytest.mark.django_db(transaction=True)] if acts != "must not" else []
                yield pytest.param(route, visitor, method, acts, marks=marks, id=f"{method} /{route} as {visitor}")


def test_the_matrix_covers_the_whole_console():
    assert len(ROUTES) >= 20
    assert {"audit/", "account/tokens/new/", "api/v1/runs/<int:run_id>/cancel", "runs/selftest/"} <= set(ROUTES)
    assert CHANGES_FOR_DEPLOYER <= {("POST", route) for route in ROUTES}
    top_level = {str(entry.pattern) for entry in get_resolver().url_patterns}
    assert not any(route.startswith("admin/") and route not in top_level for route in ROUTES)


@pytest.fixture
def world(users, staging, production):
    """A queued run in staging (cancellable), an active API token, users by role."""
    run = Run.objects.create(
        kind="maintenance.selftest",
        environment=staging,
        params={"lines": 1, "delay_ms": 0, "fail": False},
        status=Status.QUEUED,
        requested_by=users["admin"],
        requested_by_name="ada",
    )
    token, _ = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    policy = BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="matrix", source_identifier="matrix-db"
    )
    backup = Backup.objects.create(
        policy=policy, environment=staging, kind=Kind.RDS_SNAPSHOT, region="us-east-1", status="available"
    )
    # A DR plan on staging, so the DR pages reach their permission checks rather than a 404.
    DRPlan.objects.create(
        environment=staging,
        hosted_zone_id="Z1",
        record_name="api.example.com.",
        primary_target="primary.example.com",
        dr_target="dr.example.com",
        db_source_identifier="matrix-db",
        dr_db_instance="matrix-db-dr",
        dr_ecs_cluster="dr",
        dr_ecs_service="api-dr",
        dr_smoke_url="http://127.0.0.1:9/",
    )
    return {"users": users, "run": run, "token": token, "policy": policy, "backup": backup}


def path_for(route: str, world) -> str:
    values = {
        "run_id": world["run"].pk,
        "token_id": world["token"].pk,
        "name": world["run"].environment.name,
        "policy_id": world["policy"].pk,
        "backup_id": world["backup"].pk,
    }

    def fill(match):
        assert match["name"] in values, f"say what to put in <{match[0][1:-1]}> of {route!r} (path_for)"
        return str(values[match["name"]])

    return "/" + ARGUMENT.sub(fill, route)


def snapshot() -> dict:
    return {
        "runs": sorted(Run.objects.values_list("pk", "status", "cancel_requested")),
        "audit": AuditEvent.objects.exclude(action__startswith="auth.").count(),
        "tokens": sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        "locks": EnvironmentLock.objects.count(),
        "backup_policies": sorted(BackupPolicy.objects.values_list("pk", "schedule", "enabled")),
        "backups": sorted(Backup.objects.values_list("pk", "status")),
        "dr_plans": sorted(DRPlan.objects.values_list("pk", "active_site")),
        "dr_operations": DROperation.objects.count(),
        "readiness_checks": ReadinessCheck.objects.count(),
    }


def client_of(visitor: str, world) -> Client:
    if visitor == "anonymous":
        return Client()
    client = client_for(world["users"][visitor])
    # In sudo mode, so a refusal comes from the permission check, not from the password prompt.
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def send(client, method: str, path: str):
    if method == "GET":
        return client.get(path)
    if path.startswith("/api/"):
        body = {"kind": "maintenance.selftest", "params": {"lines": 1, "delay_ms": 0}}
        return client.post(path, body, content_type="application/json")
    # Everything a form on the console could carry, so that an allowed POST really acts.
    form = {
        "lines": "1",
        "delay_ms": "0",
        "name": "matrix",
        "scopes": ["view", "admin"],
        "password": PASSWORD,
        "next": "/",
        "username": "dana",
    }
    return client.post(path, form)


def expect_for_anonymous(method: str, route: str, response) -> None:
    if route == "login/" and method == "POST":
        assert response.status_code == 302  # the form carried dana's password: signed in
    elif route in PUBLIC:
        assert response.status_code == 200
    elif route in TOKEN_ONLY:
        assert response.status_code == (403 if method == "GET" else 405)
    elif route == "logout/":
        # Not a protected page: signing out is POST-only and then goes to `next`.
        assert response.status_code == (405 if method == "GET" else 302)
    elif route.startswith("api/"):
        if response.status_code == 405:  # the method is checked before the credentials
            assert method not in response["Allow"]
        else:
            assert response.status_code == 401
        assert response.json()["error"]
    else:
        assert response.status_code == 302
        assert response.url.startswith("/login/")


@pytest.mark.parametrize(("route", "visitor", "method", "acts"), list(cases()))
def test_every_url_refuses_what_the_visitor_may_not_do(world, route, visitor, method, acts):
    client = client_of(visitor, world)
    path = path_for(route, world)
    before = snapshot()

    response = send(client, method, path)

    assert response.status_code != 500
    if visitor == "anonymous":
        expect_for_anonymous(method, route, response)
    if route in TOKEN_ONLY:
        assert response.status_code in (401, 403, 405) and b"opsconsole_" not in response.content
    after = snapshot()
    if acts == "must":
        assert after != before, f"the deployer's {method} {path} should have acted ({response.status_code})"
    elif acts == "must not":
        assert after == before, f"{visitor} {method} {path} changed something ({response.status_code})"
