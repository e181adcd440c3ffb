"""A drill runs the failover's steps on isolated names, switches only the drill record, measures
RTO/RPO and tears down everything it created, also after a failed step."""

import pytest
from botocore.exceptions import ClientError

from dr import services
from dr.models import DROperation, Operation, Site
from opsconsole.runs.models import Status
from sandbox.bootstrap import DR_REGION, clients
from tests.dr.conftest import record_target

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def drill(plan, operators):
    run = services.request(plan, operators["dora"], Operation.DRILL, reason="quarterly drill", typed_name="staging")
    services.decide(run, operators["dave"], "approve", "scheduled")
    run.refresh_from_db()
    return run


def assert_torn_down(stack, plan, run):
    west = clients(stack.endpoint, DR_REGION)
    with pytest.raises(ClientError):
        west("rds").describe_db_instances(DBInstanceIdentifier=f"{plan.dr_db_instance}-drill-{run.pk}")
    services_ = west("ecs").describe_services(
        cluster=plan.dr_ecs_cluster, services=[f"{plan.dr_ecs_service}-drill-{run.pk}"]
    )["services"]
    assert all(s["status"] != "ACTIVE" for s in services_)
    assert record_target(stack, plan, plan.drill_record_name) is None
    assert DROperation.objects.get(run=run).torn_down


def test_a_drill_measures_rto_and_rpo_without_touching_production(plan, operators, dr_snapshot, stack):
    run = drill(plan, operators)

    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    assert [s["state"] for s in run.steps] == ["done"] * 7
    messages = list(run.events.values_list("message", flat=True))
    assert any(plan.drill_record_name in m and "now points at" in m for m in messages)
    assert record_target(stack, plan) == plan.primary_target
    op = DROperation.objects.get(run=run)
    assert op.rto_seconds is not None and op.rpo_seconds is not None
    ecs = clients(stack.endpoint, DR_REGION)("ecs")
    live = ecs.describe_services(cluster=plan.dr_ecs_cluster, services=[plan.dr_ecs_service])["services"][0]
    assert live["desiredCount"] == 0  # the real DR service was not touched
    plan.refresh_from_db()
    assert plan.active_site == Site.PRIMARY
    assert_torn_down(stack, plan, run)


def test_a_failed_drill_still_tears_down(plan, operators, dr_snapshot, dr_endpoint, stack):
    dr_endpoint.handler.status = 500
    run = drill(plan, operators)

    assert run.status == Status.FAILED
    assert [s["state"] for s in run.steps] == ["done", "done", "done", "failed", "pending", "pending", "done"]
    assert_torn_down(stack, plan, run)


def test_a_drill_does_not_start_the_failover_cooldown(plan, operators, dr_snapshot):
    assert drill(plan, operators).status == Status.SUCCEEDED
    run = services.request(plan, operators["dora"], Operation.FAILOVER, reason="real one", typed_name="staging")
    assert run.status == Status.AWAITING_APPROVAL
