"""A person who requested a deploy cannot approve it with their own API token, through any door
that takes a decision: the token is refused everywhere (pages do not take tokens; the one decision
API is DR's and knows no deploy; the service does not count a token's vote on a deploy), the person
signed in is refused as the requester, nothing changes, and every refused request is audited.

The requester may approve in the environment (an admin, or a deployer who is also an approver),
so only the two-person rule stands between them and their own deploy."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client
from django.urls import get_resolver

from deployments import services
from deployments.models import Deployment, Release
from opsconsole.access.models import Action, ApiToken, Role, RoleBinding
from opsconsole.audit.models import AuditEvent, Outcome
from opsconsole.runs.models import Approval, Run, Status
from opsconsole.runs.services import NotPermitted, Refused
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

SELF_APPROVAL = "You cannot approve your own request; ask another approver."
# Every URL that takes a decision on a run awaiting approval; a new one must be added here (and so
# tested): test_these_are_all_the_doors_that_take_a_decision fails until it is.
DOORS = {
    "decide": "/environments/{env}/runs/{run}/decide/",
    "dr_decide": "/dr/{env}/runs/{run}/decide/",
    "infrastructure_decide": "/infrastructure/{env}/runs/{run}/decide/",
    "api_dr_decide": "/api/v1/dr/{env}/runs/{run}/decide",
}


@pytest.fixture
def protected(production):
    production.ecs_cluster, production.ecs_service, production.container_name = "c", "s", "api"
    production.required_approvals, production.approval_ttl_minutes = 1, 60
    production.save()
    return production


@pytest.fixture
def release(db):
    return Release.objects.create(repository="r", tag="v7", digest="sha256:" + "7" * 64, registered_by_name="ci")


@pytest.fixture
def queue(settings):
    """An approved deploy would be queued: nothing executes it here, and the test sees whether it was."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch,
    ):
        yield dispatch


@pytest.fixture(params=["admin", "deployer who approves"])
def requester(request, users, protected):
    if request.param == "admin":
        return users["admin"]
    RoleBinding.objects.create(user=users["deployer"], role=Role.DEPLOYER, environment=protected)
    RoleBinding.objects.create(user=users["deployer"], role=Role.APPROVER, environment=protected)
    return users["deployer"]


def deploy_through_the_page(user, environment, release) -> Run:
    client = client_for(user)
    token = client.get(f"/environments/{environment.name}/").context["deploy_token"]
    response = client.post(f"/environments/{environment.name}/deploy/", {"release": release.pk, "request_token": token})
    run = Run.objects.get(kind="deployments.deploy")
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/"
    assert run.status == Status.AWAITING_APPROVAL and run.requested_by == user
    return run


def snapshot(run: Run) -> dict:
    run.refresh_from_db()
    return {
        "status": run.status,
        "approvals": Approval.objects.count(),
        "events": run.events.count(),
        "votes audited": AuditEvent.objects.filter(action="deployments.deploy.approved").count(),
        "deployments": list(Deployment.objects.values_list("run_id", "release_id")),
    }


def refusals() -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(action="request.refused", outcome=Outcome.DENIED)
        .order_by("seq")
        .values_list("target", "details__code", "details__error")
    )


def token_at_every_door(raw: str, environment, run: Run, unchanged) -> list[tuple[str, str]]:
    """POST an approving vote with the raw token to every door; each refuses it and `unchanged()`
    holds after each. Returns the (route, code) each refusal is audited with, in order."""
    vote = {"decision": "approve", "comment": "mine"}
    audited = []
    for name, door in DOORS.items():
        url = door.format(env=environment.name, run=run.pk)
        route = door.lstrip("/").replace("{env}", "<slug:name>").replace("{run}", "<id:run_id>")
        if name.startswith("api_"):
            response = Client().post(url, vote, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
            # Not a DR run (404); a token whose owner is no DR operator is stopped before that (403).
            assert response.status_code in (403, 404), (name, response.status_code)
            if response.status_code == 403:
                audited.append((route, "forbidden"))
        else:
            response = Client().post(url, vote, HTTP_AUTHORIZATION=f"Bearer {raw}")
            assert response.status_code == 302 and response.url.startswith("/login/"), (name, response)
            audited.append((route, "unauthenticated"))
        assert unchanged(), name
    return audited


def test_these_are_all_the_doors_that_take_a_decision():
    names = {
        pattern.name
        for pattern in get_resolver().url_patterns
        if getattr(pattern, "name", "") and "decide" in pattern.name
    }
    assert names == set(DOORS)


def test_the_requester_cannot_approve_their_own_deploy_with_their_own_token(requester, protected, release, queue):
    run = deploy_through_the_page(requester, protected, release)
    token, raw = ApiToken.issue("own-ci", list(Action.values), [protected], created_by=requester)
    before = snapshot(run)
    vote = {"decision": "approve", "comment": "mine"}

    # The token at every door: no page takes a token, and the API's one decision door is DR's.
    expected_refusals = token_at_every_door(raw, protected, run, lambda: snapshot(run) == before)
    # The service behind the page, given the token: a token's vote on a deploy does not count.
    with pytest.raises((NotPermitted, Refused)):
        services.decide(run, token, "approve", "mine")
    assert snapshot(run) == before

    # The requester signed in, at the deploy's own door: refused as the requester.
    response = client_for(requester).post(DOORS["decide"].format(env=protected.name, run=run.pk), vote, follow=True)
    assert SELF_APPROVAL in [str(m) for m in response.context["messages"]]
    assert snapshot(run) == before
    queue.assert_not_called()

    expected_refusals.append(("environments/<slug:name>/runs/<id:run_id>/decide/", "refused"))
    audited = refusals()
    assert [(route, code) for route, code, _ in audited] == expected_refusals
    assert audited[-1][2] == SELF_APPROVAL
