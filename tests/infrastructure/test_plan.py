"""A plan run: policy checks, init, plan -out, show -json; the summary and masked changes are
stored and Terraform's JSON log streams into run events."""

import pytest

from infrastructure import services
from infrastructure.models import Plan
from opsconsole.runs.models import Status
from opsconsole.runs.services import NotPermitted

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_plan_stores_its_summary_by_resource_address(users, workspace):
    run = services.request_plan(workspace.environment, users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    plan = Plan.objects.get(run=run)
    assert plan.has_changes
    assert plan.summary["add"] == 2 and plan.summary["change"] == 0 and plan.summary["destroy"] == 0
    assert plan.summary["by_action"] == {"create": ["terraform_data.app", "terraform_data.config"]}
    assert [step["state"] for step in run.steps] == ["done"] * 5


def test_terraform_json_log_streams_into_run_events(users, workspace):
    run = services.request_plan(workspace.environment, users["deployer"])
    messages = list(run.events.values_list("message", flat=True))
    assert "terraform_data.app: Plan to create" in messages
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in messages
    event = run.events.get(message="terraform_data.app: Plan to create")
    assert event.data["type"] == "planned_change"


def test_secret_variables_go_through_the_environment_and_are_masked_everywhere(users, workspace):
    run = services.request_plan(workspace.environment, users["deployer"])
    plan = Plan.objects.get(run=run)
    secret = "sk-live-abcdef0123456789"
    assert secret not in str(plan.changes) and secret not in str(plan.summary)
    assert plan.changes["output_changes"]["api_key"] == {"action": "create", "sensitive": True, "after": "(sensitive)"}
    assert not run.events.filter(message__contains=secret).exists()
    assert not run.events.filter(data__icontains=secret).exists()
    assert secret not in str(run.params)


def test_the_worker_must_have_the_secret_it_is_told_to_pass(users, workspace, monkeypatch):
    monkeypatch.delenv("OPSCONSOLE_TEST_API_KEY")
    run = services.request_plan(workspace.environment, users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error == "The worker has no OPSCONSOLE_TEST_API_KEY environment variable (for var.api_key)."


def test_a_viewer_cannot_plan(users, workspace):
    with pytest.raises(NotPermitted):
        services.request_plan(workspace.environment, users["viewer"])
    assert not Plan.objects.exists()


def test_an_environment_without_a_workspace_is_refused_clearly(users, production):
    with pytest.raises(services.Refused, match="production has no Terraform workspace"):
        services.request_plan(production, users["admin"])
