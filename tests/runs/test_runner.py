"""The runner on the inline queue: claim, log, finish, fail, error, cancel, duplicate delivery."""

from unittest import mock

import pytest

from opsconsole.audit.models import AuditEvent
from opsconsole.runs import runner
from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.services import NotPermitted, Refused, cancel, launch

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_selftest_runs_to_success_and_logs_each_line(users):
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 5, "delay_ms": 0})
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED
    messages = list(run.events.order_by("seq").values_list("message", flat=True))
    assert messages[0].startswith("Started on ")
    assert [m for m in messages if m.startswith("self-test line")] == [f"self-test line {i} of 5" for i in range(1, 6)]
    assert messages[-1] == "Succeeded."
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, len(messages) + 1))
    assert run.result == {"lines": 5}
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["maintenance.selftest.requested", "maintenance.selftest.succeeded"]


def test_parameters_are_copied_into_the_run_at_launch(users):
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": "3", "delay_ms": "0"})
    assert Run.objects.get(pk=run.pk).params == {"lines": 3, "delay_ms": 0, "fail": False}


def test_an_expected_failure_ends_failed_not_errored(users):
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 1, "delay_ms": 0, "fail": True})
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error == "The self-test was asked to fail."
    assert AuditEvent.objects.filter(action="maintenance.selftest.failed", outcome="failure").exists()


def test_a_crash_ends_errored_with_the_traceback_as_an_event(users, monkeypatch):
    from opsconsole.runs import registry

    def explode(ctx):
        ctx.log.info("about to fail")
        raise KeyError("missing-thing")

    monkeypatch.setitem(
        registry.REGISTRY,
        "test.explode",
        registry.RunKind("test.explode", "Explode", explode, environment=registry.EnvironmentUse.NONE),
    )
    run = launch("test.explode", principal=users["admin"])
    run.refresh_from_db()
    assert run.status == Status.ERRORED
    assert "KeyError" in run.error
    messages = list(run.events.order_by("seq").values_list("message", flat=True))
    assert "Traceback (most recent call last)" in messages[-2]
    assert messages[-1].startswith("Errored: KeyError")


def test_the_same_message_delivered_twice_executes_once(users, settings):
    settings.OPSCONSOLE_QUEUE = "celery"  # nothing consumes it: we deliver by hand
    from unittest import mock

    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 2, "delay_ms": 0})
    assert runner.execute(run.pk) == Status.SUCCEEDED
    assert runner.execute(run.pk) == "not-claimed"
    run.refresh_from_db()
    assert run.events.filter(message__startswith="Started on").count() == 1
    assert run.events.filter(message__startswith="self-test line").count() == 2


def test_a_run_waits_for_the_environment_lock_and_starts_when_it_is_freed(users, staging, settings):
    from unittest import mock

    EnvironmentLock.acquire(staging, held_by="ada", reason="maintenance")
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        run = launch(
            "maintenance.selftest", principal=users["admin"], environment=staging, params={"lines": 1, "delay_ms": 0}
        )
    assert runner.execute(run.pk) == "waiting"
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert run.events.get().message == "Waiting: the environment is locked by ada (maintenance)."
    EnvironmentLock.objects.filter(environment=staging).delete()
    assert runner.execute(run.pk) == Status.SUCCEEDED
    assert not EnvironmentLock.objects.filter(environment=staging).exists()


def test_cancel_before_start_ends_the_run_at_once(users, settings):
    from unittest import mock

    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 1, "delay_ms": 0})
    cancel(run, users["admin"])
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert runner.execute(run.pk) == "not-claimed"
    with pytest.raises(Refused, match="already ended"):
        cancel(run, users["admin"])


def test_cancel_while_running_stops_at_the_next_checkpoint(users):
    from opsconsole.runs import registry

    def cancel_myself(ctx):
        ctx.log.info("step 1")
        Run.objects.filter(pk=ctx.run.pk).update(cancel_requested=True)
        ctx.check_cancel()
        ctx.log.info("step 2 must not run")

    registry.REGISTRY["test.cancel_myself"] = registry.RunKind(
        "test.cancel_myself", "Cancel myself", cancel_myself, environment=registry.EnvironmentUse.NONE
    )
    try:
        run = launch("test.cancel_myself", principal=users["admin"])
    finally:
        del registry.REGISTRY["test.cancel_myself"]
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert not run.events.filter(message="step 2 must not run").exists()


def test_secrets_registered_by_a_job_never_reach_its_events(users):
    from opsconsole.runs import registry

    def leaky(ctx):
        ctx.add_secret("hunter2-s3cr3t")
        ctx.log.info("connecting with password hunter2-s3cr3t")
        raise RuntimeError("auth failed for hunter2-s3cr3t")

    registry.REGISTRY["test.leaky"] = registry.RunKind(
        "test.leaky", "Leaky", leaky, environment=registry.EnvironmentUse.NONE
    )
    try:
        run = launch("test.leaky", principal=users["admin"])
    finally:
        del registry.REGISTRY["test.leaky"]
    run.refresh_from_db()
    assert run.status == Status.ERRORED
    assert not run.events.filter(message__contains="hunter2").exists()
    assert "hunter2" not in run.error
    assert not AuditEvent.objects.filter(details__icontains="hunter2").exists()


