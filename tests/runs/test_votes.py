"""The rules every approval shares (opsconsole/runs/approvals.py), through vote() itself: each
refusal's code and message, what an accepted vote records, and the approval window's edge."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from opsconsole.access.models import ApiToken, Role, RoleBinding
from opsconsole.audit.models import AuditEvent, Outcome
from opsconsole.runs import approvals
from opsconsole.runs.approvals import approval_deadline, environment_approvals_met, expire_if_due, vote
from opsconsole.runs.dispatch import QueueUnavailable
from opsconsole.runs.models import Approval, Run, Status
from opsconsole.runs.services import NotPermitted, Refused

pytestmark = pytest.mark.django_db

KIND = "maintenance.selftest"


@pytest.fixture
def awaiting(users, staging):
    return Run.objects.create(
        kind=KIND,
        environment=staging,
        status=Status.AWAITING_APPROVAL,
        params={"approval_ttl_minutes": 60},
        requested_by=users["deployer"],
        requested_by_name="dana",
    )


@pytest.fixture(autouse=True)
def one_approval_required(staging):
    staging.required_approvals = 1
    staging.save()


def cast(run, principal, decision="approve", comment="", *, person=None, approved=environment_approvals_met):
    return vote(
        run,
        principal,
        decision,
        comment,
        person=principal if person is None else person,
        action="approve",
        not_permitted="You may not approve this.",
        self_approval="You cannot approve your own request.",
        approved=approved,
    )


def refusal(call) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


def nothing_recorded(run):
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL
    assert not Approval.objects.filter(run=run).exists()
    assert not AuditEvent.objects.filter(action__startswith=KIND).exists()


def test_an_approver_bound_in_another_environment_may_not_vote(users, awaiting, production):
    awaiting.environment = production
    awaiting.save()
    with pytest.raises(NotPermitted, match="^You may not approve this.$"):
        cast(awaiting, users["approver"])  # bound in staging only
    nothing_recorded(awaiting)


def test_a_token_may_not_vote_when_its_owner_may_not(users, awaiting):
    token, _ = ApiToken.issue("ci", ["approve"], created_by=users["deployer"])
    with pytest.raises(NotPermitted):
        cast(awaiting, token, person=users["deployer"])
    nothing_recorded(awaiting)


def test_a_token_without_the_action_may_not_vote_for_an_owner_who_may(users, awaiting):
    token, _ = ApiToken.issue("ci", ["view"], created_by=users["approver"])
    with pytest.raises(NotPermitted):
        cast(awaiting, token, person=users["approver"])
    nothing_recorded(awaiting)


def test_the_refusals_say_why_with_their_codes(users, awaiting):
    approver = users["approver"]
    Run.objects.filter(pk=awaiting.pk).update(requested_by=approver)
    awaiting.refresh_from_db()
    self_vote = refusal(lambda: cast(awaiting, approver))
    assert (self_vote.code, str(self_vote)) == ("self_approval", "You cannot approve your own request.")
    Run.objects.filter(pk=awaiting.pk).update(requested_by=users["deployer"])
    awaiting.refresh_from_db()
    invalid = refusal(lambda: cast(awaiting, approver, "maybe"))
    assert (invalid.code, str(invalid)) == ("invalid", "decision must be approve or reject.")
    silent = refusal(lambda: cast(awaiting, approver, "reject", "   "))
    assert (silent.code, str(silent)) == ("comment_required", "Say why you reject it in the comment.")
    nothing_recorded(awaiting)


def test_a_second_vote_by_the_same_person_is_refused(users, awaiting, staging):
    staging.required_approvals = 2
    staging.save()
    cast(awaiting, users["approver"])
    again = refusal(lambda: cast(awaiting, users["approver"]))
    assert (again.code, str(again)) == ("already_voted", "You have already voted on this run.")
    assert Approval.objects.filter(run=awaiting).count() == 1


def test_an_approval_is_recorded_audited_and_queues_the_run(users, awaiting):
    cast(awaiting, users["approver"], comment="  ship it  ")
    awaiting.refresh_from_db()
    assert awaiting.status == Status.QUEUED
    event = AuditEvent.objects.get(action=f"{KIND}.approved")
    assert (event.actor, event.actor_name, event.target, event.environment) == (
        users["approver"],
        "arthur",
        f"run:{awaiting.pk}",
        "staging",
    )
    assert event.details == {"run": awaiting.pk, "comment": "ship it"}
    messages = list(awaiting.events.order_by("seq").values_list("message", flat=True))
    assert messages == ["Approved by arthur: ship it", "Approved (1 of 1); queued."]


def test_an_approval_without_a_comment_ends_its_event_with_a_full_stop(users, awaiting):
    vote(
        awaiting,
        users["approver"],
        "approve",
        person=users["approver"],
        action="approve",
        not_permitted="",
        self_approval="",
        approved=environment_approvals_met,
    )
    assert awaiting.events.order_by("seq").first().message == "Approved by arthur."


def test_a_vote_through_a_token_names_the_token_and_its_owner(users, awaiting):
    token, _ = ApiToken.issue("ci", ["approve"], created_by=users["approver"])
    cast(awaiting, token, "reject", "not today", person=users["approver"])
    awaiting.refresh_from_db()
    assert awaiting.status == Status.CANCELED
    assert awaiting.error == "Rejected by token:ci (owned by arthur): not today"
    event = AuditEvent.objects.get(action=f"{KIND}.rejected")
    assert (event.actor, event.actor_name) == (users["approver"], "token:ci")
    assert awaiting.events.order_by("seq").first().message == "Rejected by token:ci (owned by arthur): not today"


def test_a_comment_is_kept_to_500_characters(users, awaiting):
    cast(awaiting, users["approver"], comment="x" * 600)
    assert Approval.objects.get(run=awaiting).comment == "x" * 500


def test_an_approval_while_the_queue_is_down_is_refused_and_rolled_back(users, awaiting):
    down = QueueUnavailable("The job queue (rq) is unreachable, so nothing was started: ConnectionError.")
    with mock.patch.object(approvals, "check_queue", side_effect=down):
        refused = refusal(lambda: cast(awaiting, users["approver"]))
    assert (refused.code, str(refused)) == ("queue_unavailable", str(down))
    nothing_recorded(awaiting)


def test_the_queued_run_is_dispatched_once_the_vote_commits(users, awaiting, django_capture_on_commit_callbacks):
    with mock.patch.object(approvals, "dispatch_safely") as dispatch:
        with django_capture_on_commit_callbacks(execute=True):
            cast(awaiting, users["approver"])
    dispatch.assert_called_once_with(awaiting.pk)


def test_a_run_that_moved_while_its_vote_was_counted_refuses_the_vote(users, awaiting):
    def canceled_meanwhile(run):
        Run.objects.filter(pk=run.pk).update(status=Status.CANCELED)
        return "Approved; queued."

    refused = refusal(lambda: cast(awaiting, users["approver"], approved=canceled_meanwhile))
    assert refused.code == "not_awaiting"
    assert str(refused) == f"Run #{awaiting.pk} is not awaiting approval (it is canceled)."


def test_without_a_copied_ttl_the_window_is_four_hours(awaiting):
    awaiting.params = {}
    assert approval_deadline(awaiting) == awaiting.created_at + timedelta(minutes=240)


def test_a_run_expires_at_its_deadline_exactly(users, awaiting):
    deadline = approval_deadline(awaiting)
    with mock.patch("django.utils.timezone.now", return_value=deadline - timedelta(microseconds=1)):
        assert expire_if_due(awaiting) is False
    with mock.patch("django.utils.timezone.now", return_value=deadline):
        assert expire_if_due(awaiting) is True
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.error) == (Status.CANCELED, "Approval expired.")
    event = awaiting.events.get()
    assert (event.message, event.level) == ("Canceled: nobody approved it in time.", "warning")
    audit = AuditEvent.objects.get(action=f"{KIND}.expired")
    assert (audit.target, audit.environment, audit.details, audit.outcome) == (
        f"run:{awaiting.pk}",
        "staging",
        {"run": awaiting.pk},
        Outcome.FAILURE,
    )


def test_a_vote_after_the_deadline_is_refused_and_cancels_the_run(users, awaiting):
    Run.objects.filter(pk=awaiting.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    awaiting.refresh_from_db()
    late = refusal(lambda: cast(awaiting, users["approver"]))
    assert (late.code, str(late)) == (
        "expired",
        f"The approval window for run #{awaiting.pk} has passed; it was canceled.",
    )
    awaiting.refresh_from_db()
    assert awaiting.status == Status.CANCELED
    assert not Approval.objects.filter(run=awaiting).exists()


def test_a_run_that_already_ended_does_not_expire_again(awaiting):
    Run.objects.filter(pk=awaiting.pk).update(created_at=timezone.now() - timedelta(days=1), status=Status.CANCELED)
    awaiting.refresh_from_db()
    assert expire_if_due(awaiting) is False
    assert not AuditEvent.objects.filter(action=f"{KIND}.expired").exists()


def test_a_token_limited_to_another_environment_may_not_vote_for_an_owner_bound_here(users, awaiting, production):
    RoleBinding.objects.create(user=users["approver"], role=Role.APPROVER, environment=production)
    Run.objects.filter(pk=awaiting.pk).update(environment=production)
    awaiting.refresh_from_db()
    token, _ = ApiToken.issue("ci", ["approve"], [users["approver"].role_bindings.first().environment])  # staging
    token.created_by = users["approver"]
    token.save()
    with pytest.raises(NotPermitted):
        cast(awaiting, token, person=users["approver"])
    nothing_recorded(awaiting)


def test_a_run_that_ended_meanwhile_is_not_expired_again(awaiting):
    # Read as awaiting approval, past its window; canceled by someone else before expiry got to it.
    long_ago = timezone.now() - timedelta(days=1)
    Run.objects.filter(pk=awaiting.pk).update(status=Status.CANCELED, created_at=long_ago)
    awaiting.created_at = long_ago
    assert expire_if_due(awaiting) is False
    assert not awaiting.events.exists()
    assert not AuditEvent.objects.filter(action=f"{KIND}.expired").exists()
