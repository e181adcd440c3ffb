"""Bad input everywhere: markup in what users and CI write is escaped on every page; oversized
and absurdly nested bodies get a clean, clear refusal; every form needs its CSRF token; every
page carries a Content-Security-Policy; production cookies are Secure, HttpOnly and SameSite.

Malformed Terraform is covered beside the Terraform code: a .tf syntax error on the page and in a
plan (tests/infrastructure/test_pages.py); a malformed var file here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from deployments.models import Release
from dr.models import DROperation
from opsconsole.access.models import Action, ApiToken
from opsconsole.audit.log import record
from opsconsole.audit.models import AuditEvent
from opsconsole.environments.models import Environment, FreezeWindow
from opsconsole.runs.context import append_event
from opsconsole.runs.models import Approval, EnvironmentLock, Run
from tests.access.test_authorization_matrix import ALLOWED, AUDIT_TABLE, ROUTES, changed, client_of, path_for, snapshot
from tests.packaging.test_check_deploy import ROOT, production_env

pytestmark = pytest.mark.django_db


def payload(where: str) -> str:
    return f'<script>alert("xss-{where}")</script><img src=x onerror=alert(1)>'


def escaped(where: str) -> str:
    return f"&lt;script&gt;alert(&quot;xss-{where}&quot;)&lt;/script&gt;"


# Pages that read only query strings the matrix does not fill.
EXTRA_PAGES = ("/releases/compare/?base={old}&head={new}", "/runs/?status=active", "/audit/?q=xss")
NOT_HTML = {"audit/export.csv", "audit/export.json", "metrics", "healthz", "readyz"}


def html_pages(world) -> list[str]:
    old, new = world["releases"]
    pages = [
        path_for(route, world)
        for route in ROUTES
        if not route.startswith("api/") and route not in NOT_HTML and world_allows("GET", route)
    ]
    return pages + [page.format(old=old.pk, new=new.pk) for page in EXTRA_PAGES]


def world_allows(method: str, route: str) -> bool:
    return "admin" in ALLOWED.get((method, route), ())


@pytest.fixture
def marked_world(world):
    """The matrix's world, with markup in every text a user or CI can write that a page shows."""
    old, new = world["releases"]
    staging = Environment.objects.get(name="staging")
    Release.objects.filter(pk=new.pk).update(commit_message=payload("commit"), tag="v2")
    EnvironmentLock.objects.create(environment=staging, held_by="dana", reason=payload("lock"))
    FreezeWindow.objects.create(
        environment=staging,
        starts_at=timezone.now() - timedelta(hours=1),
        ends_at=timezone.now() + timedelta(hours=1),
        reason=payload("freeze"),
    )
    pending = Run.objects.get(pk=world["run_for"]["environments/<slug:name>/runs/<id:run_id>/decide/"])
    Approval.objects.create(run=pending, user=world["users"]["approver"], decision="reject", comment=payload("comment"))
    DROperation.objects.filter(run_id=world["run_for"]["dr/<slug:name>/runs/<id:run_id>/decide/"]).update(
        reason=payload("dr-reason")
    )
    append_event(Run.objects.get(pk=world["ids"]["run_id"]), payload("event"), data={"note": payload("data")})
    record("deployments.deploy.requested", target=payload("target")[:200], environment="staging", details={"x": 1})
    return world


MARKED = ("commit", "lock", "freeze", "comment", "dr-reason", "event", "target")


def test_markup_users_write_is_escaped_on_every_page(marked_world):
    client, _ = client_of("admin", marked_world)
    shown = set()
    for page in html_pages(marked_world):
        response = client.get(page, follow=True)
        assert response.status_code == 200, f"{page}: {response.status_code}"
        body = response.content.decode()
        assert "<script>alert(" not in body and "<img src=x onerror" not in body, f"{page} shows markup unescaped"
        shown |= {where for where in MARKED if escaped(where) in body}
    # Each text was really shown somewhere (escaped), so the check above saw it.
    assert shown == set(MARKED), f"never shown: {set(MARKED) - shown}"


