"""While an environment is failing over, or its DR region serves, deploys and rollbacks (which
target the primary region's service) are refused, naming the failover; nothing is created."""

import json
from unittest import mock

import pytest
from django.utils import timezone

from deployments.models import Deployment, Release
from deployments.services import request_deploy, request_rollback
from dr.models import DROperation, DRPlan, Operation, Site
from opsconsole.access.models import ApiToken
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import Refused
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    return offline_plan(staging)


@pytest.fixture
def release(db):
    return Release.objects.create(repository="r", tag="v9", digest="sha256:" + "9" * 64, registered_by_name="ci")


@pytest.fixture
def no_execution(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


def failover(plan, status: str) -> DROperation:
    run = Run.objects.create(kind="dr.failover", environment=plan.environment, status=status, params={})
    return DROperation.objects.create(plan=plan, run=run, operation=Operation.FAILOVER, reason="region down")


def test_a_deploy_is_refused_while_the_dr_region_serves(plan, users, release):
    done = failover(plan, Status.SUCCEEDED)
    DROperation.objects.filter(pk=done.pk).update(dns_switched_at=timezone.now())
    DRPlan.objects.filter(pk=plan.pk).update(active_site=Site.DR)
    runs = Run.objects.count()
    with pytest.raises(Refused) as refused:
        request_deploy(plan.environment, release, users["deployer"])
    assert refused.value.code == "failed_over"
    assert str(refused.value) == (
        f"staging is failed over to us-west-2 by DR failover run #{done.run_id}; deploys are refused until a "
        "failback returns it to us-east-1."
    )
    assert Run.objects.count() == runs and not Deployment.objects.exists()


def test_a_deploy_is_refused_while_a_failover_runs(plan, users, release):
    running = failover(plan, Status.RUNNING)
    with pytest.raises(Refused, match=f"failing over to us-west-2 \\(DR failover run #{running.run_id}, running\\)"):
        request_deploy(plan.environment, release, users["deployer"])
    assert not Deployment.objects.exists()


def test_a_rollback_is_refused_too(plan, users, release):
    DRPlan.objects.filter(pk=plan.pk).update(active_site=Site.DR)
    with pytest.raises(Refused) as refused:
        request_rollback(plan.environment, release, users["deployer"])
    assert refused.value.code == "failed_over"


def test_deploys_are_allowed_again_after_the_failback(plan, users, release, no_execution):
    done = failover(plan, Status.SUCCEEDED)
    DROperation.objects.filter(pk=done.pk).update(dns_switched_at=timezone.now())
    assert plan.active_site == Site.PRIMARY
    run = request_deploy(plan.environment, release, users["deployer"])
    assert run.kind == "deployments.deploy" and Deployment.objects.filter(run=run).exists()


def test_the_deploy_api_answers_409_naming_the_failover(plan, users, release, client):
    DRPlan.objects.filter(pk=plan.pk).update(active_site=Site.DR)
    _, raw = ApiToken.issue("ci", ["view", "deploy"], [plan.environment], created_by=users["admin"])
    response = client.post(
        "/api/v1/environments/staging/deploy",
        json.dumps({"release_id": release.pk}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "failed_over" and "failed over to us-west-2" in response.json()["error"]
    assert not Run.objects.exists()


def fail_over(plan) -> DROperation:
    done = failover(plan, Status.SUCCEEDED)
    DROperation.objects.filter(pk=done.pk).update(dns_switched_at=timezone.now())
    DRPlan.objects.filter(pk=plan.pk).update(active_site=Site.DR)
    return done


def test_a_deploy_requested_before_a_failover_cannot_be_approved_after_it(plan, users, release, no_execution):
    from deployments.services import decide
    from opsconsole.audit.models import AuditEvent
    from opsconsole.runs.models import Approval

    plan.environment.required_approvals = 1
    plan.environment.save()
    run = request_deploy(plan.environment, release, users["deployer"])
    assert run.status == Status.AWAITING_APPROVAL
    done = fail_over(plan)
    audited = AuditEvent.objects.count()
    with pytest.raises(Refused) as refused:
        decide(Run.objects.get(pk=run.pk), users["approver"], "approve", "ok")
    assert refused.value.code == "failed_over"
    assert f"failed over to us-west-2 by DR failover run #{done.run_id}" in str(refused.value)
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()
    assert AuditEvent.objects.count() == audited and not run.events.filter(message__startswith="Approved").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["deploy", "rollback"])
def test_a_deploy_queued_before_a_failover_fails_at_its_start_without_touching_the_service(
    plan, users, release, no_execution, kind
):
    from opsconsole.runs.runner import execute

    if kind == "deploy":
        run = request_deploy(plan.environment, release, users["deployer"])
    else:
        first = request_deploy(plan.environment, release, users["deployer"])
        Run.objects.filter(pk=first.pk).update(status=Status.SUCCEEDED)
        newer = Release.objects.create(repository="r", tag="v10", digest="sha256:" + "a" * 64, registered_by_name="ci")
        plan.environment.live_release = newer
        plan.environment.save()
        run = request_rollback(plan.environment, release, users["deployer"])
    assert run.status == Status.QUEUED
    done = fail_over(plan)
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error == (
        f"staging is failed over to us-west-2 by DR failover run #{done.run_id}; deploys are refused until a "
        "failback returns it to us-east-1. Nothing was changed on the service."
    )
