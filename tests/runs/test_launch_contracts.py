"""Launch contracts through the generic doors (POST /api/v1/runs and `manage.py start_run`): a kind
whose guarantees live in its service is refused there, naming the right door; the others take only
what their caller may choose, and build their definition on the server from the run's own
environment. Nothing changes on a refusal."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from infrastructure.jobs import workspace_params
from infrastructure.models import Plan, Workspace
from opsconsole.access.models import Action, ApiToken
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status

pytestmark = pytest.mark.django_db

SERVICE_ONLY = {
    "deployments.deploy": "/api/v1/environments/<name>/deploy",
    "deployments.rollback": "/api/v1/environments/<name>/rollback",
    "terraform.apply": "the Infrastructure page's Apply button",
    "backups.restore": "the Backups page's Restore… form",
    "dr.failover": "the DR page",
    "dr.drill": "the DR page",
    "dr.failback": "the DR page",
}


@pytest.fixture
def queued_only(settings):
    """Runs are created and queued but not executed: these tests are about what is created."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


@pytest.fixture
def definitions(staging, production):
    """Each environment's Terraform workspace, production's backup policy, backup and saved plan."""
    Workspace.objects.create(environment=staging, name="staging", var_file="env/staging.tfvars")
    prod_workspace = Workspace.objects.create(environment=production, name="production", var_file="env/prod.tfvars")
    policy = BackupPolicy.objects.create(
        environment=production,
        kind=Kind.PG_DUMP,
        name="prod dump",
        database_host="db",
        password_source="env:BACKUP_DB_PASSWORD_PRODUCTION",
    )
    backup = Backup.objects.create(
        policy=policy, environment=production, kind=Kind.PG_DUMP, status=BackupStatus.AVAILABLE, region="us-east-1"
    )
    plan_run = Run.objects.create(kind="terraform.plan", environment=production, status=Status.SUCCEEDED)
    plan = Plan.objects.create(run=plan_run, workspace=prod_workspace, has_changes=True)
    return {"policy": policy, "backup": backup, "plan": plan}


def api_as(token_raw: str):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_raw}")

    def post(body: dict):
        return client.post("/api/v1/runs", body, content_type="application/json")

    return post


def assert_refusal_audited(code: str) -> None:
    [event] = AuditEvent.objects.filter(outcome="denied")
    assert (event.action, event.details["code"]) == ("request.refused", code)


@pytest.fixture
def staging_token(users, staging):
    """What an insider holds: every action, but in staging only."""
    _, raw = ApiToken.issue("insider", list(Action.values), [staging], created_by=users["admin"])
    return api_as(raw)


@pytest.mark.parametrize("kind", sorted(SERVICE_ONLY))
def test_a_kind_that_starts_only_through_its_service_is_refused_by_the_generic_api(
    kind, staging_token, definitions, queued_only
):
    params = {"plan_run": definitions["plan"].run_id, "backup": definitions["backup"].pk, "release": 1}
    response = staging_token({"kind": kind, "environment": "staging", "params": params})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "use_service"
    assert "starts only through" in response.json()["error"] and SERVICE_ONLY[kind] in response.json()["error"]
    assert not Run.objects.exclude(pk=definitions["plan"].run_id).exists()
    assert_refusal_audited("use_service")


@pytest.mark.parametrize("kind", ["deployments.deploy", "terraform.apply", "backups.restore", "dr.failover"])
def test_the_command_line_refuses_them_too_even_for_the_trusted_operator(kind, staging, definitions, queued_only):
    with pytest.raises(CommandError, match="starts only through"):
        call_command("start_run", kind, "--environment", "staging", "--param", f"plan_run={definitions['plan'].run_id}")
    assert not Run.objects.exclude(pk=definitions["plan"].run_id).exists()
    refused = AuditEvent.objects.get(action="runs.start_run.refused")
    assert (refused.outcome, refused.details["code"]) == ("denied", "use_service")


@pytest.mark.parametrize(
    "params",
    [
        {"var_file": "/proc/self/environ"},
        {"backend_config": "/work/var/admin-password.txt"},
        {"secret_variables": {"x": "SECRET_KEY"}},
        {"workspace": 2, "directory": "/etc"},
    ],
)
def test_a_terraform_plan_takes_no_definition_from_its_caller(params, staging_token, definitions, queued_only):
    before = Run.objects.count()
    response = staging_token({"kind": "terraform.plan", "environment": "staging", "params": params})
    assert response.status_code == 400, response.content
    assert "takes no parameters" in response.json()["error"]
    assert Run.objects.count() == before
    assert_refusal_audited("params_refused")


def test_a_terraform_plan_through_the_generic_api_uses_the_environment_s_own_workspace(
    staging, staging_token, definitions, queued_only
):
    response = staging_token({"kind": "terraform.plan", "environment": "staging"})
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.params == workspace_params(staging.terraform_workspace)
    assert run.params["var_file"] == "env/staging.tfvars"


def test_a_backup_of_another_environment_s_policy_is_refused(staging_token, definitions, queued_only):
    before = Run.objects.count()
    response = staging_token(
        {"kind": "backups.pg_dump", "environment": "staging", "params": {"policy": definitions["policy"].pk}}
    )
    assert response.status_code == 400, response.content
    assert f"There is no backup policy #{definitions['policy'].pk} in staging" in response.json()["error"]
    assert Run.objects.count() == before
    assert_refusal_audited("params_refused")


def test_verifying_another_environment_s_backup_is_refused(staging_token, definitions, queued_only):
    before = Run.objects.count()
    response = staging_token(
        {"kind": "backups.verify", "environment": "staging", "params": {"backup": definitions["backup"].pk}}
    )
    assert response.status_code == 400, response.content
    assert f"There is no backup #{definitions['backup'].pk} in staging" in response.json()["error"]
    assert Run.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_terraform_job_refuses_a_workspace_of_another_environment(staging, definitions):
    """Defence in depth: a run whose copied workspace is not its environment's does nothing."""
    from opsconsole.runs.runner import execute

    prod_workspace = definitions["plan"].workspace
    run = Run.objects.create(
        kind="terraform.plan", environment=staging, status=Status.QUEUED, params=workspace_params(prod_workspace)
    )
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "is not staging's; nothing was run" in run.error


def test_backup_retention_takes_nothing_from_its_caller(staging_token, queued_only):
    response = staging_token({"kind": "backups.retention", "environment": "staging", "params": {"min_copies": 0}})
    assert response.status_code == 400, response.content
    assert "takes no parameters" in response.json()["error"]
    assert not Run.objects.exists()


def test_a_service_opens_the_door_for_its_own_kind_only(staging, definitions, queued_only):
    from opsconsole.runs.services import Refused, launch, through_service

    with through_service("deployments.deploy"), pytest.raises(Refused) as refused:
        launch("dr.failover", environment=staging, check_permission=False)
    assert refused.value.code == "use_service"
    assert not Run.objects.exclude(pk=definitions["plan"].run_id).exists()
