"""In the Django admin a staff user who is not a superuser sees a policy's ADMIN_FIELDS read-only,
so they are not on the form; the model's own checks still find errors in them (a new pg_dump
policy without a host, a policy saved before the allowlist whose password source is outside it).
Such an error is shown on the form, naming the field, and nothing is saved: it is not a 500."""

import pytest
from django.contrib.auth.models import Permission

from backups.models import BackupPolicy, Kind
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/backups/backuppolicy/add/"


@pytest.fixture
def staff():
    """Staff with every permission on policies, but not a superuser."""
    user = make_user("stella", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="backups", codename__endswith="_backuppolicy")
    )
    return user


def posted(**fields) -> dict:
    """What the admin's form posts for a policy (the fields a staff user has on it)."""
    data = {
        "kind": Kind.PG_DUMP,
        "name": "nightly dump",
        "enabled": "on",
        "schedule": "0 3 * * *",
        "retention_days": "7",
        "min_copies": "2",
        "rpo_minutes": "1440",
        "dr_region": "",
        "source_identifier": "",
        "bucket": "opsconsole-backups",
        "prefix": "database/",
        "dr_bucket": "",
        "created_at_0": "2026-01-05",
        "created_at_1": "03:00:00",
    }
    data.update(fields)
    return data


def test_adding_a_pg_dump_policy_without_the_administrators_fields_says_so(staff, staging):
    response = client_for(staff).post(ADD_URL, posted(environment=staging.pk))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "database_host" not in form.fields
    assert form.non_field_errors() == [
        "Database host (set by an administrator): Needed for pg_dump.",
        "Database name (set by an administrator): Needed for pg_dump.",
        "Database user (set by an administrator): Needed for pg_dump.",
    ]
    assert b"Database host (set by an administrator): Needed for pg_dump." in response.content
    assert not BackupPolicy.objects.exists()


def test_changing_a_legacy_policy_with_a_disallowed_source_says_so_and_changes_nothing(staff, staging):
    policy = BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.PG_DUMP,
        name="nightly dump",
        database_host="db.internal",
        database_name="app",
        database_user="backup",
        bucket="opsconsole-backups",
        copy_to_dr=False,
    )
    # Saved before the allowlist existed (the model refuses it now).
    BackupPolicy.objects.filter(pk=policy.pk).update(password_source="env:SECRET_KEY")

    url = f"/admin/backups/backuppolicy/{policy.pk}/change/"
    response = client_for(staff).post(url, posted(environment=staging.pk, schedule="30 1 * * *"))
    assert response.status_code == 200
    [error] = response.context["adminform"].form.non_field_errors()
    assert error.startswith(
        "Password source (set by an administrator): env:SECRET_KEY is not an allowed password source"
    )
    saved = BackupPolicy.objects.get(pk=policy.pk)
    assert (saved.schedule, saved.password_source) == ("0 3 * * *", "env:SECRET_KEY")


def test_a_superuser_still_sees_the_error_on_the_field(users, staging):
    response = client_for(users["superuser"]).post(ADD_URL, posted(environment=staging.pk, database_port="5432"))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["database_host"] == ["Needed for pg_dump."]
    assert form.non_field_errors() == []
    assert not BackupPolicy.objects.exists()
