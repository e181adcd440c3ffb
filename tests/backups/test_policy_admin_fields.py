"""Where a pg_dump policy connects (host, port, database), as whom (user) and which password it
sends (password source) are set by an administrator (a superuser) only: the Backups page shows
them read-only to everyone else, a post that tries to change them changes nothing and says so, and
only an administrator makes a pg_dump policy. Everything else about a policy stays the backup
operator's."""

import pytest

from backups.models import ADMIN_FIELDS, BackupPolicy, Kind
from opsconsole.audit.models import AuditEvent
from tests.backups.conftest import PASSWORD_VARIABLE
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NOT_ADMINISTRATORS = ["backup_operator", "admin"]  # the console's admin role is not a superuser


def edit_url(policy) -> str:
    return f"/backups/policies/{policy.pk}/edit/"


def as_a_browser_posts(client, url: str, **changes) -> dict:
    """The form's values as a browser submits them: disabled fields are not sent."""
    form = client.get(url).context["form"]
    data = {f.name: f.value() for f in form if not f.field.disabled}
    data.update(changes)
    return {k: ("on" if v is True else v) for k, v in data.items() if v not in (None, False)}


@pytest.mark.parametrize("who", NOT_ADMINISTRATORS)
def test_others_see_where_and_as_whom_it_connects_read_only(users, pg_policy, who):
    page = client_for(users[who]).get(edit_url(pg_policy))
    form = page.context["form"]
    assert [name for name in form.fields if form.fields[name].disabled] == [
        "database_host",
        "database_port",
        "database_name",
        "database_user",
        "password_source",
    ]
    assert page.content.count(b"Set by an administrator.") == 5
    assert b"The database host, port, name, user and password source are set by an administrator" in page.content


@pytest.mark.parametrize("who", NOT_ADMINISTRATORS)
def test_a_post_that_changes_them_changes_nothing_and_says_so(users, pg_policy, who):
    client = client_for(users[who])
    before = AuditEvent.objects.count()
    data = as_a_browser_posts(
        client,
        edit_url(pg_policy),
        schedule="30 1 * * *",
        database_host="db.attacker.example",
        database_port="6543",
        password_source=f"env:{PASSWORD_VARIABLE}",
    )
    response = client.post(edit_url(pg_policy), data)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Database host, Database port, Password source: set by an administrator only; nothing was saved. "
        "Ask an administrator to change them."
    ]
    saved = BackupPolicy.objects.get(pk=pg_policy.pk)
    assert (saved.database_host, saved.database_port, saved.password_source, saved.schedule) == (
        pg_policy.database_host,
        pg_policy.database_port,
        "",
        pg_policy.schedule,
    )
    assert AuditEvent.objects.filter(action__startswith="backups.policy").count() == 0
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("who", NOT_ADMINISTRATORS)
def test_the_administrators_password_cannot_be_sent_as_another_user_or_to_another_database(users, pg_policy, who):
    pg_policy.password_source = f"env:{PASSWORD_VARIABLE}"
    pg_policy.save()
    client = client_for(users[who])
    data = as_a_browser_posts(
        client, edit_url(pg_policy), schedule="30 1 * * *", database_name="payroll", database_user="postgres"
    )
    response = client.post(edit_url(pg_policy), data)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Database name, Database user: set by an administrator only; nothing was saved. "
        "Ask an administrator to change them."
    ]
    saved = BackupPolicy.objects.get(pk=pg_policy.pk)
    assert (saved.database_name, saved.database_user, saved.schedule) == (
        pg_policy.database_name,
        pg_policy.database_user,
        pg_policy.schedule,
    )
    assert not AuditEvent.objects.filter(action__startswith="backups.policy").exists()


def test_an_operator_still_changes_everything_else(users, pg_policy):
    client = client_for(users["backup_operator"])
    response = client.post(edit_url(pg_policy), as_a_browser_posts(client, edit_url(pg_policy), schedule="5 4 * * *"))
    assert response.status_code == 302, response.context["form"].errors
    saved = BackupPolicy.objects.get(pk=pg_policy.pk)
    assert saved.schedule == "5 4 * * *"
    assert (saved.database_host, saved.database_port) == (pg_policy.database_host, pg_policy.database_port)


