"""allowed(): what each role, binding, user state and API token may do, and where."""

import pytest
from django.contrib.auth.models import AnonymousUser

from opsconsole.access.models import Action, ApiToken, Role, RoleBinding
from opsconsole.access.permissions import allowed, visible_environment_ids
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

EVERYTHING = set(Action.values)

# users fixture name -> (actions in staging, actions in production)
EXPECTED = {
    "viewer": ({"view"}, {"view"}),
    "deployer": ({"view", "deploy", "run"}, set()),
    "approver": ({"view", "approve"}, set()),
    "backup_operator": ({"view", "backup", "run"}, set()),
    "dr_operator": ({"view", "dr"}, set()),
    "admin": (EVERYTHING, EVERYTHING),
    "nobody": (set(), set()),
    "superuser": (EVERYTHING, EVERYTHING),
}


def actions_of(principal, environment=None) -> set[str]:
    return {action for action in Action.values if allowed(principal, action, environment)}


@pytest.mark.parametrize("name", EXPECTED)
def test_each_role_grants_exactly_its_actions_in_each_environment(users, staging, production, name):
    in_staging, in_production = EXPECTED[name]
    assert actions_of(users[name], staging) == in_staging
    assert actions_of(users[name], production) == in_production


@pytest.mark.parametrize("name", EXPECTED)
def test_without_an_environment_a_user_may_do_what_they_may_do_somewhere(users, production, name):
    in_staging, in_production = EXPECTED[name]
    expected = in_staging | in_production
    if name not in ("admin", "superuser"):
        expected -= {"admin"}
    assert actions_of(users[name]) == expected


def test_a_global_binding_reaches_environments_created_later(users):
    from opsconsole.environments.models import Environment, Tier

    eu = Environment.objects.create(name="production-eu", tier=Tier.PRODUCTION)
    assert actions_of(users["viewer"], eu) == {"view"}
    assert actions_of(users["admin"], eu) == EVERYTHING
    assert actions_of(users["deployer"], eu) == set()


def test_bindings_in_several_places_add_up(staging, production):
    pat = make_user("pat", Role.VIEWER)
    RoleBinding.objects.create(user=pat, role=Role.DEPLOYER, environment=staging)
    RoleBinding.objects.create(user=pat, role=Role.APPROVER, environment=production)
    assert actions_of(pat, staging) == {"view", "deploy", "run"}
    assert actions_of(pat, production) == {"view", "approve"}


def test_an_admin_of_one_environment_administers_only_that_environment(staging, production):
    stan = make_user("stan", Role.ADMIN, staging)
    assert actions_of(stan, staging) == EVERYTHING
    assert actions_of(stan, production) == set()
    # Console administration (API tokens, the audit chain) spans every environment.
    assert not allowed(stan, Action.ADMIN)
    assert allowed(stan, Action.DEPLOY)


def test_a_superuser_needs_no_binding(users, production):
    assert not users["superuser"].role_bindings.exists()
    assert actions_of(users["superuser"]) == EVERYTHING


@pytest.mark.parametrize("name", ["admin", "superuser", "viewer", "deployer"])
def test_an_inactive_user_may_do_nothing(users, staging, production, name):
    user = users[name]
    user.is_active = False
    user.save()
    assert actions_of(user) == set()
    assert actions_of(user, staging) == set()
    assert actions_of(user, production) == set()


def test_nobody_signed_in_may_do_nothing(staging):
    assert actions_of(AnonymousUser(), staging) == set()
    assert actions_of(None, staging) == set()


def test_a_token_may_do_its_scopes_in_every_environment(users, staging, production):
    token, _ = ApiToken.issue("ci", ["view", "run"], created_by=users["admin"])
    assert actions_of(token, staging) == {"view", "run"}
    assert actions_of(token, production) == {"view", "run"}
    assert actions_of(token) == {"view", "run"}


def test_a_token_restricted_to_staging_may_act_only_there(users, staging, production):
    token, _ = ApiToken.issue("ci-staging", ["view", "deploy"], [staging], created_by=users["admin"])
    assert actions_of(token, staging) == {"view", "deploy"}
    assert actions_of(token, production) == set()
    assert actions_of(token) == {"view", "deploy"}


def test_a_token_restricted_to_an_environment_is_no_console_admin(users, staging, production):
    scoped, _ = ApiToken.issue("scoped-admin", ["admin"], [staging])
    unscoped, _ = ApiToken.issue("admin", ["admin"])
    assert allowed(scoped, Action.ADMIN, staging)
    assert not allowed(scoped, Action.ADMIN)
    assert allowed(unscoped, Action.ADMIN)


def test_a_token_without_scopes_may_do_nothing(users, staging):
    token, _ = ApiToken.issue("empty", [])
    assert actions_of(token, staging) == set()
    assert actions_of(token) == set()


def test_a_revoked_token_may_do_nothing(users, staging):
    token, _ = ApiToken.issue("ci", list(EVERYTHING))
    assert actions_of(token, staging) == EVERYTHING
    token.revoke()
    assert actions_of(token, staging) == set()
    assert actions_of(ApiToken.objects.get(pk=token.pk)) == set()


def test_a_token_gains_nothing_from_the_user_who_created_it(users, staging):
    token, _ = ApiToken.issue("ci", ["view"], created_by=users["superuser"])
    assert actions_of(token, staging) == {"view"}


def test_visible_environments_follow_bindings_and_token_restrictions(users, staging, production):
    assert visible_environment_ids(users["viewer"]) is None
    assert visible_environment_ids(users["superuser"]) is None
    assert visible_environment_ids(users["deployer"]) == {staging.pk}
    assert visible_environment_ids(users["nobody"]) == set()
    everywhere, _ = ApiToken.issue("all", ["view"])
    staging_only, _ = ApiToken.issue("staging", ["view"], [staging])
    blind, _ = ApiToken.issue("blind", ["run"])
    assert visible_environment_ids(everywhere) is None
    assert visible_environment_ids(staging_only) == {staging.pk}
    assert visible_environment_ids(blind) == set()
