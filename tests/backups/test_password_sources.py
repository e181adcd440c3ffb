"""A pg_dump policy's password source is an allowlist the administrator configures: variables of
the worker named BACKUP_PASSWORD_ENV_PREFIX..., Secrets Manager secrets under
BACKUP_PASSWORD_SECRET_PREFIXES. Anything else (SECRET_KEY, say) is refused when the policy is
saved, through the page and the model alike, and again when a run reads the password, so an
older policy that names it fails its run, clearly, without reading or sending anything."""

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from backups import credentials
from backups.models import BackupPolicy, BackupStatus, Kind
from backups.services import request_backup
from opsconsole.runs.models import RunEvent, Status
from tests.backups.conftest import PASSWORD_VARIABLE
from tests.backups.fakepg import FakePostgres
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RELEASE_FIXTURE = Path(__file__).parents[1] / "packaging" / "fixtures" / "release_cd88b95.json"


@pytest.mark.parametrize(
    "source",
    [
        "",
        "env:BACKUP_DB_PASSWORD_STAGING",
        "secretsmanager:backups/staging-db",
        "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:backups/staging-db-AbCdEf",
    ],
)
def test_sources_within_the_allowlist_are_accepted(source, settings):
    settings.BACKUP_PASSWORD_SECRET_PREFIXES = ["backups/"]
    assert credentials.validate_source(source) == source


@pytest.mark.parametrize(
    "source, says",
    [
        ("env:SECRET_KEY", "must start with BACKUP_DB_PASSWORD_ (BACKUP_PASSWORD_ENV_PREFIX)"),
        ("env:AWS_SECRET_ACCESS_KEY", "must start with BACKUP_DB_PASSWORD_"),
        ("env:BACKUP_DB_PASSWORD_", "must start with BACKUP_DB_PASSWORD_"),  # the prefix alone names nothing
        ("env:backup_db_password_staging", "must start with BACKUP_DB_PASSWORD_"),
        ("secretsmanager:prod/app-api-key", "must start with backups/ (BACKUP_PASSWORD_SECRET_PREFIXES)"),
        ("secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf", "must start with backups/"),
        ("file:/etc/shadow", 'empty, "env:VARIABLE" or "secretsmanager:SECRET-ID"'),
        ("env:", "Name the variable or the secret after the colon."),
    ],
)
def test_sources_outside_the_allowlist_are_refused_naming_what_is_allowed(source, says, settings):
    settings.BACKUP_PASSWORD_SECRET_PREFIXES = ["backups/"]
    with pytest.raises(ValueError) as refused:
        credentials.validate_source(source)
    assert says in str(refused.value)


def test_no_secrets_manager_secret_is_allowed_until_an_administrator_names_a_prefix(settings):
    assert settings.BACKUP_PASSWORD_SECRET_PREFIXES == []  # the default
    with pytest.raises(ValueError, match="allowed once an administrator names their prefixes"):
        credentials.validate_source("secretsmanager:backups/staging-db")
    settings.BACKUP_PASSWORD_ENV_PREFIX = "OPS_PG_PASSWORD_"
    assert credentials.validate_source("env:OPS_PG_PASSWORD_STAGING")
    with pytest.raises(ValueError, match="must start with OPS_PG_PASSWORD_"):
        credentials.validate_source("env:BACKUP_DB_PASSWORD_STAGING")


def test_the_model_refuses_a_source_outside_the_allowlist(pg_policy):
    pg_policy.password_source = "env:SECRET_KEY"
    with pytest.raises(ValidationError) as refused:
        pg_policy.full_clean()
    assert "must start with BACKUP_DB_PASSWORD_" in str(refused.value.message_dict["password_source"])


def form_data(client, policy) -> dict:
    form = client.get(f"/backups/policies/{policy.pk}/edit/").context["form"]
    data = {f.name: f.value() for f in form if not f.field.disabled}
    return {k: v for k, v in data.items() if v not in (None, False)}


def test_the_page_refuses_it_even_to_an_administrator_and_changes_nothing(users, pg_policy):
    client = client_for(users["superuser"])
    data = {**form_data(client, pg_policy), "password_source": "env:SECRET_KEY", "copy_to_dr": "on"}
    response = client.post(f"/backups/policies/{pg_policy.pk}/edit/", data)
    assert response.status_code == 200
    [error] = response.context["form"].errors["password_source"]
    assert "env:SECRET_KEY is not an allowed password source" in error and "BACKUP_DB_PASSWORD_" in error
    pg_policy.refresh_from_db()
    assert pg_policy.password_source == ""
    # The form says what is allowed, with the configured prefix.
    assert b"env:BACKUP_DB_PASSWORD_NAME" in client.get(f"/backups/policies/{pg_policy.pk}/edit/").content


