"""Events reach the channels that want them from where things happen: runs created awaiting
approval, runs started and ended (through the runs engine's signal), DR requests and approvals,
and email goes through Django's mail backend."""

import json
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, transaction

from backups import postgres
from backups.models import BackupPolicy, Kind
from backups.s3stream import StreamAborted
from backups.services import request_backup
from dr import services as dr_services
from dr.models import Operation
from notifications.delivery import notify, wait_for_inline_deliveries
from notifications.hooks import event_for
from notifications.models import Channel, Delivery, DeliveryStatus
from opsconsole.access.models import Role
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import launch
from tests.conftest import make_user
from tests.dr.conftest import offline_plan
from tests.notifications.conftest import BASE_URL, SLACK_PATH, email_channel, pagerduty_channel, slack_channel

pytestmark = pytest.mark.django_db(transaction=True)

ALL = [
    "approval.requested",
    "deploy.started",
    "deploy.succeeded",
    "deploy.failed",
    "deploy.rolled_back",
    "backup.failed",
    "backup.overdue",
    "restore.verify_failed",
    "drift.detected",
    "dr.requested",
    "dr.approved",
    "dr.completed",
]


def delivered(environment) -> list[tuple[str, str]]:
    assert wait_for_inline_deliveries()
    return list(Delivery.objects.filter(environment=environment).order_by("id").values_list("event", "status"))


@pytest.mark.parametrize(
    "kind, previous, status, result, expected",
    [
        ("deployments.deploy", None, Status.AWAITING_APPROVAL, None, "approval.requested"),
        ("deployments.deploy", None, Status.QUEUED, None, None),
        ("deployments.deploy", Status.QUEUED, Status.RUNNING, None, "deploy.started"),
        ("deployments.deploy", Status.RUNNING, Status.SUCCEEDED, {}, "deploy.succeeded"),
        ("deployments.deploy", Status.RUNNING, Status.FAILED, {}, "deploy.failed"),
        ("deployments.deploy", Status.RUNNING, Status.ERRORED, {}, "deploy.failed"),
        ("deployments.deploy", Status.ROLLING_BACK, Status.ROLLED_BACK, {}, "deploy.rolled_back"),
        ("deployments.deploy", Status.RUNNING, Status.CANCELED, {}, None),
        ("deployments.deploy", Status.AWAITING_APPROVAL, Status.QUEUED, None, None),
        ("deployments.rollback", Status.RUNNING, Status.SUCCEEDED, {}, "deploy.rolled_back"),
        ("backups.pg_dump", Status.RUNNING, Status.FAILED, {}, "backup.failed"),
        ("backups.rds_snapshot", Status.RUNNING, Status.ERRORED, {}, "backup.failed"),
        ("backups.pg_dump", Status.RUNNING, Status.SUCCEEDED, {}, None),
        ("backups.verify", Status.RUNNING, Status.FAILED, {}, "restore.verify_failed"),
        ("terraform.drift", Status.RUNNING, Status.SUCCEEDED, {"has_changes": True}, "drift.detected"),
        ("terraform.drift", Status.RUNNING, Status.SUCCEEDED, {"has_changes": False}, None),
        ("terraform.apply", None, Status.AWAITING_APPROVAL, None, "approval.requested"),
        ("dr.failover", None, Status.AWAITING_APPROVAL, None, "dr.requested"),
        ("dr.failover", Status.AWAITING_APPROVAL, Status.QUEUED, None, "dr.approved"),
        ("dr.failover", Status.AWAITING_APPROVAL, Status.CANCELED, None, None),
        ("dr.drill", Status.RUNNING, Status.SUCCEEDED, {}, "dr.completed"),
        ("dr.failback", Status.RUNNING, Status.FAILED, {}, "dr.completed"),
        ("maintenance.selftest", Status.RUNNING, Status.FAILED, {}, None),
    ],
)
def test_each_run_change_maps_to_its_event(kind, previous, status, result, expected):
    assert event_for(kind, previous, status, result) == expected


