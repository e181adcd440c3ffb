"""Protected environments: a deploy waits for approval by someone else, within a time window."""

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from deployments.models import Release
from deployments.services import decide, expire_approvals, request_deploy
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Approval, Run, Status
from opsconsole.runs.services import NotPermitted, Refused
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def protected(production, users):
    from opsconsole.access.models import RoleBinding

    production.ecs_cluster, production.ecs_service, production.container_name = "c", "s", "api"
    production.required_approvals, production.approval_ttl_minutes = 1, 60
    production.save()
    for name in ("deployer", "approver"):
        RoleBinding.objects.create(
            user=users[name], role=users[name].role_bindings.first().role, environment=production
        )
    return production


@pytest.fixture
def release(db):
    return Release.objects.create(repository="r", tag="v2", digest="sha256:" + "c" * 64, registered_by_name="ci")


@pytest.fixture
def dispatched(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch,
    ):
        yield dispatch


def test_a_deploy_to_a_protected_environment_waits_for_approval(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    assert run.status == Status.AWAITING_APPROVAL
    dispatched.assert_not_called()


def test_a_second_person_approves_and_the_run_is_queued(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    decide(run, users["approver"], "approve", "LGTM, change CHG-7")
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    approval = Approval.objects.get(run=run)
    assert (approval.user, approval.decision, approval.comment) == (users["approver"], "approve", "LGTM, change CHG-7")
    audited = AuditEvent.objects.get(action="deployments.deploy.approved")
    assert audited.details["comment"] == "LGTM, change CHG-7" and audited.actor == users["approver"]


def test_the_requester_can_never_approve_their_own_request(users, protected, release, dispatched):
    from opsconsole.access.models import Role, RoleBinding

    RoleBinding.objects.create(user=users["deployer"], role=Role.APPROVER, environment=protected)
    run = request_deploy(protected, release, users["deployer"])
    with pytest.raises(Refused, match="cannot approve your own request"):
        decide(run, users["deployer"], "approve")
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()


def test_someone_without_the_approver_role_cannot_approve(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    with pytest.raises(NotPermitted):
        decide(run, users["viewer"], "approve")
    assert Run.objects.get(pk=run.pk).status == Status.AWAITING_APPROVAL


def test_a_rejection_needs_a_reason_and_cancels_the_run(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    with pytest.raises(Refused, match="Say why"):
        decide(run, users["approver"], "reject", "  ")
    decide(run, users["approver"], "reject", "not during the incident")
    run.refresh_from_db()
    assert run.status == Status.CANCELED
    assert run.error == "Rejected by arthur: not during the incident"


def test_approvals_expire_after_the_configured_time(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    assert expire_approvals() == 1
    run.refresh_from_db()
    assert run.status == Status.CANCELED and run.error == "Approval expired."
    with pytest.raises(Refused, match="not awaiting approval"):
        decide(run, users["approver"], "approve")


def test_two_approvals_are_needed_when_configured(users, protected, release, dispatched):
    protected.required_approvals = 2
    protected.save()
    second = make_user("beth")
    from opsconsole.access.models import Role, RoleBinding

    RoleBinding.objects.create(user=second, role=Role.APPROVER, environment=protected)
    run = request_deploy(protected, release, users["deployer"])
    decide(run, users["approver"], "approve")
    assert Run.objects.get(pk=run.pk).status == Status.AWAITING_APPROVAL
    with pytest.raises(Refused, match="already voted"):
        decide(run, users["approver"], "approve")
    decide(Run.objects.get(pk=run.pk), second, "approve")
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_the_environment_page_lists_pending_requests_with_approve_buttons(users, protected, release, dispatched):
    run = request_deploy(protected, release, users["deployer"])
    page = client_for(users["approver"]).get("/environments/production/").content.decode()
    assert f'href="/runs/{run.pk}/"' in page
    assert f'action="/environments/production/runs/{run.pk}/decide/"' in page
    response = client_for(users["approver"]).post(
        f"/environments/production/runs/{run.pk}/decide/", {"decision": "approve", "comment": "ok"}, follow=True
    )
    assert response.status_code == 200
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_a_deploy_requested_with_a_token_cannot_be_approved_by_the_tokens_owner(users, protected, release, dispatched):
    """A token is not a signed-in user, but its owner is the requester: the two-person rule holds."""
    import json

    from opsconsole.access.models import ApiToken, Role, RoleBinding

    RoleBinding.objects.create(user=users["deployer"], role=Role.APPROVER, environment=protected)
    _, raw = ApiToken.issue("dana-ci", ["view", "deploy"], [protected], created_by=users["deployer"])
    response = Client().post(
        "/api/v1/environments/production/deploy",
        json.dumps({"release_id": release.pk}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code in (200, 201, 202), response.content
    run = Run.objects.get(kind="deployments.deploy")
    assert run.status == Status.AWAITING_APPROVAL and run.requested_by == users["deployer"]
    votes = AuditEvent.objects.filter(action="deployments.deploy.approved").count()
    with pytest.raises(Refused, match="cannot approve your own request") as refused:
        decide(run, users["deployer"], "approve")
    assert refused.value.code == "self_approval"
    page = client_for(users["deployer"]).post(
        f"/environments/production/runs/{run.pk}/decide/", {"decision": "approve", "comment": "mine"}, follow=True
    )
    assert "cannot approve your own request" in page.content.decode()
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()
    assert AuditEvent.objects.filter(action="deployments.deploy.approved").count() == votes
    dispatched.assert_not_called()


def vote_together(votes):
    """Cast `votes` (user, decision, comment) on one run from threads that pass the checks before
    the transaction together, so their transactions overlap. Returns each vote's outcome."""
    import threading

    from django.db import connection

    from opsconsole.runs import approvals

    barrier = threading.Barrier(len(votes))
    checked = approvals.expire_if_due

    def expire_then_wait(run):
        due = checked(run)
        barrier.wait()
        return due

    outcomes = [None] * len(votes)

    def cast(index, run_id, user, decision, comment):
        try:
            decide(Run.objects.get(pk=run_id), user, decision, comment)
            outcomes[index] = "ok"
        except Refused as refused:
            outcomes[index] = refused
        except Exception as exc:  # noqa: BLE001 (the test reports what escaped)
            outcomes[index] = exc
        finally:
            connection.close()

    with mock.patch.object(approvals, "expire_if_due", expire_then_wait):
        threads = [threading.Thread(target=cast, args=(i, *vote)) for i, vote in enumerate(votes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_are_both_counted_and_queue_the_run_once(users, protected, release, dispatched):
    from opsconsole.access.models import Role, RoleBinding

    protected.required_approvals = 2
    protected.save()
    second = make_user("beth")
    RoleBinding.objects.create(user=second, role=Role.APPROVER, environment=protected)
    run = request_deploy(protected, release, users["deployer"])
    outcomes = vote_together([(run.pk, users["approver"], "approve", "ok"), (run.pk, second, "approve", "ok")])
    assert outcomes == ["ok", "ok"]
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert Approval.objects.filter(run=run, decision="approve").count() == 2
    assert run.events.filter(message__startswith="Approved (2 of 2); queued.").count() == 1
    assert dispatched.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_approve_and_reject_one_wins_and_the_other_is_refused_clearly(
    users, protected, release, dispatched
):
    from opsconsole.access.models import Role, RoleBinding

    second = make_user("beth")
    RoleBinding.objects.create(user=second, role=Role.APPROVER, environment=protected)
    run = request_deploy(protected, release, users["deployer"])
    outcomes = vote_together(
        [(run.pk, users["approver"], "approve", "ok"), (run.pk, second, "reject", "not during the sale")]
    )
    assert outcomes.count("ok") == 1, outcomes
    refused = next(o for o in outcomes if o != "ok")
    assert isinstance(refused, Refused), refused
    assert refused.code == "not_awaiting" and f"Run #{run.pk} is not awaiting approval" in str(refused)
    run.refresh_from_db()
    assert Approval.objects.filter(run=run).count() == 1
    winner = Approval.objects.get(run=run)
    assert run.status == (Status.QUEUED if winner.decision == "approve" else Status.CANCELED)
    assert (
        AuditEvent.objects.filter(action__in=["deployments.deploy.approved", "deployments.deploy.rejected"]).count()
        == 1
    )


@pytest.mark.parametrize("kind", ["dr.failover", "terraform.apply"])
def test_a_run_of_another_kind_is_never_approved_from_the_environment_page(users, protected, dispatched, kind):
    """A DR failover needs a DR operator in sudo mode and a Terraform apply an approver who did not
    make the plan: the environment page's vote (any approver) must not reach them."""
    run = Run.objects.create(
        kind=kind, environment=protected, status=Status.AWAITING_APPROVAL, requested_by=users["deployer"]
    )
    client = client_for(users["approver"])
    page = client.get("/environments/production/")
    assert f"#{run.pk}" not in page.content.decode()
    response = client.post(f"/environments/production/runs/{run.pk}/decide/", {"decision": "approve"}, follow=True)
    assert "is not a deploy or rollback; decide on it from its own page" in response.content.decode()
    run.refresh_from_db()
    assert run.status == Status.AWAITING_APPROVAL and not Approval.objects.exists()
    with pytest.raises(Refused) as refused:
        decide(run, users["approver"], "approve")
    assert refused.value.code == "invalid"