def run_of(policy, users):
    run = request_backup(policy, users["backup_operator"])
    run.refresh_from_db()
    return run


def test_a_stored_source_outside_the_allowlist_fails_the_run_and_nothing_is_read_or_sent(users, pg_policy):
    """A row saved before the allowlist, or changed behind the form's back, is refused again in
    the worker: the variable is never read, no connection is made."""
    secret_key = os.environ["SECRET_KEY"]
    with FakePostgres("cleartext") as hostile:
        BackupPolicy.objects.filter(pk=pg_policy.pk).update(
            database_host="127.0.0.1", database_port=hostile.port, password_source="env:SECRET_KEY"
        )
        run = run_of(pg_policy, users)
    assert run.status == Status.FAILED
    assert run.error == (
        "env:SECRET_KEY is not an allowed password source: a variable's name must start with BACKUP_DB_PASSWORD_ "
        "(BACKUP_PASSWORD_ENV_PREFIX), e.g. env:BACKUP_DB_PASSWORD_STAGING. Nothing was read; an administrator "
        "must change the policy."
    )
    assert hostile.seen == []  # not even a connection
    assert run.backup.status == BackupStatus.FAILED
    for text in [run.error, run.backup.error, *RunEvent.objects.filter(run=run).values_list("message", flat=True)]:
        assert secret_key not in text


def test_a_stored_secrets_manager_source_outside_the_allowlist_is_never_read(users, pg_policy, settings):
    settings.BACKUP_PASSWORD_SECRET_PREFIXES = ["backups/"]
    BackupPolicy.objects.filter(pk=pg_policy.pk).update(password_source="secretsmanager:prod/app-api-key")
    with mock.patch.object(credentials.aws, "client", wraps=credentials.aws.client) as clients:
        run = run_of(pg_policy, users)
    assert run.status == Status.FAILED
    assert "secretsmanager:prod/app-api-key is not an allowed password source" in run.error
    assert "secretsmanager" not in [call.args[0] for call in clients.call_args_list]


def test_a_policy_from_the_previous_release_with_a_now_refused_source_fails_clearly(users, staging):
    """The previous release's fixture (tests/packaging, left as it is) names env:SENTINEL_DB_PASSWORD:
    after the upgrade its runs fail with a message saying what to do, they do not crash."""
    release = json.loads(RELEASE_FIXTURE.read_text())
    [row] = [item["fields"] for item in release["objects"] if item["model"] == "backups.backuppolicy"]
    assert row["password_source"] == "env:SENTINEL_DB_PASSWORD"
    fields = {k: v for k, v in row.items() if k not in ("environment", "periodic_task", "created_at")}
    policy = BackupPolicy.objects.create(**{**fields, "environment": staging, "copy_to_dr": False})
    run = run_of(policy, users)
    assert run.status == Status.FAILED  # failed (expected), not errored (a crash)
    assert run.error.startswith("env:SENTINEL_DB_PASSWORD is not an allowed password source")
    assert "an administrator must change the policy" in run.error


def test_an_allowed_variable_that_is_missing_says_so(users, pg_policy, monkeypatch):
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    BackupPolicy.objects.filter(pk=pg_policy.pk).update(password_source=f"env:{PASSWORD_VARIABLE}")
    run = run_of(pg_policy, users)
    assert run.status == Status.FAILED
    assert run.error == f"The worker has no environment variable {PASSWORD_VARIABLE} (the password source)."


def test_verifying_with_a_refused_source_fails_without_condemning_the_backup(users, pg_policy):
    """Not being allowed to read the password says nothing about whether the backup restores."""
    from backups.models import Backup
    from opsconsole.runs.services import launch

    backup = Backup.objects.create(
        policy=pg_policy,
        environment=pg_policy.environment,
        kind=Kind.PG_DUMP,
        status=BackupStatus.AVAILABLE,
        region="us-east-1",
        bucket=pg_policy.bucket,
        identifier="database/x.dump",
        sha256="0" * 64,
    )
    BackupPolicy.objects.filter(pk=pg_policy.pk).update(password_source="env:SECRET_KEY")
    run = launch("backups.verify", principal=users["backup_operator"], environment=pg_policy.environment)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error.startswith(f"Verification of backup #{backup.pk} could not start: env:SECRET_KEY is not")
    backup.refresh_from_db()
    assert backup.verification == "" and backup.verified_at is None
