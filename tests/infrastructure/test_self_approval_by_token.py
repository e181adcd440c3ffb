"""A person who requested a Terraform apply cannot approve it with their own API token, through any
door that takes a decision (pages do not take tokens; the one decision API is DR's; the service does
not count a token's vote on an apply), and signed in they are refused as the requester: nothing
changes, nothing is applied, and every refused request is audited.

The requester may approve in the environment (an admin, or a deployer who is also an approver),
and the plan is someone else's, so only the two-person rule stands between them and their apply."""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import pytest

from infrastructure import services
from opsconsole.access.models import Action, ApiToken
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Approval, Run, Status
from opsconsole.runs.services import NotPermitted, Refused
from tests.conftest import client_for
from tests.deployments.test_self_approval_by_token import DOORS, SELF_APPROVAL, refusals, token_at_every_door
from tests.infrastructure.conftest import state_of

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def queue_held(settings):
    """An approved apply would be queued: nothing executes it here, and the test sees whether it was."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch,
    ):
        yield dispatch


@pytest.fixture(params=["admin", "deployer who approves"])
def people(request, users, approver_who_deploys) -> tuple:
    """(requester, the plan's author): the requester may approve here, the plan is the other's."""
    if request.param == "admin":
        return users["admin"], users["deployer"]
    return approver_who_deploys, users["admin"]


def through_the_page(user, url: str) -> Run:
    response = client_for(user).post(url)
    assert response.status_code == 302, response
    return Run.objects.order_by("-id").first()


def snapshot(apply: Run, terraform_root) -> dict:
    apply.refresh_from_db()
    return {
        "status": apply.status,
        "approvals": Approval.objects.count(),
        "events": apply.events.count(),
        "votes audited": AuditEvent.objects.filter(action="terraform.apply.approved").count(),
        "applied": state_of(terraform_root).exists(),
    }


def test_the_requester_cannot_approve_their_own_apply_with_their_own_token(people, workspace, terraform_root, settings):
    requester, author = people
    environment = workspace.environment
    plan = through_the_page(author, f"/infrastructure/{environment.name}/plan/")  # made at once (inline)
    assert plan.kind == "terraform.plan" and plan.status == Status.SUCCEEDED, plan.error
    with queue_held(settings) as queue:
        apply = through_the_page(requester, f"/infrastructure/{environment.name}/plans/{plan.pk}/apply/")
        assert apply.kind == "terraform.apply" and apply.status == Status.AWAITING_APPROVAL
        assert apply.requested_by == requester
        token, raw = ApiToken.issue("own-ci", list(Action.values), [environment], created_by=requester)
        before = snapshot(apply, terraform_root)
        vote = {"decision": "approve", "comment": "mine"}

        expected_refusals = token_at_every_door(
            raw, environment, apply, lambda: snapshot(apply, terraform_root) == before
        )
        with pytest.raises((NotPermitted, Refused)):
            services.decide(apply, token, "approve", "mine")
        assert snapshot(apply, terraform_root) == before

        door = DOORS["infrastructure_decide"].format(env=environment.name, run=apply.pk)
        response = client_for(requester).post(door, vote, follow=True)
        assert SELF_APPROVAL in [str(m) for m in response.context["messages"]]
        assert snapshot(apply, terraform_root) == before
        queue.assert_not_called()

        expected_refusals.append(("infrastructure/<slug:name>/runs/<id:run_id>/decide/", "refused"))
        audited = refusals()
        assert [(route, code) for route, code, _ in audited] == expected_refusals
        assert audited[-1][2] == SELF_APPROVAL