@pytest.fixture
def ci_token(users):
    _, raw = ApiToken.issue("ci", list(Action.values), created_by=users["admin"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_an_oversized_api_body_is_a_clear_413_and_changes_nothing(client, staging, ci_token, settings):
    before = snapshot()
    big = json.dumps({"kind": "maintenance.selftest", "params": {"pad": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}})
    for path in ("/api/v1/runs", "/api/v1/releases", "/api/v1/environments/staging/deploy"):
        response = client.post(path, big, content_type="application/json", **ci_token)
        assert response.status_code == 413, path
        assert response.json() == {"error": "The request body is larger than 1024 KiB.", "code": "too_large"}
    assert snapshot() == before


def test_an_oversized_form_is_a_clean_400_and_changes_nothing(users, settings):
    client = Client()
    client.force_login(users["deployer"])
    before = snapshot()
    response = client.post("/runs/selftest/", {"lines": "1", "pad": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    assert response.status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"kind": "maintenance.selftest", "params": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"kind": "maintenance.selftest", "params": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001,
    ],
    ids=["top-level arrays", "arrays in an object", "objects"],
)
def test_absurdly_nested_json_is_a_clean_400(client, staging, ci_token, body):
    before = snapshot()
    for path in ("/api/v1/runs", "/api/v1/releases", "/api/v1/environments/staging/deploy"):
        response = client.post(path, body, content_type="application/json", **ci_token)
        assert response.status_code == 400, path
        assert response.json()["error"] in (
            "The request body is nested deeper than 20 levels.",
            "The request body must be a JSON object.",
        )
    assert snapshot() == before


@pytest.mark.parametrize(
    "body, where",
    [
        ('{"name": "ci", "repository": "r", "tag": "v1\\ud800", "digest": "x"}', "body.tag"),
        ('{"kind": "maintenance.selftest", "params": {"note": ["ok", "nul\\u0000"]}}', "body.params.note[1]"),
    ],
    ids=["lone surrogate", "NUL byte"],
)
def test_a_string_that_cannot_be_stored_is_a_400_naming_the_field(client, staging, ci_token, body, where):
    before = snapshot()
    for path in ("/api/v1/runs", "/api/v1/releases", "/api/v1/environments/staging/deploy"):
        response = client.post(path, body, content_type="application/json", **ci_token)
        assert response.status_code == 400, (path, response.content)
        assert response.json() == {
            "error": f"{where} holds a NUL byte or a lone UTF-16 surrogate, which cannot be stored.",
            "code": "invalid",
        }
    assert snapshot() == before


def test_an_id_beyond_the_database_s_range_is_a_404_not_a_500(client, ci_token, users):
    huge = "9" * 19  # just past a bigint: the database would refuse it
    for path in (f"/api/v1/runs/{huge}", f"/api/v1/runs/{huge}/events", f"/api/v1/runs/{huge}/cancel"):
        response = client.get(path, **ci_token)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path
    assert Client().get(f"/runs/{huge}/").status_code in (302, 404)


def test_an_api_crash_answers_json(client, ci_token, settings):
    from unittest import mock

    with mock.patch("opsconsole.runs.api.keyset_page", side_effect=RuntimeError("boom")):
        response = Client(raise_request_exception=False).get("/api/v1/runs", **ci_token)
    assert response.status_code == 500
    assert response.json()["code"] == "server_error" and "boom" not in response.content.decode()


def test_every_form_refuses_a_post_without_its_csrf_token(world):
    """Every page URL that takes a POST, posted by a signed-in admin (or, for sign-in, anyone)
    without the token: 403, audited, nothing else changed."""
    forms = [
        route
        for (method, route), allowed in ALLOWED.items()
        if method == "POST" and allowed and not route.startswith("api/") and route not in ("healthz", "readyz")
    ]
    assert len(forms) >= 25
    before = snapshot()
    for route in forms:
        principal = "anonymous" if route == "login/" else "admin"
        client, _ = client_of(principal, world)
        client.handler.enforce_csrf_checks = True
        try:
            response = client.post(path_for(route, world), {"username": "dana", "password": "x", "reason": "r"})
        finally:
            client.handler.enforce_csrf_checks = False
        assert response.status_code == 403, f"POST /{route} without a CSRF token: {response.status_code}"
        assert b"CSRF" in response.content
    assert [table for table in changed(before, snapshot()) if table != AUDIT_TABLE] == []  # but the refusals' audit
    assert AuditEvent.objects.filter(action="request.refused", details__code="forbidden").count() == len(forms)


def test_every_response_carries_a_content_security_policy(world):
    client, headers = client_of("admin", world)
    token_client, token = client_of("token:all", world)
    for route in ROUTES:
        path = path_for(route, world)
        response = token_client.get(path, **token) if route.startswith("api/") else client.get(path, **headers)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, f"/{route}: {policy!r}"
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    for missing in ("/no-such-page/", "/api/v1/no-such-endpoint"):
        assert "Content-Security-Policy" in client.get(missing).headers


PRINT_COOKIES = """
from django.conf import settings
from django.test import Client
names = ["SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
         "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE"]
response = Client().get("/login/", secure=True, HTTP_HOST="console.example.com")
cookie = response.cookies["csrftoken"]
print(json.dumps({"settings": {n: getattr(settings, n) for n in names}, "status": response.status_code,
      "csrftoken": {"secure": cookie["secure"], "httponly": cookie["httponly"], "samesite": cookie["samesite"]}}))
"""


def test_cookies_are_secure_httponly_and_samesite_in_production(tmp_path):
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", "import json\n" + PRINT_COOKIES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["settings"] == {
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
    }
    # The cookie a real response sets says the same.
    assert found["status"] == 200
    assert found["csrftoken"] == {"secure": True, "httponly": True, "samesite": "Lax"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('app_name = "unterminated\n', "staging.tfvars:1: Invalid multi-line string"),
        ("this is { not hcl\n", "staging.tfvars:1: Argument definition required"),
        ("", 'main.tf:6: No value for required variable: The root module input variable "greeting" is not set'),
    ],
    ids=["unterminated string", "not HCL", "a required variable missing"],
)
def test_a_malformed_var_file_fails_the_plan_with_a_clear_error(users, workspace, terraform_root, content, expected):
    from infrastructure import services
    from infrastructure.models import Plan

    (terraform_root / "staging.tfvars").write_text(content)
    run = services.request_plan(workspace.environment, users["deployer"])
    run.refresh_from_db()
    assert run.status == "failed", run.error
    assert expected in run.error, run.error
    assert "Traceback" not in run.error
    assert not Plan.objects.filter(run=run).exists()


@pytest.mark.django_db(transaction=True)
def test_a_missing_var_file_fails_the_plan_with_a_clear_error(users, workspace, terraform_root):
    from infrastructure import services

    (terraform_root / "staging.tfvars").unlink()
    run = services.request_plan(workspace.environment, users["deployer"])
    run.refresh_from_db()
    assert run.status == "failed"
    assert "staging.tfvars" in run.error, run.error
