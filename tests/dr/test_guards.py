"""The guarded button's rules: DR operators only, typed name, reason, two people, a window, a
cooldown; every refusal changes nothing."""

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from dr import services
from dr.models import DROperation, Operation, Site
from opsconsole.access.models import Role
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import NotPermitted
from tests.conftest import make_user
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(staging):
    return offline_plan(staging, approval_window_minutes=30, cooldown_minutes=60)


@pytest.fixture
def operators(users, staging):
    return {"dora": users["dr_operator"], "dave": make_user("dave", Role.DR_OPERATOR, staging)}


@pytest.fixture
def queued():
    with (
        mock.patch("dr.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch,
    ):
        yield dispatch


def ask(plan, user, typed="staging", operation=Operation.FAILOVER, reason="region down"):
    return services.request(plan, user, operation, reason=reason, typed_name=typed)


def test_only_dr_operators_may_request_a_failover(plan, users):
    for role in ("viewer", "deployer", "approver", "backup_operator", "nobody"):
        with pytest.raises(NotPermitted):
            ask(plan, users[role])
    assert not Run.objects.exists()


@pytest.mark.parametrize("typed", ["Staging", "", "stag", "staging ", " staging", "staging\n", "ｓｔａｇｉｎｇ"])
def test_it_refuses_a_mistyped_environment_name(plan, operators, typed):
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dora"], typed=typed)
    assert refused.value.code == "name_mismatch"
    assert not Run.objects.exists() and not AuditEvent.objects.filter(action__startswith="dr.").exists()


def test_it_refuses_a_request_without_a_reason(plan, operators):
    with pytest.raises(services.Refused, match="Say why"):
        ask(plan, operators["dora"], reason="  ")


def test_a_request_waits_for_approval_and_is_audited(plan, operators, queued):
    run = ask(plan, operators["dora"])
    assert run.status == Status.AWAITING_APPROVAL
    queued.assert_not_called()
    event = AuditEvent.objects.get(action="dr.failover.requested")
    assert event.details["params"]["reason"] == "region down"


def test_it_refuses_self_approval(plan, operators, queued):
    run = ask(plan, operators["dora"])
    with pytest.raises(services.Refused) as refused:
        services.decide(run, operators["dora"], "approve")
    assert refused.value.code == "self_approval"
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL


def test_it_refuses_approval_by_a_role_without_dr(plan, operators, users, queued):
    run = ask(plan, operators["dora"])
    for role in ("approver", "deployer", "viewer"):
        with pytest.raises(NotPermitted):
            services.decide(run, users[role], "approve")
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL


def test_an_admin_may_approve_and_the_rto_clock_starts(plan, operators, users, queued):
    run = ask(plan, operators["dora"])
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(run, users["admin"], "approve", "go")
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert DROperation.objects.get(run=run).approved_at is not None
    event = AuditEvent.objects.get(action="dr.failover.approved")
    assert event.details["comment"] == "go" and event.actor_name == "ada"


def test_it_refuses_an_expired_approval(plan, operators, queued):
    run = ask(plan, operators["dora"])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    run.refresh_from_db()
    with pytest.raises(services.Refused) as refused:
        services.decide(run, operators["dave"], "approve")
    assert refused.value.code == "expired"
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert DROperation.objects.get(run=run).approved_at is None


def test_a_rejection_needs_a_comment_and_cancels(plan, operators, queued):
    run = ask(plan, operators["dora"])
    with pytest.raises(services.Refused, match="Say why"):
        services.decide(run, operators["dave"], "reject")
    services.decide(run, operators["dave"], "reject", "not a real outage")
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert AuditEvent.objects.filter(action="dr.failover.rejected").exists()


def test_a_second_request_is_refused_while_one_is_pending(plan, operators, queued):
    first = ask(plan, operators["dora"])
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dave"])
    assert refused.value.code == "duplicate" and refused.value.run == first


def test_the_cooldown_blocks_a_second_failover(plan, operators, queued):
    run = ask(plan, operators["dora"])
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(run, operators["dave"], "approve")
    Run.objects.filter(pk=run.pk).update(status=Status.FAILED)
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dave"])
    assert refused.value.code == "cooldown"
    DROperation.objects.filter(run=run).update(approved_at=timezone.now() - timedelta(minutes=61))
    assert ask(plan, operators["dave"]).status == Status.AWAITING_APPROVAL


def test_a_failed_over_environment_refuses_another_failover_and_allows_failback(plan, operators, queued):
    plan.active_site = Site.DR
    plan.save()
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dora"])
    assert refused.value.code == "already_failed_over"
    assert ask(plan, operators["dora"], operation=Operation.FAILBACK).kind == "dr.failback"


def test_a_failback_is_refused_when_the_primary_serves(plan, operators):
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dora"], operation=Operation.FAILBACK)
    assert refused.value.code == "not_failed_over"


def test_a_drill_needs_a_drill_record(plan, operators):
    with pytest.raises(services.Refused) as refused:
        ask(plan, operators["dora"], operation=Operation.DRILL)
    assert refused.value.code == "no_drill_record"
    assert not Run.objects.exists()


def test_a_run_that_was_never_approved_cannot_be_resumed(plan, operators, queued):
    run = ask(plan, operators["dora"])
    services.decide(run, operators["dave"], "reject", "false alarm")
    with pytest.raises(services.Refused) as refused:
        services.resume(DROperation.objects.get(run=run), operators["dora"])
    assert refused.value.code == "not_approved"


def test_only_dr_operators_may_resume(plan, operators, users, queued):
    run = ask(plan, operators["dora"])
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(run, operators["dave"], "approve")
    Run.objects.filter(pk=run.pk).update(status=Status.FAILED)
    with pytest.raises(NotPermitted):
        services.resume(DROperation.objects.get(run=run), users["deployer"])
    assert Run.objects.count() == 1


def test_the_readiness_and_expiry_schedules_are_registered(db):
    from django_celery_beat.models import PeriodicTask

    from opsconsole.runs.schedules import ensure_core_schedules

    ensure_core_schedules()
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert tasks["dr: readiness checks"] == "dr.tasks.check_readiness"
    assert tasks["dr: expire unapproved requests"] == "dr.tasks.expire_approvals"


def test_the_expiry_task_cancels_requests_past_their_window(plan, operators, queued):
    from dr.tasks import expire_approvals

    run = ask(plan, operators["dora"])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    assert expire_approvals() == 1
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert AuditEvent.objects.filter(action="dr.failover.expired").exists()


def test_the_generic_run_api_cannot_start_a_dr_run(plan, users, settings):
    from opsconsole.access.models import ApiToken

    _, secret = ApiToken.issue("dr-bot", ["view", "dr"], created_by=users["admin"])
    for kind in ("dr.failover", "dr.drill", "dr.failback"):
        response = Client().post(
            "/api/v1/runs",
            {"kind": kind, "environment": "staging", "params": {"plan": plan.pk}},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "use_service"
        assert "starts only through the DR page" in response.json()["error"]
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_dr_run_without_an_approved_operation_does_nothing(plan, operators):
    from opsconsole.runs import runner

    run = Run.objects.create(kind="dr.failover", environment=plan.environment, params=plan.definition())
    runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == Status.FAILED and "not requested and approved" in run.error


def test_a_canceled_run_resumes_alone_only_while_its_approval_is_fresh(plan, operators, queued):
    """Canceled, then resumed by its requester alone much later: the old approval no longer
    speaks for a second person. Within the approval window it still does; a failed run (an
    incident in progress, not a decision to stop) resumes on its approval whatever its age."""
    run = ask(plan, operators["dora"])
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(run, operators["dave"], "approve")
    operation = DROperation.objects.get(run=run)
    Run.objects.filter(pk=run.pk).update(status=Status.CANCELED)
    DROperation.objects.filter(pk=operation.pk).update(approved_at=timezone.now() - timedelta(minutes=31))
    operation.refresh_from_db()
    with pytest.raises(services.Refused) as refused:
        services.resume(operation, operators["dora"])
    assert refused.value.code == "approval_expired"
    assert "request it again" in str(refused.value)
    assert Run.objects.count() == 1

    DROperation.objects.filter(pk=operation.pk).update(approved_at=timezone.now() - timedelta(minutes=5))
    operation.refresh_from_db()
    assert operation.can_resume()

    Run.objects.filter(pk=run.pk).update(status=Status.FAILED)
    DROperation.objects.filter(pk=operation.pk).update(approved_at=timezone.now() - timedelta(hours=5))
    operation.refresh_from_db()
    assert operation.can_resume()


def test_a_resume_is_held_to_the_cooldown_of_another_failover(plan, operators, queued):
    """A canceled failover kept its approval fresh (a long approval window); meanwhile another
    failover was approved. Resuming the first inside that one's cooldown is refused like a request."""
    plan.approval_window_minutes = 240
    plan.save()
    first = ask(plan, operators["dora"])
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(first, operators["dave"], "approve")
    Run.objects.filter(pk=first.pk).update(status=Status.CANCELED)
    DROperation.objects.filter(run=first).update(approved_at=timezone.now() - timedelta(minutes=90))
    second = ask(plan, operators["dave"], reason="again")  # the first's cooldown is over
    with mock.patch("opsconsole.runs.approvals.dispatch_safely"):
        services.decide(second, operators["dora"], "approve")
    Run.objects.filter(pk=second.pk).update(status=Status.FAILED)
    runs = Run.objects.count()

    with pytest.raises(services.Refused) as refused:
        services.resume(DROperation.objects.get(run=first), operators["dora"])

    assert refused.value.code == "cooldown" and Run.objects.count() == runs
    # The attempt that is itself in its cooldown (a failed failover) still resumes on its own approval.
    assert services.resume(DROperation.objects.get(run=second), operators["dave"]).pk
