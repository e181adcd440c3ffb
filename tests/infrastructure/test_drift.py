"""Drift: a scheduled plan with -detailed-exitcode marks the environment and lists what changed."""

import pytest

from infrastructure import services
from infrastructure.models import Drift, Plan, Purpose
from infrastructure.tasks import check_drift
from opsconsole.runs.models import Run, Status
from tests.infrastructure.conftest import edit_state

pytestmark = pytest.mark.django_db(transaction=True)


def apply_everything(workspace, users):
    plan = Plan.objects.get(run=services.request_plan(workspace.environment, users["deployer"]))
    services.decide(services.request_apply(plan, users["deployer"]), users["approver"], "approve")


def test_no_drift_after_an_apply(users, workspace):
    apply_everything(workspace, users)
    assert check_drift() == 1
    workspace.refresh_from_db()
    assert workspace.drift_status == Drift.IN_SYNC and workspace.drifted_resources == []
    run = Run.objects.get(kind="terraform.drift")
    assert run.status == Status.SUCCEEDED and run.requested_by_name == "system"


def test_an_out_of_band_change_is_detected_as_drift(users, workspace, terraform_root):
    apply_everything(workspace, users)
    edit_state(terraform_root, "app", "edited in the console by hand")

    check_drift()
    workspace.refresh_from_db()
    assert workspace.drift_status == Drift.DRIFTED
    assert workspace.drifted_resources == [{"address": "terraform_data.app", "action": "update"}]
    drift_plan = Plan.objects.get(purpose=Purpose.DRIFT)
    assert drift_plan.plan_file == ""  # a drift check's plan is never applied
    with pytest.raises(services.Refused, match="drift check"):
        services.request_apply(drift_plan, users["deployer"])


def test_a_drift_check_that_fails_marks_the_environment(users, workspace, terraform_root):
    (terraform_root / "main.tf").write_text('resource "terraform_data" "x" {\n  input = var.undeclared\n}\n')
    check_drift()
    workspace.refresh_from_db()
    assert workspace.drift_status == Drift.ERROR
    assert "undeclared" in workspace.drifted_resources[0]["error"]


def test_the_schedule_skips_a_workspace_with_a_terraform_run_in_progress(users, workspace):
    Run.objects.create(kind="terraform.plan", environment=workspace.environment, status=Status.AWAITING_APPROVAL)
    assert check_drift() == 0
