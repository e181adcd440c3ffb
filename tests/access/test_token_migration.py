"""The migration that brought token expiry and all_environments (access.0003): a token whose
environment list was empty meant every environment and keeps meaning it; one that named
environments keeps them; every existing token expires API_TOKEN_DEFAULT_DAYS after the upgrade.
Run on a fresh PostgreSQL database, as tests/packaging/test_upgrade.py does."""

from __future__ import annotations

from datetime import timedelta

from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.packaging.test_upgrade import fresh_database  # noqa: F401  (the fixture)

BEFORE = [("access", "0002_environments_move_to_the_core"), ("environments", "0001_initial")]
AFTER = [("access", "0003_token_expiry_and_all_environments")]


def migrate(connection, targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def make_tokens(apps, alias):
    Environment = apps.get_model("environments", "Environment")
    ApiToken = apps.get_model("access", "ApiToken")
    staging = Environment.objects.using(alias).create(name="staging", tier="staging")
    everywhere = ApiToken.objects.using(alias).create(name="everywhere", prefix="opc_a", token_hash="a" * 64)
    named = ApiToken.objects.using(alias).create(name="staging-only", prefix="opc_b", token_hash="b" * 64)
    named.environments.set([staging])
    return everywhere.pk, named.pk, staging.pk


def test_an_empty_list_becomes_all_environments_and_named_ones_stay(fresh_database, settings):  # noqa: F811
    settings.API_TOKEN_DEFAULT_DAYS = 30
    alias = fresh_database.alias
    everywhere, named, staging = make_tokens(migrate(fresh_database, BEFORE), alias)

    upgraded = timezone.now()
    ApiToken = migrate(fresh_database, AFTER).get_model("access", "ApiToken")

    tokens = {token.pk: token for token in ApiToken.objects.using(alias).all()}
    assert tokens[everywhere].all_environments
    assert not tokens[everywhere].environments.exists()
    assert not tokens[named].all_environments
    assert list(tokens[named].environments.values_list("pk", flat=True)) == [staging]
    for token in tokens.values():
        # From the upgrade, not from creation: an old token does not stop CI the minute it lands.
        assert upgraded + timedelta(days=30) <= token.expires_at <= timezone.now() + timedelta(days=30)


def test_going_back_revokes_a_live_token_that_would_reach_everything(fresh_database):  # noqa: F811
    alias = fresh_database.alias
    everywhere, named, _ = make_tokens(migrate(fresh_database, BEFORE), alias)
    ApiToken = migrate(fresh_database, AFTER).get_model("access", "ApiToken")
    nowhere = ApiToken.objects.using(alias).create(name="nowhere", prefix="opc_c", token_hash="c" * 64)

    ApiToken = migrate(fresh_database, BEFORE).get_model("access", "ApiToken")
    revoked = dict(ApiToken.objects.using(alias).values_list("pk", "revoked_at"))
    assert revoked[nowhere.pk] is not None  # reached nothing; an empty list would now mean everything
    assert revoked[everywhere] is None and revoked[named] is None
