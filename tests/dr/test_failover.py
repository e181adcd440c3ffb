"""A full failover against the sandbox AWS: requested, approved by a second DR operator, every
step a checklist item, DNS switched, RTO and RPO measured; a failing step and its resume."""

import pytest

from dr import services
from dr.models import DROperation, Operation, Site
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from sandbox.bootstrap import DR_REGION, clients
from tests.dr.conftest import record_target

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def request_and_approve(plan, operators, operation=Operation.FAILOVER) -> Run:
    run = services.request(
        plan, operators["dora"], operation, reason="us-east-1 is down", typed_name=plan.environment.name
    )
    assert run.status == Status.AWAITING_APPROVAL
    services.decide(run, operators["dave"], "approve", "confirmed with the incident lead")
    run.refresh_from_db()
    return run


def test_a_failover_restores_brings_up_switches_dns_and_measures(plan, operators, dr_snapshot, stack):
    run = request_and_approve(plan, operators)

    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    assert [s["state"] for s in run.steps] == ["done"] * 6
    west = clients(stack.endpoint, DR_REGION)
    instance = west("rds").describe_db_instances(DBInstanceIdentifier=plan.dr_db_instance)["DBInstances"][0]
    assert instance["DBInstanceStatus"] == "available"
    service = west("ecs").describe_services(cluster=plan.dr_ecs_cluster, services=[plan.dr_ecs_service])["services"][0]
    assert service["desiredCount"] == 2
    definition = west("ecs").describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert definition["containerDefinitions"][0]["image"] == plan.environment.live_release.image
    assert record_target(stack, plan) == plan.dr_target

    op = DROperation.objects.get(run=run)
    assert op.snapshot_identifier == dr_snapshot
    assert op.approved_at <= op.dns_switched_at
    assert op.rto_seconds == pytest.approx((op.dns_switched_at - op.approved_at).total_seconds())
    assert op.rpo_seconds == pytest.approx((op.dns_switched_at - op.snapshot_at).total_seconds())
    assert run.result["rto_seconds"] == op.rto_seconds
    plan.refresh_from_db()
    assert plan.active_site == Site.DR
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"dr.failover.requested", "dr.failover.approved", "dr.failover.succeeded"} <= actions


def test_a_failing_step_stops_the_run_and_resuming_completes_it(plan, operators, dr_snapshot, dr_endpoint, stack):
    dr_endpoint.handler.status = 503
    run = request_and_approve(plan, operators)

    assert run.status == Status.FAILED
    assert [s["state"] for s in run.steps] == ["done", "done", "done", "failed", "pending", "pending"]
    assert "Smoke-test the DR endpoint failed" in run.error and "Not done:" in run.error
    assert record_target(stack, plan) == plan.primary_target  # production DNS untouched

    dr_endpoint.handler.status = 200
    resumed = services.resume(DROperation.objects.get(run=run), operators["dora"])
    resumed.refresh_from_db()
    assert resumed.status == Status.SUCCEEDED, resumed.error
    assert [s["state"] for s in resumed.steps] == ["skipped", "skipped", "skipped", "done", "done", "done"]
    assert record_target(stack, plan) == plan.dr_target
    first, second = DROperation.objects.get(run=run), DROperation.objects.get(run=resumed)
    assert second.resumes == first and second.approved_at == first.approved_at  # the RTO clock kept running
    assert second.rto_seconds == pytest.approx((second.dns_switched_at - first.approved_at).total_seconds())


def test_a_failback_switches_dns_back_and_scales_the_dr_service_down(plan, operators, dr_snapshot, stack):
    assert request_and_approve(plan, operators).status == Status.SUCCEEDED
    plan.refresh_from_db()
    plan.cooldown_minutes = 0
    plan.save()

    run = request_and_approve(plan, operators, Operation.FAILBACK)

    assert run.status == Status.SUCCEEDED, run.error
    assert record_target(stack, plan) == plan.primary_target
    ecs = clients(stack.endpoint, DR_REGION)("ecs")
    assert (
        ecs.describe_services(cluster=plan.dr_ecs_cluster, services=[plan.dr_ecs_service])["services"][0][
            "desiredCount"
        ]
        == 0
    )
    plan.refresh_from_db()
    assert plan.active_site == Site.PRIMARY
    assert DROperation.objects.get(run=run).rto_seconds is not None
