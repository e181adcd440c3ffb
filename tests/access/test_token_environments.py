"""Where a token may act is chosen explicitly: every environment (ones added later included) or the
ones ticked. Nothing ticked is refused rather than read as "everywhere", and a token that names no
environment without all_environments reaches nothing."""

import time

import pytest
from django.test import Client

from opsconsole.access.models import ApiToken
from opsconsole.access.permissions import allowed, visible_environment_ids
from opsconsole.audit.models import AuditEvent
from opsconsole.environments.models import Environment, Tier
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def in_sudo_mode(client) -> Client:
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def api(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def listed_runs(raw: str) -> list[int]:
    return [item["id"] for item in api(raw).get("/api/v1/runs").json()["runs"]]


def finished_run(environment) -> Run:
    return Run.objects.create(
        kind="maintenance.selftest", environment=environment, status=Status.SUCCEEDED, requested_by_name="ada"
    )


def test_an_empty_environment_selection_is_refused_and_nothing_is_created(users, staging):
    admin = in_sudo_mode(client_for(users["admin"]))
    before = AuditEvent.objects.count()
    response = admin.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"]})
    page = response.content.decode()
    assert response.status_code == 200
    assert (
        "Choose the environments the token may act in, or tick All environments (including ones added later)." in page
    )
    assert 'value="ci"' in page
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.count() == before


def test_ticking_all_environments_and_some_environments_is_refused(users, staging):
    admin = in_sudo_mode(client_for(users["admin"]))
    form = {"name": "ci", "scopes": ["view"], "all_environments": "on", "environments": [str(staging.pk)]}
    response = admin.post("/account/tokens/new/", form)
    assert "Tick either All environments or some environments, not both." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_an_environment_that_does_not_exist_is_refused(users, staging):
    admin = in_sudo_mode(client_for(users["admin"]))
    response = admin.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"], "environments": ["999999"]})
    assert response.status_code == 200
    assert "Select a valid choice. 999999 is not one of the available choices." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_form_makes_an_all_environments_token_and_the_page_says_so(users, staging):
    admin = in_sudo_mode(client_for(users["admin"]))
    admin.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"], "all_environments": "on"})
    token = ApiToken.objects.get()
    assert token.all_environments and not token.environments.exists()
    assert AuditEvent.objects.get(action="access.token.created").details["all_environments"] is True
    assert "all, including ones added later" in admin.get("/account/tokens/").content.decode()


def test_an_all_environments_token_reaches_an_environment_added_later(users, staging):
    token, raw = ApiToken.issue("ci", ["view", "run"], all_environments=True, created_by=users["admin"])
    later = Environment.objects.create(name="eu-production", tier=Tier.PRODUCTION)
    run = finished_run(later)
    assert allowed(token, "run", later)
    assert visible_environment_ids(token) is None
    assert run.pk in listed_runs(raw)
    assert api(raw).get(f"/api/v1/runs/{run.pk}").status_code == 200


def test_a_token_naming_environments_does_not_reach_one_added_later(users, staging):
    token, raw = ApiToken.issue("ci", ["view", "run"], [staging], created_by=users["admin"])
    assert not token.all_environments
    later = Environment.objects.create(name="eu-production", tier=Tier.PRODUCTION)
    run = finished_run(later)
    assert allowed(token, "run", staging)
    assert not allowed(token, "run", later)
    assert visible_environment_ids(token) == {staging.pk}
    assert run.pk not in listed_runs(raw)
    assert api(raw).get(f"/api/v1/runs/{run.pk}").status_code == 403


@pytest.mark.parametrize("owner", ["admin", None], ids=["owned", "ownerless"])
def test_a_token_naming_no_environment_without_all_environments_reaches_nothing(users, staging, owner):
    token, raw = ApiToken.issue(
        "nowhere", ["view", "run", "admin"], [], all_environments=False, created_by=users.get(owner)
    )
    run = finished_run(staging)
    for action in ("view", "run", "admin"):
        assert not allowed(token, action, staging)
        assert not allowed(token, action)  # not even "somewhere"
    assert visible_environment_ids(token) == set()
    assert api(raw).get("/api/v1/runs").status_code == 403  # may view nowhere
    assert api(raw).get(f"/api/v1/runs/{run.pk}").status_code == 403


def test_issue_reads_no_environments_as_every_one_only_when_not_told_otherwise(staging):
    shorthand, _ = ApiToken.issue("shell", ["view"])
    assert shorthand.all_environments
    with pytest.raises(ValueError, match="either every environment or the ones named"):
        ApiToken.issue("both", ["view"], [staging], all_environments=True)
