"""A token acts for its owner: it does what both its scopes and its owner's roles allow now. An
owner who is deactivated, or who loses a role, takes that from every token they own at once."""

import pytest
from django.test import Client

from opsconsole.access.models import ApiToken, Role, RoleBinding
from opsconsole.access.permissions import allowed, visible_environment_ids
from opsconsole.runs.models import Run

pytestmark = pytest.mark.django_db

SELFTEST = {"kind": "maintenance.selftest", "environment": "staging", "params": {"lines": 1, "delay_ms": 0}}


def api(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def bob_token(users):
    """The backup operator's token, asking for more than bob holds (run everywhere, deploy)."""
    token, raw = ApiToken.issue("bob-ci", ["view", "run", "deploy"], created_by=users["backup_operator"])
    return token, raw


def test_a_token_does_only_what_its_owner_may_do_as_well(users, staging, production, bob_token):
    token, raw = bob_token
    assert allowed(token, "run", staging)
    assert not allowed(token, "run", production)  # bob holds no role there
    assert not allowed(token, "deploy", staging)  # nor the deployer's role
    assert visible_environment_ids(token) == {staging.pk}
    assert api(raw).post("/api/v1/runs", SELFTEST, content_type="application/json").status_code == 201
    elsewhere = {**SELFTEST, "environment": "production"}
    assert api(raw).post("/api/v1/runs", elsewhere, content_type="application/json").status_code == 403


def test_an_owner_who_loses_the_role_takes_it_from_the_token(users, staging, bob_token, settings):
    _, raw = bob_token
    RoleBinding.objects.filter(user=users["backup_operator"], role=Role.BACKUP_OPERATOR).delete()
    response = api(raw).post("/api/v1/runs", SELFTEST, content_type="application/json")
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_a_deactivated_owner_s_tokens_stop_working(users, bob_token):
    _, raw = bob_token
    users["backup_operator"].is_active = False
    users["backup_operator"].save()
    response = api(raw).get("/api/v1/runs")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_token_without_an_owner_keeps_its_scopes(staging, production):
    token, _ = ApiToken.issue("made-in-the-admin", ["view"], [staging])
    assert allowed(token, "view", staging) and not allowed(token, "view", production)


def test_deleting_the_owner_revokes_their_tokens(users, bob_token):
    token, raw = bob_token
    users["backup_operator"].delete()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api(raw).get("/api/v1/runs").status_code == 401


def test_somewhere_means_somewhere_both_the_token_and_its_owner_reach(users, staging, production):
    """A token scoped to production, owned by someone who may run things only in staging, may run
    nothing anywhere."""
    token, _ = ApiToken.issue("odd", ["run"], [production], created_by=users["backup_operator"])
    assert not allowed(token, "run")
    token.environments.set([staging])
    token = ApiToken.objects.get(pk=token.pk)
    assert allowed(token, "run")
