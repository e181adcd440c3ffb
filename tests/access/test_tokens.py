"""API tokens: created by admins in sudo mode, shown once, stored as a hash, used as bearer
tokens on the API within their scopes and environments, revoked, audited."""

import hashlib
import re
import time

import pytest
from django.db import connection
from django.test import Client

from opsconsole.access.models import ApiToken, Role
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from tests.conftest import PASSWORD, client_for, make_user

pytestmark = pytest.mark.django_db

TOKENS_PAGE = "http://testserver/account/tokens/"


def shown_token(response) -> str | None:
    match = re.search(r'<pre class="mono token" id="new-token">([^<]+)</pre>', response.content.decode())
    return match.group(1) if match else None


def in_sudo_mode(client) -> Client:
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def api(raw: str | None = None) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}") if raw else Client()


def finished_run(environment) -> Run:
    return Run.objects.create(
        kind="maintenance.selftest", environment=environment, status=Status.SUCCEEDED, requested_by_name="ada"
    )


def every_stored_value() -> str:
    """Every row of every table, as text: what someone with a database dump would see."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_creating_a_token_asks_for_the_password_first_then_creates_it_without_retyping(users, staging):
    admin = client_for(users["admin"])
    form = {"name": "github-actions", "scopes": ["view", "run"], "environments": [str(staging.pk)]}

    response = admin.post("/account/tokens/new/", form, HTTP_REFERER=TOKENS_PAGE)
    assert response.status_code == 302
    assert response.url.startswith("/sudo/?next=http%3A%2F%2Ftestserver%2Faccount%2Ftokens%2F&resume=")
    assert not ApiToken.objects.exists()

    page = admin.get(response.url).content.decode()
    assert '<form method="post" action="/account/tokens/new/">' in page
    resume = re.search(r'name="sudo_resume" value="([^"]+)"', page).group(1)

    response = admin.post("/account/tokens/new/", {"password": PASSWORD, "next": TOKENS_PAGE, "sudo_resume": resume})
    assert response.status_code == 302
    assert response.url == "/account/tokens/"
    token = ApiToken.objects.get()
    assert token.name == "github-actions"
    assert token.scopes == ["run", "view"]
    assert list(token.environments.all()) == [staging]
    assert not token.all_environments
    assert token.created_by == users["admin"]
    assert token.is_active
    assert shown_token(admin.get("/account/tokens/")).startswith("opc_")


def test_a_form_refused_after_the_password_comes_back_as_it_was_typed(users, staging):
    admin = client_for(users["admin"])
    form = {"name": "github-actions", "scopes": ["view", "deploy"]}  # no environment chosen
    response = admin.post("/account/tokens/new/", form, HTTP_REFERER=TOKENS_PAGE)
    resume = re.search(r'name="sudo_resume" value="([^"]+)"', admin.get(response.url).content.decode()).group(1)

    response = admin.post("/account/tokens/new/", {"password": PASSWORD, "next": TOKENS_PAGE, "sudo_resume": resume})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Choose the environments the token may act in, or tick All environments" in page
    assert 'value="github-actions"' in page
    assert '<input type="checkbox" name="scopes" value="view" id="id_scopes_0" checked>' in page
    assert '<input type="checkbox" name="scopes" value="deploy" id="id_scopes_1" checked>' in page
    assert not ApiToken.objects.exists()


def test_the_raw_token_is_shown_once_and_only_its_hash_is_stored(users):
    admin = in_sudo_mode(client_for(users["admin"]))
    admin.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"], "all_environments": "on"})

    first = admin.get("/account/tokens/")
    raw = shown_token(first)
    assert raw is not None and raw.startswith("opc_")
    assert shown_token(admin.get("/account/tokens/")) is None

    token = ApiToken.objects.get()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix)
    stored = every_stored_value()
    assert raw not in stored
    assert raw[len(token.prefix) :] not in stored
    for event in AuditEvent.objects.all():
        assert raw[len(token.prefix) :] not in repr(event.__dict__)


def test_a_bearer_token_reads_runs_and_records_when_it_was_used(users, staging):
    token, raw = ApiToken.issue("ci", ["view"])
    run = finished_run(staging)
    assert token.last_used_at is None
    response = api(raw).get("/api/v1/runs")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["runs"]] == [run.pk]
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    assert api(raw).get(f"/api/v1/runs/{run.pk}").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first_use


@pytest.mark.parametrize("header", ["Bearer opc_not-a-real-token", "Bearer ", "Bearer  ", "bearer nonsense"], ids=repr)
def test_a_made_up_token_is_refused(db, header):
    response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/runs")
    assert response.status_code == 401
    assert "error" in response.json()


def test_a_revoked_token_gets_401(users):
    token, raw = ApiToken.issue("ci", ["view"])
    assert api(raw).get("/api/v1/runs").status_code == 200
    response = client_for(users["admin"]).post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert not token.is_active
    response = api(raw).get("/api/v1/runs")
    assert response.status_code == 401
    assert response.json()["error"] == "The API token is not valid or has been revoked."


def test_a_token_without_the_view_scope_cannot_list_runs(users, staging):
    _, raw = ApiToken.issue("launcher", ["run"])
    run = finished_run(staging)
    assert api(raw).get("/api/v1/runs").status_code == 403
    assert api(raw).get(f"/api/v1/runs/{run.pk}").status_code == 403
    assert api(raw).get(f"/api/v1/runs/{run.pk}/events").status_code == 403


def test_a_token_restricted_to_staging_cannot_see_production_runs(users, staging, production):
    _, raw = ApiToken.issue("ci-staging", ["view"], [staging])
    staging_run, production_run = finished_run(staging), finished_run(production)
    listed = api(raw).get("/api/v1/runs").json()["runs"]
    assert [item["id"] for item in listed] == [staging_run.pk]
    assert api(raw).get("/api/v1/runs?status=succeeded").json()["runs"] == listed
    assert api(raw).get(f"/api/v1/runs/{staging_run.pk}").status_code == 200
    assert api(raw).get(f"/api/v1/runs/{production_run.pk}").status_code == 403
    assert api(raw).get(f"/api/v1/runs/{production_run.pk}/events").status_code == 403


def test_a_token_restricted_to_staging_cannot_start_runs_in_production(users, staging, production):
    _, raw = ApiToken.issue("ci-staging", ["view", "run"], [staging])
    body = {"kind": "maintenance.selftest", "environment": "production", "params": {"lines": 1, "delay_ms": 0}}
    response = api(raw).post("/api/v1/runs", body, content_type="application/json")
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_creating_and_revoking_are_audited(users):
    admin = in_sudo_mode(client_for(users["admin"]))
    admin.post("/account/tokens/new/", {"name": "ci", "scopes": ["view", "deploy"], "all_environments": "on"})
    token = ApiToken.objects.get()
    created = AuditEvent.objects.get(action="access.token.created")
    assert created.actor == users["admin"]
    assert created.target == f"token:{token.pk}"
    assert created.details == {
        "name": "ci",
        "scopes": ["view", "deploy"],
        "all_environments": True,
        "environments": [],
        "lifetime_days": 90,
        "expires_at": token.expires_at.isoformat(),
    }

    admin.post(f"/account/tokens/{token.pk}/revoke/")
    revoked = AuditEvent.objects.get(action="access.token.revoked")
    assert revoked.actor == users["admin"]
    assert revoked.target == f"token:{token.pk}"
    assert revoked.seq > created.seq

    admin.post(f"/account/tokens/{token.pk}/revoke/")  # revoking twice records nothing new
    assert AuditEvent.objects.filter(action="access.token.revoked").count() == 1


def test_a_token_without_a_name_or_scope_is_refused_and_changes_nothing(users):
    admin = in_sudo_mode(client_for(users["admin"]))
    before = AuditEvent.objects.count()
    for form, message in (
        ({"name": "", "scopes": ["view"]}, "Give the token a name of at most 100 characters."),
        ({"name": "ci", "scopes": []}, "Choose at least one action the token may perform."),
        ({"name": "ci", "scopes": ["root"]}, "Select a valid choice. root is not one of the available choices."),
    ):
        response = admin.post("/account/tokens/new/", {**form, "all_environments": "on"}, follow=True)
        assert response.status_code == 200
        assert message in response.content.decode()
        assert shown_token(response) is None
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("name", ["viewer", "deployer", "approver", "nobody"])
def test_non_admins_cannot_see_create_or_revoke_tokens(users, name):
    token, _ = ApiToken.issue("ci", ["view"])
    client = in_sudo_mode(client_for(users[name]))
    assert client.get("/account/tokens/").status_code == 403
    assert client.post("/account/tokens/new/", {"name": "mine", "scopes": ["admin"]}).status_code == 403
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 403
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["ci"]
    token.refresh_from_db()
    assert token.is_active


def test_an_admin_of_staging_alone_cannot_mint_tokens(staging):
    stan = make_user("stan", Role.ADMIN, staging)
    client = in_sudo_mode(client_for(stan))
    assert client.get("/account/tokens/").status_code == 403
    assert client.post("/account/tokens/new/", {"name": "escalate", "scopes": ["deploy"]}).status_code == 403
    assert not ApiToken.objects.exists()