@pytest.mark.parametrize("ending", ["failed", "data"])
def test_a_secret_never_reaches_event_data_or_a_failed_run_s_error(users, ending):
    from opsconsole.runs import registry
    from opsconsole.runs.context import RunFailed

    def leaky(ctx):
        ctx.add_secret("hunter2-s3cr3t")
        ctx.log.info("diagnostic", extra={"data": {"diagnostic": {"detail": ["var = hunter2-s3cr3t"]}}})
        if ending == "failed":
            raise RunFailed("terraform said: hunter2-s3cr3t is wrong")

    registry.REGISTRY["test.leaky_data"] = registry.RunKind(
        "test.leaky_data", "Leaky data", leaky, environment=registry.EnvironmentUse.NONE
    )
    try:
        run = launch("test.leaky_data", principal=users["admin"])
    finally:
        del registry.REGISTRY["test.leaky_data"]
    run.refresh_from_db()
    assert run.status == (Status.FAILED if ending == "failed" else Status.SUCCEEDED)
    assert not [event.data for event in run.events.all() if "hunter2" in str(event.data)]
    assert "hunter2" not in run.error and "********" in str(run.events.get(message="diagnostic").data)


def test_bad_parameters_are_refused_and_change_nothing(users):
    before = (Run.objects.count(), AuditEvent.objects.count())
    with pytest.raises(Refused, match="lines must be between 1 and 50000"):
        launch("maintenance.selftest", principal=users["admin"], params={"lines": 0})
    with pytest.raises(Refused, match="no run kind called"):
        launch("no.such.kind", principal=users["admin"])
    assert (Run.objects.count(), AuditEvent.objects.count()) == before


def test_a_user_without_the_role_cannot_start_a_run(users, staging):
    with pytest.raises(NotPermitted, match="permission"):
        launch("maintenance.selftest", principal=users["viewer"], environment=staging, params={"lines": 1})
    assert not Run.objects.exists()


def test_a_rolled_back_run_whose_first_end_write_failed_still_ends_rolled_back(staging, monkeypatch):
    from unittest import mock

    from django.db import OperationalError

    from opsconsole.runs.context import EventWriter

    run = Run.objects.create(kind="maintenance.selftest", status=Status.RUNNING, environment=staging)
    run.transition(Status.ROLLING_BACK)
    real_audit = runner.audit_outcome
    calls = []

    def audit_failing_once(run, *args, **kwargs):
        calls.append(run.status)
        if len(calls) == 1:  # after transition() changed run.status in memory
            raise OperationalError("server closed the connection unexpectedly")
        return real_audit(run, *args, **kwargs)

    monkeypatch.setattr(runner, "audit_outcome", audit_failing_once)
    with mock.patch.object(runner, "wait_for_database", return_value=True):
        runner._with_database(
            lambda: runner._finish(run, EventWriter(run), Status.SUCCEEDED, "Succeeded.", "info", result={})
        )
    run.refresh_from_db()
    assert calls == [Status.ROLLED_BACK, Status.ROLLED_BACK]
    assert run.status == Status.ROLLED_BACK
    messages = list(run.events.values_list("message", flat=True))
    assert "Rolled back." in messages
    assert not any(m.startswith("Could not record the outcome") for m in messages)


def test_a_slow_selftest_stops_during_a_line_s_wait_when_canceled(users, settings):
    """Ten seconds a line: a cancel is noticed inside the first line's wait, not after it."""
    import threading

    from django.db import connection

    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch"),
    ):
        run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 3, "delay_ms": 10_000})

    def work():
        try:
            runner.execute(run.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive() and not run.events.filter(message="self-test line 1 of 3").exists():
        worker.join(0.05)
    cancel(run, users["admin"])
    worker.join(8)  # well inside the first line's ten seconds
    assert not worker.is_alive()
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert not run.events.filter(message="self-test line 2 of 3").exists()


def test_a_selftest_is_bounded_to_an_hour(users):
    with pytest.raises(Refused, match="a self-test runs an hour at most"):
        launch("maintenance.selftest", principal=users["admin"], params={"lines": 50_000, "delay_ms": 100})
    assert not Run.objects.exists()


def test_a_run_canceled_while_queued_ends_canceled_when_a_worker_picks_it_up(users):
    # The cancel landed between the queue message and the worker: the worker never starts the job.
    run = Run.objects.create(kind="maintenance.selftest", status=Status.QUEUED, params={"lines": 1, "delay_ms": 0})
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    assert runner.execute(run.pk) == "canceled"
    run.refresh_from_db()
    assert (run.status, run.started_at) == (Status.CANCELED, None)
    assert [(event.message, event.level) for event in run.events.all()] == [("Canceled before it started.", "warning")]
    audit = AuditEvent.objects.get(action="maintenance.selftest.canceled")
    assert (audit.target, audit.outcome, audit.details["status"]) == (f"run:{run.pk}", "failure", "canceled")
