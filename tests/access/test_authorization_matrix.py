"""The authorisation matrix: every URL and API endpoint the console serves (but the Django admin),
requested with GET and POST by every kind of principal: anonymous, a user with no role, a user
of each role, an API token without scope, a token with each single scope and one with all.

Only the combinations ALLOWED lists get past the permission checks. Everything else is refused:
a page sends the anonymous to sign in and answers 403 to a signed-in user without the
permission; the API answers 401 without valid credentials and 403 without the scope; a method a
URL does not serve is 405. Never a 500, and a refusal changes nothing: every table of the
database is checksummed before and after each refused request, and the only change a refused
POST may make is the audit event that records it (outcome denied), which it must make.

URLs are discovered from the URL conf, so a new view is covered the day it is added: a route
with no ALLOWED entry, or with a path argument path_for() cannot fill, fails here and says so.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from backups.models import Backup, BackupPolicy, Kind
from deployments.models import Deployment, Release
from dr.models import DROperation, DRPlan
from infrastructure.models import Plan, Workspace
from opsconsole.access.models import Action, ApiToken
from opsconsole.audit import refusals
from opsconsole.audit.models import AuditEvent, Outcome
from opsconsole.runs.models import Run, Status
from tests.conftest import PASSWORD, LocalCounter

pytestmark = pytest.mark.django_db

SKIPPED_INCLUDES = ("admin/",)
ARGUMENT = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
METHODS = ("GET", "POST")

# --- Principals ---------------------------------------------------------------------------------
# Users are bound in staging (the environment every URL below points at); viewer and admin in
# every environment. Tokens have no environment restriction.
ROLES = ("viewer", "deployer", "approver", "backup_operator", "dr_operator", "admin")
USERS = ("nobody", *ROLES)
SCOPES = tuple(Action.values)
TOKENS = ("token:none", *(f"token:{scope}" for scope in SCOPES), "token:all")
PRINCIPALS = ("anonymous", *USERS, *TOKENS)


def token_scopes(principal: str) -> list[str]:
    scope = principal.removeprefix("token:")
    return {"none": [], "all": list(SCOPES)}.get(scope, [scope])


def holders(action: str) -> frozenset[str]:
    """Users whose role grants `action` in staging, and the tokens whose scopes include it."""
    from opsconsole.access.models import ROLE_ACTIONS

    users = {role for role in ROLES if action in ROLE_ACTIONS[role]}
    return frozenset(users | {t for t in TOKENS if action in token_scopes(t)})


NOBODY: frozenset[str] = frozenset()
EVERYONE = frozenset(PRINCIPALS)
SIGNED_IN = frozenset(USERS)
ANY_TOKEN = frozenset(TOKENS)
VIEWERS = holders(Action.VIEW) - ANY_TOKEN  # pages: tokens never sign in to a page
ADMINS = frozenset({"admin"})


def page(action: str) -> frozenset[str]:
    return holders(action) - ANY_TOKEN


def api(*actions: str) -> frozenset[str]:
    """API principals holding every one of `actions` (a request may check several)."""
    found = EVERYONE - {"anonymous", "nobody"}
    for action in actions:
        found &= holders(action)
    return found


# --- The explicit table: (method, route) -> principals that get past the permission checks ------
# A method a view does not serve is allowed to nobody. Add every new URL here.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", ""): SIGNED_IN,
    ("POST", ""): SIGNED_IN,
    ("GET", "login/"): EVERYONE,
    ("POST", "login/"): EVERYONE,
    ("GET", "logout/"): NOBODY,
    ("POST", "logout/"): EVERYONE,
    ("GET", "sudo/"): SIGNED_IN,
    ("POST", "sudo/"): SIGNED_IN,
    ("GET", "environments/"): SIGNED_IN,
    ("POST", "environments/"): NOBODY,
    ("GET", "environments/<slug:name>/"): VIEWERS,
    ("POST", "environments/<slug:name>/"): NOBODY,
    ("GET", "environments/<slug:name>/deploy/"): NOBODY,
    ("POST", "environments/<slug:name>/deploy/"): page(Action.DEPLOY),
    ("GET", "environments/<slug:name>/rollback/"): NOBODY,
    ("POST", "environments/<slug:name>/rollback/"): page(Action.DEPLOY),
    ("GET", "environments/<slug:name>/lock/"): NOBODY,
    ("POST", "environments/<slug:name>/lock/"): page(Action.DEPLOY),
    ("GET", "environments/<slug:name>/runs/<id:run_id>/decide/"): NOBODY,
    ("POST", "environments/<slug:name>/runs/<id:run_id>/decide/"): page(Action.APPROVE),
    ("GET", "releases/"): VIEWERS,
    ("POST", "releases/"): NOBODY,
    ("GET", "releases/sync/"): NOBODY,
    ("POST", "releases/sync/"): page(Action.DEPLOY),
    ("GET", "releases/compare/"): VIEWERS,
    ("POST", "releases/compare/"): NOBODY,
    ("GET", "backups/"): VIEWERS,
    ("POST", "backups/"): NOBODY,
    ("GET", "backups/policies/new/"): page(Action.BACKUP),
    ("POST", "backups/policies/new/"): page(Action.BACKUP),
    ("GET", "backups/policies/<id:policy_id>/edit/"): page(Action.BACKUP),
    ("POST", "backups/policies/<id:policy_id>/edit/"): page(Action.BACKUP),
    ("GET", "backups/policies/<id:policy_id>/delete/"): NOBODY,
    ("POST", "backups/policies/<id:policy_id>/delete/"): page(Action.BACKUP),
    ("GET", "backups/policies/<id:policy_id>/run/"): NOBODY,
    ("POST", "backups/policies/<id:policy_id>/run/"): page(Action.BACKUP),
    ("GET", "backups/<id:backup_id>/verify/"): NOBODY,
    ("POST", "backups/<id:backup_id>/verify/"): page(Action.BACKUP),
    ("GET", "backups/<id:backup_id>/restore/"): page(Action.BACKUP),
    ("POST", "backups/<id:backup_id>/restore/"): page(Action.BACKUP),
    ("GET", "delivery/"): VIEWERS,
    ("POST", "delivery/"): NOBODY,
    ("GET", "dr/"): VIEWERS,
    ("POST", "dr/"): NOBODY,
    ("GET", "dr/<slug:name>/check/"): NOBODY,
    ("POST", "dr/<slug:name>/check/"): page(Action.DR),
    ("GET", "dr/<slug:name>/failover/"): page(Action.DR),
    ("POST", "dr/<slug:name>/failover/"): page(Action.DR),
    ("GET", "dr/<slug:name>/drill/"): page(Action.DR),
    ("POST", "dr/<slug:name>/drill/"): page(Action.DR),
    ("GET", "dr/<slug:name>/failback/"): page(Action.DR),
    ("POST", "dr/<slug:name>/failback/"): page(Action.DR),
    ("GET", "dr/<slug:name>/runs/<id:run_id>/decide/"): NOBODY,
    ("POST", "dr/<slug:name>/runs/<id:run_id>/decide/"): page(Action.DR),
    ("GET", "dr/<slug:name>/runs/<id:run_id>/resume/"): NOBODY,
    ("POST", "dr/<slug:name>/runs/<id:run_id>/resume/"): page(Action.DR),
    ("GET", "infrastructure/"): SIGNED_IN,
    ("POST", "infrastructure/"): NOBODY,
    ("GET", "infrastructure/<slug:name>/"): VIEWERS,
    ("POST", "infrastructure/<slug:name>/"): NOBODY,
    ("GET", "infrastructure/<slug:name>/plan/"): NOBODY,
    ("POST", "infrastructure/<slug:name>/plan/"): page(Action.DEPLOY),
    ("GET", "infrastructure/<slug:name>/plans/<id:run_id>/apply/"): NOBODY,
    ("POST", "infrastructure/<slug:name>/plans/<id:run_id>/apply/"): page(Action.DEPLOY),
    ("GET", "infrastructure/<slug:name>/runs/<id:run_id>/decide/"): NOBODY,
    ("POST", "infrastructure/<slug:name>/runs/<id:run_id>/decide/"): page(Action.APPROVE),
    ("GET", "runs/"): SIGNED_IN,
    ("POST", "runs/"): NOBODY,
    ("GET", "runs/selftest/"): NOBODY,
    ("POST", "runs/selftest/"): page(Action.RUN),
    ("GET", "runs/<id:run_id>/"): VIEWERS,
    ("POST", "runs/<id:run_id>/"): NOBODY,
    ("GET", "runs/<id:run_id>/events/"): VIEWERS,
    ("POST", "runs/<id:run_id>/events/"): NOBODY,
    ("GET", "runs/<id:run_id>/cancel/"): NOBODY,
    ("POST", "runs/<id:run_id>/cancel/"): page(Action.RUN),
    # Everyone signed in reads the audit log, filtered to the environments they may view.
    ("GET", "audit/"): SIGNED_IN,
    ("POST", "audit/"): NOBODY,
    ("GET", "audit/export.csv"): SIGNED_IN,
    ("POST", "audit/export.csv"): NOBODY,
    ("GET", "audit/export.json"): SIGNED_IN,
    ("POST", "audit/export.json"): NOBODY,
    ("GET", "audit/verify/"): ADMINS,
    ("POST", "audit/verify/"): NOBODY,
    ("GET", "account/tokens/"): ADMINS,
    ("POST", "account/tokens/"): ADMINS,
    ("GET", "account/tokens/new/"): NOBODY,
    ("POST", "account/tokens/new/"): ADMINS,
    ("GET", "account/tokens/<id:token_id>/revoke/"): NOBODY,
    ("POST", "account/tokens/<id:token_id>/revoke/"): ADMINS,
    ("GET", "healthz"): EVERYONE,
    ("POST", "healthz"): EVERYONE,
    ("GET", "readyz"): EVERYONE,
    ("POST", "readyz"): EVERYONE,
    # Only with METRICS_TOKEN or from METRICS_ALLOWED_IPS (neither set here): no session is enough.
    ("GET", "metrics"): NOBODY,
    ("POST", "metrics"): NOBODY,
    # The API document: any valid credentials, whatever their scope.
    ("GET", "api/v1/openapi.json"): EVERYONE - {"anonymous"},
    ("POST", "api/v1/openapi.json"): NOBODY,
    ("GET", "api/v1/environments"): api(Action.VIEW),
    ("POST", "api/v1/environments"): NOBODY,
    ("GET", "api/v1/environments/<slug:name>/deploy"): NOBODY,
    ("POST", "api/v1/environments/<slug:name>/deploy"): api(Action.VIEW, Action.DEPLOY),
    ("GET", "api/v1/environments/<slug:name>/rollback"): NOBODY,
    ("POST", "api/v1/environments/<slug:name>/rollback"): api(Action.VIEW, Action.DEPLOY),
    ("GET", "api/v1/releases"): api(Action.VIEW),
    # CI registers releases with a deploy or a run token (deployments.services.register_release).
    ("POST", "api/v1/releases"): api(Action.DEPLOY) | api(Action.RUN),
    ("GET", "api/v1/runs"): api(Action.VIEW),
    ("POST", "api/v1/runs"): api(Action.RUN),
    ("GET", "api/v1/runs/<id:run_id>"): api(Action.VIEW),
    ("POST", "api/v1/runs/<id:run_id>"): NOBODY,
    ("GET", "api/v1/runs/<id:run_id>/events"): api(Action.VIEW),
    ("POST", "api/v1/runs/<id:run_id>/events"): NOBODY,
    ("GET", "api/v1/runs/<id:run_id>/cancel"): NOBODY,
    ("POST", "api/v1/runs/<id:run_id>/cancel"): api(Action.VIEW, Action.RUN),
    # DR: reading needs view; requests and votes need dr (a token's owner must hold dr there too).
    ("GET", "api/v1/dr"): api(Action.VIEW),
    ("POST", "api/v1/dr"): NOBODY,
    ("GET", "api/v1/dr/<slug:name>"): api(Action.VIEW),
    ("POST", "api/v1/dr/<slug:name>"): NOBODY,
    ("GET", "api/v1/dr/<slug:name>/operations"): api(Action.VIEW),
    ("POST", "api/v1/dr/<slug:name>/operations"): NOBODY,
    ("GET", "api/v1/dr/<slug:name>/failover"): NOBODY,
    ("POST", "api/v1/dr/<slug:name>/failover"): api(Action.DR),
    ("GET", "api/v1/dr/<slug:name>/drill"): NOBODY,
    ("POST", "api/v1/dr/<slug:name>/drill"): api(Action.DR),
    ("GET", "api/v1/dr/<slug:name>/failback"): NOBODY,
    ("POST", "api/v1/dr/<slug:name>/failback"): api(Action.DR),
    ("GET", "api/v1/dr/<slug:name>/runs/<id:run_id>/decide"): NOBODY,
    ("POST", "api/v1/dr/<slug:name>/runs/<id:run_id>/decide"): api(Action.DR),
}

# Allowed requests whose body is complete, so an allowed principal really changes something
# (which proves a refusal above is the permission check, not a missing field).
MUST_ACT = {
    ("POST", "runs/selftest/"),
    ("POST", "runs/<id:run_id>/cancel/"),
    ("POST", "environments/<slug:name>/lock/"),
    ("POST", "backups/policies/<id:policy_id>/delete/"),
    ("POST", "backups/policies/<id:policy_id>/run/"),
    ("POST", "account/tokens/new/"),
    ("POST", "account/tokens/<id:token_id>/revoke/"),
    ("POST", "api/v1/runs"),
    ("POST", "api/v1/runs/<id:run_id>/cancel"),
}


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


ROUTES = [route for route in discover() if not route.startswith("admin/")]


def test_every_url_has_an_entry_in_the_table():
    missing = [f"{method} /{route}" for route in ROUTES for method in METHODS if (method, route) not in ALLOWED]
    assert not missing, (
        "These URLs are not in the authorisation matrix; add who may use them to ALLOWED in "
        f"tests/access/test_authorization_matrix.py: {missing}"
    )
    stale = sorted(f"{method} /{route}" for method, route in ALLOWED if route not in ROUTES)
    assert not stale, f"ALLOWED names URLs that no longer exist: {stale}"
    assert len(ROUTES) >= 50 and {"audit/", "api/v1/runs/<id:run_id>/cancel"} <= set(ROUTES)
    assert {(m, r) for m, r in MUST_ACT} <= set(ALLOWED)


# --- The world every request is made in ----------------------------------------------------------
@pytest.fixture
def world(users, staging, production):
    admin, root = users["admin"], users["superuser"]
    old = Release.objects.create(
        repository="r", tag="v1", digest="sha256:" + "1" * 64, registered_by_name="ci", git_sha="1" * 40
    )
    new = Release.objects.create(
        repository="r", tag="v2", digest="sha256:" + "2" * 64, registered_by_name="ci", git_sha="2" * 40
    )
    staging.ecs_cluster, staging.ecs_service, staging.task_family = "c", "s", "api"
    staging.container_name, staging.live_release = "api", old
    staging.save()

    def run(kind, status, **extra):
        return Run.objects.create(
            kind=kind,
            environment=staging,
            status=status,
            requested_by=root,
            requested_by_name="root",
            params=extra.pop("params", {}),
            **extra,
        )

    selftest = run("maintenance.selftest", Status.QUEUED, params={"lines": 1, "delay_ms": 0, "fail": False})
    Deployment.objects.create(run=run("deployments.deploy", Status.SUCCEEDED), environment=staging, release=old)
    pending = run("deployments.deploy", Status.AWAITING_APPROVAL)
    Deployment.objects.create(run=pending, environment=staging, release=new)

    workspace = Workspace.objects.create(environment=staging, name="staging")
    plan_run = run("terraform.plan", Status.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now())
    Plan.objects.create(run=plan_run, workspace=workspace, has_changes=True, changes={"resource_changes": []})
    apply = run("terraform.apply", Status.AWAITING_APPROVAL, params={"plan_run": plan_run.pk})

    dr_plan = DRPlan.objects.create(
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
    dr_request = run("dr.failover", Status.AWAITING_APPROVAL)
    DROperation.objects.create(plan=dr_plan, run=dr_request, operation="failover", reason="matrix")
    dr_failed = run("dr.failover", Status.FAILED, finished_at=timezone.now() - timedelta(minutes=1))
    DROperation.objects.create(
        plan=dr_plan, run=dr_failed, operation="failover", reason="matrix", approved_at=timezone.now()
    )

    policy = BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="matrix", source_identifier="matrix-db"
    )
    backup = Backup.objects.create(
        policy=policy, environment=staging, kind=Kind.RDS_SNAPSHOT, region="us-east-1", status="available"
    )
    token, _ = ApiToken.issue("revocable", ["view"], created_by=admin)
    raw_tokens = {}
    for principal in TOKENS:
        _, raw_tokens[principal] = ApiToken.issue(principal, token_scopes(principal), created_by=admin)
    ids = {
        "name": staging.name,
        "run_id": selftest.pk,
        "token_id": token.pk,
        "policy_id": policy.pk,
        "backup_id": backup.pk,
    }
    # Routes whose run must be of a particular kind or state to reach the permission check.
    run_for = {
        "environments/<slug:name>/runs/<id:run_id>/decide/": pending.pk,
        "infrastructure/<slug:name>/plans/<id:run_id>/apply/": plan_run.pk,
        "infrastructure/<slug:name>/runs/<id:run_id>/decide/": apply.pk,
        "dr/<slug:name>/runs/<id:run_id>/decide/": dr_request.pk,
        "api/v1/dr/<slug:name>/runs/<id:run_id>/decide": dr_request.pk,
        "dr/<slug:name>/runs/<id:run_id>/resume/": dr_failed.pk,
    }
    return {"users": users, "ids": ids, "run_for": run_for, "tokens": raw_tokens, "releases": (old, new)}


def path_for(route: str, world) -> str:
    values = {**world["ids"]}
    if route in world["run_for"]:
        values["run_id"] = world["run_for"][route]

    def fill(match):
        assert match["name"] in values, f"say what to put in <{match[0][1:-1]}> of {route!r} (path_for)"
        return str(values[match["name"]])

    return "/" + ARGUMENT.sub(fill, route)


# One request handler for every client: building one loads the middleware, and WhiteNoise then
# scans every static file, which is most of the cost of a request here.
_handler = Client().handler


def client_of(principal: str, world) -> tuple[Client, dict]:
    client, headers = Client(), {}
    client.handler = _handler
    if principal.startswith("token:"):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {world['tokens'][principal]}"}
    elif principal != "anonymous":
        # A signed-in session made directly (Client.force_login would also run the sign-in
        # signals, audit included, for every principal of every case), in sudo mode, so a
        # refusal comes from the permission check, not from the password prompt.
        user = world["users"][principal]
        session = SessionStore()
        session.update(
            {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
                "sudo_until": time.time() + 300,
            }
        )
        session.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return client, headers


def body_for(path: str, world) -> dict:
    """Everything a form or API call could carry, so that an allowed POST really acts."""
    old, new = world["releases"]
    if path.startswith("/api/"):
        body = {
            "kind": "maintenance.selftest",
            "environment": "staging",
            "params": {"lines": 1, "delay_ms": 0},
            "release_id": new.pk,
            "repository": "r",
            "tag": "v3",
            "digest": "sha256:" + "3" * 64,
            "reason": "matrix",
            "confirm": "staging",
            "decision": "approve",
        }
        if path.endswith(("/deploy", "/rollback")):
            del body["digest"]  # a deploy names one release (the digest is for registering one)
        return body
    return {
        "lines": "1",
        "delay_ms": "0",
        "name": "matrix",
        "scopes": ["view"],
        "all_environments": "on",
        "password": PASSWORD,
        "next": "/",
        "username": "dana",
        "release": str(new.pk),
        "reason": "matrix",
        "decision": "approve",
        "comment": "matrix",
        # The rollback form confirms with a tick box, the DR forms with the typed name.
        "confirm": "yes" if path.endswith("/rollback/") else "staging",
        "target": "matrix-restore",
    }


def send(client: Client, method: str, path: str, headers: dict, world):
    if method == "GET":
        return client.get(path, **headers)
    if path.startswith("/api/"):
        return client.post(path, body_for(path, world), content_type="application/json", **headers)
    return client.post(path, body_for(path, world), **headers)


# --- Snapshots: a checksum of every table in one query --------------------------------------------
# Touched by any request and not a change of state: the session store, sign-in times, token use.
VOLATILE_TABLES = {"django_session", "django_migrations"}
AUDIT_TABLE = "audit_auditevent"
VOLATILE_COLUMNS = {"auth_user": ("last_login",), "access_apitoken": ("last_used_at",)}
_snapshot_sql: list[str] = []


def snapshot_sql() -> str:
    if not _snapshot_sql:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
            tables = [name for (name,) in cursor.fetchall() if name not in VOLATILE_TABLES]
        parts = []
        for table in tables:
            row = "to_jsonb(t)" + "".join(f" - '{column}'" for column in VOLATILE_COLUMNS.get(table, ()))
            parts.append(
                f"SELECT '{table}', count(*), md5(coalesce(string_agg(({row})::text, '|' ORDER BY ({row})::text), '')) "
                f'FROM "{table}" t'
            )
        _snapshot_sql.append(" UNION ALL ".join(parts))
    return _snapshot_sql[0]


def snapshot() -> dict[str, tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(snapshot_sql())
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


def changed(before: dict, after: dict) -> list[str]:
    return sorted(table for table in before.keys() | after.keys() if before.get(table) != after.get(table))


# --- The test --------------------------------------------------------------------------------------
def refusal_problem(principal: str, route: str, method: str, response) -> str:
    """What is wrong with a response that should be a refusal ("" when it is one)."""
    status = response.status_code
    api_route = route.startswith("api/")
    anonymous_here = principal == "anonymous" or (principal.startswith("token:") and not api_route)
    if status == 405:
        return ""  # the method is not served: refused whoever asks
    if api_route:
        if principal in ("anonymous",) and status != 401:
            return f"expected 401, got {status}"
        if status not in (401, 403):
            return f"expected 401 or 403, got {status}"
        if not response.json().get("error"):
            return "a refusal without an error message"
        return ""
    if route == "metrics":
        return "" if status in (401, 403) else f"expected 401 or 403, got {status}"
    if anonymous_here:
        if status == 302 and response.url.startswith("/login/"):
            return ""
        return f"expected a redirect to sign in, got {status} {response.get('Location', '')}"
    if status != 403:
        return f"expected 403, got {status} {response.get('Location', '')}"
    return ""


def allowed_problem(route: str, response) -> str:
    status = response.status_code
    if status in (401, 403, 404, 405) or status >= 500:
        return f"refused or failed with {status}"
    if status == 302 and response.url.startswith("/login/") and route != "logout/":
        return "sent to sign in"
    return ""


def cases():
    for route in ROUTES:
        for method in METHODS:
            yield pytest.param(route, method, id=f"{method} /{route}")


@pytest.mark.parametrize(("route", "method"), list(cases()))
def test_only_the_allowed_principals_get_through(world, route, method, monkeypatch):
    # Any AWS call an allowed request makes fails at once, on a closed local port.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "matrix")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "matrix")
    assert (method, route) in ALLOWED, (
        f"{method} /{route} is not in the authorisation matrix: add who may use it to ALLOWED "
        "in tests/access/test_authorization_matrix.py"
    )
    allowed = ALLOWED[(method, route)]
    path = path_for(route, world)
    clients = {principal: client_of(principal, world) for principal in PRINCIPALS}
    problems = []
    before = snapshot()  # every request below is rolled back to this state
    for principal in PRINCIPALS:
        client, headers = clients[principal]
        # Refusals are coalesced per principal, route and code; a token on a page is anonymous there.
        monkeypatch.setattr(refusals, "_counter", LocalCounter())
        with transaction.atomic():
            last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
            response = send(client, method, path, headers, world)
            after = snapshot()
            refusals_audited = AuditEvent.objects.filter(seq__gt=last_event).exclude(outcome=Outcome.SUCCESS).count()
            transaction.set_rollback(True)  # the next principal finds the same world
        where = f"{principal}: {method} {path}"
        if response.status_code >= 500:
            problems.append(f"{where} answered {response.status_code}")
        elif principal in allowed:
            problem = allowed_problem(route, response)
            if problem:
                problems.append(f"{where} is allowed but {problem}")
            elif (method, route) in MUST_ACT and after == before:
                problems.append(f"{where} is allowed and should have acted ({response.status_code})")
        else:
            problem = refusal_problem(principal, route, method, response)
            if problem:
                problems.append(f"{where} should be refused: {problem}")
            changes = [table for table in changed(before, after) if table != AUDIT_TABLE]
            if changes:
                problems.append(f"{where} was refused ({response.status_code}) but changed {changes}")
            if method == "POST" and response.status_code != 405 and refusals_audited != 1:
                problems.append(f"{where} was refused ({response.status_code}); {refusals_audited} audit events say so")
    assert not problems, "\n".join(problems)


OTHER_METHODS = ("PUT", "PATCH", "DELETE")


def test_no_url_acts_on_other_methods(world):
    """PUT, PATCH and DELETE: no view acts on them. Each is refused (405, or the principal's
    GET refusal) or, for the few views that do not look at the method, answered like a GET;
    never a 500, never a change but the audit event of a refusal."""
    before = snapshot()
    problems = []
    for principal in ("anonymous", "admin", "token:all"):
        client, headers = client_of(principal, world)
        for route in ROUTES:
            path = path_for(route, world)
            expected = client.get(path, **headers).status_code
            for method in OTHER_METHODS:
                response = client.generic(method, path, b"{}", content_type="application/json", **headers)
                if response.status_code not in (405, expected):
                    problems.append(f"{principal}: {method} {path} answered {response.status_code} (GET: {expected})")
    assert not problems, "\n".join(problems)
    assert [table for table in changed(before, snapshot()) if table != AUDIT_TABLE] == []  # refusals are audited
