"""Applying: exactly the saved plan, only after another person approves, never a stale plan."""

import pytest

from infrastructure import services
from infrastructure.models import Plan
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Approval, Status
from opsconsole.runs.services import NotPermitted
from tests.infrastructure.conftest import edit_state, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def plan_of(workspace, user) -> Plan:
    run = services.request_plan(workspace.environment, user)
    return Plan.objects.select_related("run", "workspace").get(run=run)


def test_plan_then_approve_then_apply(users, workspace, terraform_root):
    plan = plan_of(workspace, users["deployer"])
    apply = services.request_apply(plan, users["deployer"])
    assert apply.status == Status.AWAITING_APPROVAL
    assert not state_of(terraform_root).exists()

    services.decide(apply, users["approver"], "approve", "CHG-42")
    apply.refresh_from_db()
    assert apply.status == Status.SUCCEEDED, apply.error
    assert state_of(terraform_root).exists()
    assert "terraform_data.app: Creation complete" in " ".join(apply.events.values_list("message", flat=True))
    workspace.refresh_from_db()
    assert workspace.outputs["greeting"] == {"sensitive": False, "value": "hello"}
    assert workspace.outputs["api_key"] == {"sensitive": True, "value": "(sensitive)"}
    assert not apply.events.filter(message__contains="sk-live-abcdef0123456789").exists()
    assert "sk-live" not in str(apply.result)
    vote = Approval.objects.get(run=apply)
    assert (vote.user, vote.comment) == (users["approver"], "CHG-42")
    assert AuditEvent.objects.filter(action="terraform.apply.approved", actor=users["approver"]).exists()
    assert AuditEvent.objects.filter(action="terraform.apply.succeeded").exists()


def test_the_requester_cannot_approve_their_own_apply(users, workspace, approver_who_deploys):
    plan = plan_of(workspace, users["deployer"])
    apply = services.request_apply(plan, users["deployer"])
    with pytest.raises(services.Refused, match="another"):
        services.decide(apply, users["deployer"], "approve")
    apply.refresh_from_db()
    assert apply.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()


def test_the_author_of_the_plan_cannot_approve_applying_it(users, workspace):
    plan = plan_of(workspace, users["admin"])
    apply = services.request_apply(plan, users["deployer"])
    with pytest.raises(services.Refused, match="You made this plan"):
        services.decide(apply, users["admin"], "approve")
    assert apply.__class__.objects.get(pk=apply.pk).status == Status.AWAITING_APPROVAL


def test_a_viewer_can_neither_request_nor_approve_an_apply(users, workspace):
    plan = plan_of(workspace, users["deployer"])
    with pytest.raises(NotPermitted):
        services.request_apply(plan, users["viewer"])
    apply = services.request_apply(plan, users["deployer"])
    with pytest.raises(NotPermitted):
        services.decide(apply, users["viewer"], "approve")


def test_a_plan_made_before_another_apply_is_stale_and_refused(users, workspace, terraform_root):
    first = plan_of(workspace, users["deployer"])
    second = plan_of(workspace, users["deployer"])
    waiting = services.request_apply(first, users["deployer"])
    services.decide(services.request_apply(second, users["deployer"]), users["approver"], "approve")

    with pytest.raises(services.Refused, match=f"The plan from run #{first.run_id} is stale"):
        services.decide(waiting, users["approver"], "approve")
    with pytest.raises(services.Refused, match="is stale"):
        services.request_apply(first, users["deployer"])


def test_terraform_refuses_a_plan_whose_state_changed_and_the_run_says_so(users, workspace, terraform_root):
    services.decide(
        services.request_apply(plan_of(workspace, users["deployer"]), users["deployer"]), users["approver"], "approve"
    )
    edit_state(terraform_root, "app", "changed by hand")
    plan = plan_of(workspace, users["deployer"])
    assert plan.summary["by_action"] == {"update": ["terraform_data.app"]}
    apply = services.request_apply(plan, users["deployer"])
    edit_state(terraform_root, "app", "changed again")  # the state moves on after the plan

    services.decide(apply, users["approver"], "approve")
    apply.refresh_from_db()
    assert apply.status == Status.FAILED
    assert apply.error == f"The plan from run #{plan.run_id} is stale: the state changed since it was made. Plan again."


def test_a_plan_made_from_other_code_is_refused(users, workspace, terraform_root):
    plan = plan_of(workspace, users["deployer"])
    apply = services.request_apply(plan, users["deployer"])
    (terraform_root / "staging.tfvars").write_text('greeting = "changed"\n')
    services.decide(apply, users["approver"], "approve")
    apply.refresh_from_db()
    assert apply.status == Status.FAILED
    assert "the Terraform code changed" in apply.error
    assert not state_of(terraform_root).exists()


def test_a_plan_without_changes_has_nothing_to_apply(users, workspace):
    services.decide(
        services.request_apply(plan_of(workspace, users["deployer"]), users["deployer"]), users["approver"], "approve"
    )
    plan = plan_of(workspace, users["deployer"])
    assert not plan.has_changes
    with pytest.raises(services.Refused, match="no changes"):
        services.request_apply(plan, users["deployer"])


def test_an_apply_nobody_approves_in_time_expires(users, workspace):
    from datetime import timedelta

    from django.utils import timezone

    from opsconsole.runs.models import Run

    apply = services.request_apply(plan_of(workspace, users["deployer"]), users["deployer"])
    Run.objects.filter(pk=apply.pk).update(created_at=timezone.now() - timedelta(minutes=241))
    assert services.expire_applies() == 1
    apply.refresh_from_db()
    assert apply.status == Status.CANCELED and apply.error == "Approval expired."


def test_an_apply_requested_with_a_token_cannot_be_approved_by_the_tokens_owner(users, workspace, approver_who_deploys):
    from opsconsole.access.models import ApiToken

    token, _ = ApiToken.issue("dana-ci", ["view", "deploy"], [workspace.environment], created_by=users["deployer"])
    plan = plan_of(workspace, users["admin"])
    apply = services.request_apply(plan, token)
    assert apply.requested_by == users["deployer"]
    with pytest.raises(services.Refused, match="another") as refused:
        services.decide(apply, users["deployer"], "approve")
    assert refused.value.code == "self_approval"
    apply.refresh_from_db()
    assert apply.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()