def test_only_an_administrator_makes_a_pg_dump_policy(users, staging):
    data = {
        "environment": staging.pk,
        "kind": Kind.PG_DUMP,
        "name": "operator's dump",
        "enabled": "on",
        "schedule": "0 3 * * *",
        "retention_days": 7,
        "min_copies": 2,
        "rpo_minutes": 1440,
        "bucket": "opsconsole-backups",
    }
    response = client_for(users["backup_operator"]).post("/backups/policies/new/", data)
    assert response.status_code == 200
    [error] = response.context["form"].errors["kind"]
    assert error.startswith("Only an administrator makes a pg_dump policy")
    assert not BackupPolicy.objects.exists()

    administrator = client_for(users["superuser"])
    data.update(
        database_host="db.internal",
        database_port=5432,
        database_name="app",
        database_user="backup",
        password_source=f"env:{PASSWORD_VARIABLE}",
    )
    response = administrator.post("/backups/policies/new/", data)
    assert response.status_code == 302, response.context["form"].errors
    policy = BackupPolicy.objects.get()
    assert (policy.database_host, policy.database_user, policy.password_source) == (
        "db.internal",
        "backup",
        f"env:{PASSWORD_VARIABLE}",
    )


def test_an_operator_cannot_turn_another_kind_of_policy_into_a_pg_dump(users, rds_policy):
    client = client_for(users["backup_operator"])
    response = client.post(edit_url(rds_policy), as_a_browser_posts(client, edit_url(rds_policy), kind=Kind.PG_DUMP))
    assert response.status_code == 200
    assert "kind" in response.context["form"].errors
    rds_policy.refresh_from_db()
    assert rds_policy.kind == Kind.RDS_SNAPSHOT


def test_an_operator_makes_other_kinds_of_policy(users, staging):
    data = {
        "environment": staging.pk,
        "kind": Kind.RDS_SNAPSHOT,
        "name": "operator's snapshot",
        "enabled": "on",
        "schedule": "0 3 * * *",
        "retention_days": 7,
        "min_copies": 2,
        "rpo_minutes": 1440,
        "source_identifier": "app-db",
    }
    response = client_for(users["backup_operator"]).post("/backups/policies/new/", data)
    assert response.status_code == 302, response.context["form"].errors
    assert BackupPolicy.objects.get().source_identifier == "app-db"


def test_an_administrator_changes_them_and_the_change_is_audited(users, pg_policy):
    client = client_for(users["superuser"])
    data = as_a_browser_posts(
        client,
        edit_url(pg_policy),
        database_host="db.internal",
        database_port="6432",
        password_source=f"env:{PASSWORD_VARIABLE}",
    )
    response = client.post(edit_url(pg_policy), data)
    assert response.status_code == 302, response.context["form"].errors
    saved = BackupPolicy.objects.get(pk=pg_policy.pk)
    assert (saved.database_host, saved.database_port, saved.password_source) == (
        "db.internal",
        6432,
        f"env:{PASSWORD_VARIABLE}",
    )
    event = AuditEvent.objects.get(action="backups.policy.updated")
    assert event.details["database_host"] == "db.internal" and event.details["database_port"] == 6432


def test_in_the_django_admin_only_a_superuser_may_change_them(users, pg_policy):
    from django.contrib.auth.models import Permission

    from tests.conftest import make_user

    staff = make_user("stella", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["change_backuppolicy", "view_backuppolicy"]))
    url = f"/admin/backups/backuppolicy/{pg_policy.pk}/change/"

    staff_form = client_for(staff).get(url).context["adminform"].form
    superuser_form = client_for(users["superuser"]).get(url).context["adminform"].form

    assert not set(ADMIN_FIELDS) & set(staff_form.fields)
    assert set(ADMIN_FIELDS) <= set(superuser_form.fields)
    assert set(ADMIN_FIELDS) == {"database_host", "database_port", "database_name", "database_user", "password_source"}
