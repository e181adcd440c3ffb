"""Restores: a pg_dump object into a new database after its checksum is checked; refusals for
the live database, a mistyped confirmation and a corrupted object; an RDS snapshot into a new
instance; an identical restore while one is active (or at the same moment, or the form sent twice)
makes one."""

from unittest import mock

import psycopg
import pytest

from backups import services
from backups.models import Restore
from backups.services import request_backup, request_restore
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import NotPermitted, Refused
from sandbox.bootstrap import BACKUP_BUCKETS, REGION, clients
from tests.backups.conftest import database_exists, s3, server
from tests.deployments.test_concurrent_requests import at_once

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dump(users, pg_policy):
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    return run.backup


def rows(database: str, table: str) -> int:
    with psycopg.connect(dbname=database, **server()) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_dump_restores_into_a_new_database(users, dump, scratch_names):
    target = "h6_bk_restored"
    scratch_names.append(target)
    run = request_restore(dump, users["backup_operator"], target, target)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    assert rows(target, "customers") == 50 and rows(target, "orders") == 500
    assert Restore.objects.get(run=run).target == target
    assert AuditEvent.objects.filter(action="backups.restore.requested", target=f"run:{run.pk}").exists()
    assert AuditEvent.objects.filter(action="backups.restore.succeeded").exists()


def test_restoring_into_the_live_database_is_refused(users, dump, pg_policy):
    live = pg_policy.database_name
    with pytest.raises(Refused, match="overwrite a live database in place"):
        request_restore(dump, users["backup_operator"], live, live)
    assert not Run.objects.filter(kind="backups.restore").exists()
    assert rows(live, "orders") == 500


def test_a_mistyped_confirmation_changes_nothing(users, dump):
    with pytest.raises(Refused, match="Type the target name"):
        request_restore(dump, users["backup_operator"], "h6_bk_other", "h6_bk_othr")
    assert not Run.objects.filter(kind="backups.restore").exists()


def test_only_a_backup_operator_may_restore(users, dump):
    for role in ("viewer", "deployer"):
        with pytest.raises(NotPermitted):
            request_restore(dump, users[role], "h6_bk_x", "h6_bk_x")


def test_a_corrupted_object_is_caught_by_the_checksum_before_restore(users, dump, scratch_names):
    target = "h6_bk_corrupt"
    scratch_names.append(target)
    original = s3().get_object(Bucket=BACKUP_BUCKETS[REGION], Key=dump.identifier)["Body"].read()
    corrupted = original[:100] + bytes([original[100] ^ 0xFF]) + original[101:]
    s3().put_object(Bucket=BACKUP_BUCKETS[REGION], Key=dump.identifier, Body=corrupted)

    run = request_restore(dump, users["backup_operator"], target, target)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "does not match its backup record" in run.error
    assert not database_exists(target)  # nothing was restored, not even an empty database


def test_the_restore_page_asks_for_reauthentication_and_the_typed_name(users, dump, scratch_names):
    from django.test import Client

    client = Client()
    client.force_login(users["backup_operator"])
    response = client.get(f"/backups/{dump.pk}/restore/")
    assert response.status_code == 302 and response.url.startswith("/sudo/")
    session = client.session
    session["sudo_until"] = 10**12
    session.save()
    assert client.get(f"/backups/{dump.pk}/restore/").status_code == 200
    response = client.post(f"/backups/{dump.pk}/restore/", {"target": "h6_bk_page", "confirm": "nope"})
    assert response.status_code == 200 and b"Type the target name" in response.content
    scratch_names.append("h6_bk_page")
    response = client.post(f"/backups/{dump.pk}/restore/", {"target": "h6_bk_page", "confirm": "h6_bk_page"})
    assert response.status_code == 302 and response.url.startswith("/runs/")
    assert rows("h6_bk_page", "customers") == 50


def test_a_snapshot_restores_into_a_new_instance_and_never_over_the_live_one(users, rds_policy, stack):
    run = request_backup(rds_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    live = rds_policy.source_identifier
    with pytest.raises(Refused, match="restoring over it in place is refused"):
        request_restore(run.backup, users["backup_operator"], live, live)
    restore = request_restore(
        run.backup, users["backup_operator"], "sentinel-staging-restored", "sentinel-staging-restored"
    )
    restore.refresh_from_db()
    assert restore.status == Status.SUCCEEDED, restore.error
    rds = clients(stack.endpoint)("rds")
    assert rds.describe_db_instances(DBInstanceIdentifier="sentinel-staging-restored")["DBInstances"]


def test_an_identical_restore_while_one_is_active_is_refused_naming_it(users, dump, settings):
    settings.OPSCONSOLE_QUEUE = "celery"  # the first restore stays queued while the second arrives
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        first = request_restore(dump, users["backup_operator"], "h6_bk_twice", "h6_bk_twice")
        with pytest.raises(Refused) as refused:
            request_restore(dump, users["backup_operator"], "h6_bk_twice", "h6_bk_twice")
        assert refused.value.code == "duplicate" and refused.value.run == first
        assert f"run #{first.pk} (/runs/{first.pk}/)" in str(refused.value)
        assert Restore.objects.count() == 1
        other = request_restore(dump, users["backup_operator"], "h6_bk_elsewhere", "h6_bk_elsewhere")
    assert Restore.objects.count() == 2 and other.pk != first.pk


def test_identical_restores_at_once_make_one(users, dump, settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        # Held just before launch(): all four pass its check, and the runs table's unique index
        # makes the later inserts wait for the first and refuse.
        outcomes = at_once(
            4,
            lambda i: request_restore(dump, users["backup_operator"], "h6_bk_race", "h6_bk_race").pk,
            hold=(services, "launch"),
        )
    [restore] = Restore.objects.all()
    assert outcomes.count(restore.run_id) == 1
    assert all(isinstance(o, Refused) and o.code == "duplicate" for o in outcomes if o != restore.run_id)
    assert Run.objects.filter(kind="backups.restore").count() == 1


def test_the_restore_form_sent_twice_makes_one_restore(users, dump, settings):
    from django.test import Client

    settings.OPSCONSOLE_QUEUE = "celery"
    client = Client()
    client.force_login(users["backup_operator"])
    session = client.session
    session["sudo_until"] = 10**12
    session.save()
    token = client.get(f"/backups/{dump.pk}/restore/").context["request_token"]
    form = {"target": "h6_bk_form", "confirm": "h6_bk_form", "request_token": token}
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        first, again = (
            client.post(f"/backups/{dump.pk}/restore/", form),
            client.post(f"/backups/{dump.pk}/restore/", form),
        )
    [restore] = Restore.objects.all()
    assert first.url == again.url == f"/runs/{restore.run_id}/"