def test_a_failed_backup_run_is_reported(staging, users, notify_settings, receiver):
    slack_channel(staging, ALL)
    policy = BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.PG_DUMP,
        name="nightly",
        database_host="127.0.0.1",
        database_name="app",
        database_user="app",
        password_source="env:BACKUP_DB_PASSWORD_NO_SUCH_VARIABLE",
        bucket="backups",
        copy_to_dr=False,
    )
    run = request_backup(policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert delivered(staging) == [("backup.failed", DeliveryStatus.SENT)]
    [request] = receiver.to(SLACK_PATH)
    assert request.body["text"].startswith(f":x: staging: backup nightly failed (run #{run.pk}): The worker has no")
    assert f"<{BASE_URL}/runs/{run.pk}/|Open in the ops console>" in request.body["text"]


def test_a_secret_in_a_failed_run_s_error_reaches_no_channel(staging, users, notify_settings, receiver, monkeypatch):
    """The database password, echoed into a failed backup's error by a client program: masked in
    the run's error, so in what Slack, PagerDuty and email receive and in the stored delivery."""
    secret = "db-pass-0f8e7d6c5b4a"
    monkeypatch.setenv("BACKUP_DB_PASSWORD_NOTIFY", secret)
    for make in (slack_channel, pagerduty_channel, email_channel):
        make(staging, ["backup.failed"])
    policy = BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.PG_DUMP,
        name="nightly",
        database_host="127.0.0.1",
        database_name="app",
        database_user="app",
        password_source="env:BACKUP_DB_PASSWORD_NOTIFY",
        bucket="backups",
        copy_to_dr=False,
    )

    def echoing(conn, *args, **kwargs):
        raise StreamAborted(f"pg_dump exited with status 1: connection string password={conn.password} rejected")

    with mock.patch.object(postgres, "dump_to_s3", echoing):
        run = request_backup(policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED and "password=******** rejected" in run.error
    assert [status for _, status in delivered(staging)] == [DeliveryStatus.SENT] * 3
    sent = [json.dumps(r.body) for r in receiver.requests] + [m.subject + m.body for m in mail.outbox]
    assert len(sent) == 3 and all("password=******** rejected" in text for text in sent)
    assert not any(secret in text for text in sent)
    assert not any(secret in json.dumps([d.facts, d.payload]) for d in Delivery.objects.all())
    assert secret not in run.backup.error


def test_a_secret_in_a_fact_a_kind_adds_or_under_a_secret_looking_key_is_masked(
    staging, users, notify_settings, receiver
):
    from opsconsole.runs import registry
    from opsconsole.runs.context import RunFailed

    def job(ctx):
        ctx.add_secret("registered-s3cr3t")
        raise RunFailed("it did not work")

    registry.REGISTRY["test.leaky_notice"] = registry.RunKind(
        "test.leaky_notice",
        "Leaky notice",
        job,
        locks_environment=False,
        notifies=lambda previous, status, result: "deploy.failed" if status == Status.FAILED else None,
        notify_facts=lambda run: {"release": "connect registered-s3cr3t", "api_token": "tok-visible-otherwise"},
    )
    slack_channel(staging, ["deploy.failed"])
    try:
        run = launch("test.leaky_notice", principal=users["admin"], environment=staging)
    finally:
        del registry.REGISTRY["test.leaky_notice"]
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert delivered(staging) == [("deploy.failed", DeliveryStatus.SENT)]
    [request] = receiver.to(SLACK_PATH)
    body = json.dumps(request.body)
    assert "connect ********" in body and "registered-s3cr3t" not in body
    assert "tok-visible-otherwise" not in body and "*api_token*\\n********" in body
    assert Delivery.objects.get().facts["api_token"] == "********"


def test_a_failed_restore_verification_is_reported(staging, users, notify_settings, receiver):
    slack_channel(staging, ["restore.verify_failed"])
    run = launch("backups.verify", principal=users["backup_operator"], environment=staging)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert delivered(staging) == [("restore.verify_failed", DeliveryStatus.SENT)]
    assert "has no available pg_dump backup to verify" in receiver.to(SLACK_PATH)[0].body["text"]


def test_detected_drift_is_reported(staging, notify_settings, receiver):
    slack_channel(staging, ["drift.detected"])
    run = Run.objects.create(kind="terraform.drift", environment=staging, requested_by_name="beat")
    run.transition(Status.RUNNING)
    run.transition(Status.SUCCEEDED, result={"has_changes": True, "summary": {"add": 1, "change": 2, "destroy": 0}})
    assert delivered(staging) == [("drift.detected", DeliveryStatus.SENT)]
    assert "3 resource change(s) differ from the code" in receiver.to(SLACK_PATH)[0].body["text"]


def test_a_dr_request_its_approval_and_its_end_are_reported(staging, users, notify_settings, receiver):
    slack_channel(staging, ALL)
    plan = offline_plan(staging)
    second = make_user("dave", Role.DR_OPERATOR, staging)
    run = dr_services.request(
        plan, users["dr_operator"], Operation.FAILOVER, reason="us-east-1 is down", typed_name="staging"
    )
    assert delivered(staging) == [("dr.requested", DeliveryStatus.SENT)]
    with mock.patch("opsconsole.runs.dispatch.dispatch"):  # the failover itself is tested in tests/dr
        dr_services.decide(run, second, "approve")
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    run.transition(Status.RUNNING)
    run.transition(Status.SUCCEEDED)
    assert [event for event, _ in delivered(staging)] == ["dr.requested", "dr.approved", "dr.completed"]
    texts = [r.body["text"] for r in receiver.wait_for(SLACK_PATH, 3)]
    assert any("DR failover requested by dora, awaiting a second approval: us-east-1 is down" in t for t in texts)
    assert any(f"DR failover approved; run #{run.pk} is starting" in t for t in texts)
    assert any(f"DR failover succeeded (run #{run.pk})" in t for t in texts)


def test_email_goes_through_the_mail_backend_to_every_recipient(staging, notify_settings):
    email_channel(staging, ["deploy.failed"])
    link = f"{BASE_URL}/runs/9/"
    notify(
        "deploy.failed", staging, run=9, kind_label="Deploy", release="v3", status="failed", error="smoke", link=link
    )
    assert delivered(staging) == [("deploy.failed", DeliveryStatus.SENT)]
    [message] = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == "[opsconsole] staging: Deploy of v3 failed (run #9): smoke"
    assert f"Open in the ops console: {link}" in message.body
    assert "release: v3" in message.body


def test_only_enabled_channels_that_want_the_event_hear_of_it(staging, production, notify_settings, receiver):
    slack_channel(staging, ["deploy.succeeded"])
    Channel.objects.create(
        environment=staging, name="off", kind="slack", events=["deploy.failed"], secret="env:X", enabled=False
    )
    slack_channel(production, ["deploy.failed"])
    assert notify("deploy.failed", staging, run=1) == []
    assert delivered(staging) == []
    assert receiver.requests == []


def test_notify_never_raises_into_its_caller(staging, notify_settings, caplog):
    slack_channel(staging, ["deploy.failed"])
    assert notify("no.such.event", staging, run=1) == []
    with mock.patch("notifications.delivery.Delivery.objects.create", side_effect=RuntimeError("database gone")):
        assert notify("deploy.failed", staging, run=1) == []
    assert "could not be recorded" in caplog.text


def test_a_database_error_inside_notify_leaves_the_callers_transaction_usable(staging, notify_settings):
    slack_channel(staging, ["deploy.failed"])

    def broken_insert(**fields):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    with transaction.atomic():
        with mock.patch("notifications.delivery.Delivery.objects.create", side_effect=broken_insert):
            assert notify("deploy.failed", staging, run=1) == []
        assert Run.objects.count() == 0  # the caller's transaction carries on
        Run.objects.create(kind="maintenance.selftest", environment=staging)
    assert Run.objects.count() == 1
    assert delivered(staging) == []


def test_a_multi_line_error_is_emailed_with_a_one_line_subject(staging, notify_settings):
    email_channel(staging, ["deploy.failed"])
    error = "Traceback (most recent call last):\n  File x\r\nRuntimeError: smoke"
    notify("deploy.failed", staging, run=9, kind_label="Deploy", release="v3", status="failed", error=error)
    assert delivered(staging) == [("deploy.failed", DeliveryStatus.SENT)]
    [message] = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject.startswith("[opsconsole] staging: Deploy of v3 failed (run #9): Traceback (most recent")
    assert "RuntimeError: smoke" in message.body


def test_a_multi_line_dr_reason_is_emailed_with_a_one_line_subject(staging, users, notify_settings):
    email_channel(staging, ALL)
    plan = offline_plan(staging)
    dr_services.request(
        plan, users["dr_operator"], Operation.FAILOVER, reason="us-east-1 is down\nsee INC-42", typed_name="staging"
    )
    assert delivered(staging) == [("dr.requested", DeliveryStatus.SENT)]
    [message] = mail.outbox
    assert message.subject.endswith("awaiting a second approval: us-east-1 is down see INC-42")


def test_a_bad_header_is_not_retried(staging, notify_settings):
    from django.core.mail import BadHeaderError

    email_channel(staging, ["deploy.failed"])
    with mock.patch("django.core.mail.send_mail", side_effect=BadHeaderError("Header values can't contain newlines")):
        notify("deploy.failed", staging, run=9, kind_label="Deploy", release="v3", status="failed", error="x")
        assert delivered(staging) == [("deploy.failed", DeliveryStatus.FAILED)]
    delivery = Delivery.objects.get(environment=staging)
    assert delivery.attempt_count == 1
    assert "BadHeaderError" in delivery.last_error
