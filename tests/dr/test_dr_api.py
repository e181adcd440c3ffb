"""The DR JSON API: plans with readiness, the history with RTO/RPO, and the guarded requests and
votes. Every refusal answers a clear JSON error, changes nothing, and (past the permission
check) is audited as dr.<operation>.refused."""

import json
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from dr.models import DROperation, DRPlan, Operation, ReadinessCheck, Site
from opsconsole.access.models import ApiToken
from opsconsole.audit.models import AuditEvent, Outcome
from opsconsole.runs.models import Approval, Run, Status
from tests.conftest import client_for, make_user
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(staging):
    return offline_plan(staging, rto_minutes=30, rpo_minutes=15)


@pytest.fixture
def no_execution():
    with (
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.approvals.dispatch_safely") as dispatched,
    ):
        yield dispatched


def token(users, scopes, owner="admin", environments=()):
    _, raw = ApiToken.issue("dr-bot", scopes, environments, created_by=users[owner])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def sudo(user) -> Client:
    client = client_for(user)
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def post(client, url, body, headers=None):
    return client.post(url, json.dumps(body), content_type="application/json", **(headers or {}))


def state():
    site = DRPlan.objects.get().active_site
    return (Run.objects.count(), DROperation.objects.count(), Approval.objects.count(), site)


def refused_events(operation="failover"):
    found = AuditEvent.objects.filter(action=f"dr.{operation}.refused").order_by("seq")
    return list(found.values("outcome", "details"))


GOOD = {"reason": "INC-42 us-east-1 down", "confirm": "staging"}


# --- Reading ------------------------------------------------------------------------------------
def test_plans_are_listed_with_their_latest_readiness(client, users, plan):
    items = [{"name": "No failover is already active", "ok": True, "detail": "ok", "at": "2026-01-01T00:00:00"}]
    ReadinessCheck.objects.create(plan=plan, ok=True, items=items, requested_by_name="dora")
    response = client.get("/api/v1/dr", **token(users, ["view"]))
    assert response.status_code == 200
    [listed] = response.json()["plans"]
    assert listed["environment"] == "staging" and listed["active_site"] == "primary"
    assert listed["dr_region"] == "us-west-2" and listed["rto_minutes"] == 30 and listed["active_run"] is None
    assert listed["readiness"]["ok"] is True and listed["readiness"]["items"] == items
    assert client.get("/api/v1/dr/staging", **token(users, ["view"])).json() == listed


def test_reading_needs_view_in_that_environment(client, users, plan, production):
    assert client.get("/api/v1/dr/staging", **token(users, ["dr"])).status_code == 403
    only_production = token(users, ["view"], environments=[production])
    assert client.get("/api/v1/dr/staging", **only_production).status_code == 403
    assert client.get("/api/v1/dr", **only_production).json() == {"plans": []}
    missing = client.get("/api/v1/dr/production", **token(users, ["view"]))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_history_lists_operations_with_rto_and_rpo_against_the_targets(client, users, plan):
    now = timezone.now()
    for operation, rto, rpo in (("drill", 600, 3000), ("failover", 2400, 300)):
        run = Run.objects.create(kind=f"dr.{operation}", environment=plan.environment, status=Status.SUCCEEDED)
        DROperation.objects.create(
            plan=plan,
            run=run,
            operation=operation,
            reason="test",
            approved_at=now - timedelta(seconds=rto),
            dns_switched_at=now,
            snapshot_identifier="snap-1",
            snapshot_at=now - timedelta(seconds=rpo),
            rto_seconds=rto,
            rpo_seconds=rpo,
            torn_down=operation == "drill",
        )
    headers = token(users, ["view"])
    operations = client.get("/api/v1/dr/staging/operations", **headers).json()["operations"]
    assert [(o["operation"], o["rto_seconds"], o["rto_met"], o["rpo_met"]) for o in operations] == [
        ("failover", 2400, False, True),
        ("drill", 600, True, False),
    ]
    assert operations[1]["torn_down"] is True and operations[1]["snapshot"] == "snap-1"
    drills = client.get("/api/v1/dr/staging/operations?operation=drill", **headers).json()["operations"]
    assert [o["operation"] for o in drills] == ["drill"]
    bad = client.get("/api/v1/dr/staging/operations?operation=restore", **headers)
    assert bad.status_code == 400 and bad.json()["error"] == "operation must be one of failover, drill, failback."


# --- Requesting ---------------------------------------------------------------------------------
def test_a_dr_token_requests_a_failover_for_its_owner(client, users, plan):
    response = post(client, "/api/v1/dr/staging/failover", GOOD, token(users, ["dr"]))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["run"]["status"] == "awaiting_approval" and body["run"]["kind"] == "dr.failover"
    assert body["operation"]["reason"] == "INC-42 us-east-1 down"
    run = Run.objects.get()
    assert run.requested_by == users["admin"] and run.requested_by_name == "token:dr-bot"
    event = AuditEvent.objects.get(action="dr.failover.requested")
    assert event.actor_name == "token:dr-bot" and event.details["params"]["requested_for"] == "ada"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({**GOOD, "confirm": "Staging"}, 400, "name_mismatch", "Type the environment's name, staging, exactly"),
        ({**GOOD, "confirm": ""}, 400, "name_mismatch", "Type the environment's name"),
        ({**GOOD, "reason": "  "}, 400, "reason_required", "Say why"),
        ({**GOOD, "reason": 5}, 400, "invalid", "reason must be a string."),
    ],
)
def test_bad_requests_are_refused_audited_and_change_nothing(client, users, plan, body, status, code, message):
    before = state()
    response = post(client, "/api/v1/dr/staging/failover", body, token(users, ["dr"]))
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["error"].startswith(message)
    assert state() == before
    error = response.json()["error"]
    assert refused_events() == [{"outcome": Outcome.DENIED, "details": {"code": code, "error": error}}]


def test_an_oversized_body_is_413_and_changes_nothing(client, users, plan, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    before = state()
    response = post(client, "/api/v1/dr/staging/failover", {**GOOD, "reason": "x" * 4096}, token(users, ["dr"]))
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "too_large"
    assert state() == before
    assert refused_events() == []


def test_a_failover_while_one_is_pending_is_a_duplicate_naming_it(client, users, plan):
    headers = token(users, ["dr"])
    first = post(client, "/api/v1/dr/staging/failover", GOOD, headers)
    assert first.status_code == 202
    run_id = first.json()["run"]["id"]
    before = state()
    response = post(client, "/api/v1/dr/staging/failover", GOOD, headers)
    assert response.status_code == 409 and response.json()["code"] == "duplicate"
    assert response.json()["run"] == run_id and response.json()["url"] == f"/api/v1/runs/{run_id}"
    assert f"DR failover run #{run_id} (/runs/{run_id}/)" in response.json()["error"]
    assert state() == before and [event["details"]["code"] for event in refused_events()] == ["duplicate"]


def test_a_drill_while_a_failover_is_pending_is_busy(client, users, plan):
    DRPlan.objects.filter(pk=plan.pk).update(drill_record_name="drill.api.example.com.")
    headers = token(users, ["dr"])
    run_id = post(client, "/api/v1/dr/staging/failover", GOOD, headers).json()["run"]["id"]
    response = post(client, "/api/v1/dr/staging/drill", GOOD, headers)
    assert response.status_code == 409 and response.json()["code"] == "busy" and response.json()["run"] == run_id


def test_a_drill_and_a_failback_go_through_the_same_guard(client, users, plan):
    headers = token(users, ["dr"])
    drill = post(client, "/api/v1/dr/staging/drill", GOOD, headers)
    assert drill.status_code == 400 and drill.json()["code"] == "no_drill_record"
    failback = post(client, "/api/v1/dr/staging/failback", GOOD, headers)
    assert failback.status_code == 409 and failback.json()["code"] == "not_failed_over"
    assert not Run.objects.exists() and len(refused_events("drill")) == len(refused_events("failback")) == 1

    DRPlan.objects.filter(pk=plan.pk).update(active_site=Site.DR, drill_record_name="drill.api.example.com.")
    assert post(client, "/api/v1/dr/staging/failback", GOOD, headers).json()["run"]["kind"] == "dr.failback"


def test_who_may_request(client, users, plan):
    before = state()
    cases = [
        (token(users, ["view", "deploy"]), "forbidden"),  # no dr scope
        (token(users, ["dr"], owner="deployer"), "forbidden"),  # its owner is no DR operator
    ]
    for headers, code in cases:
        response = post(client, "/api/v1/dr/staging/failover", GOOD, headers)
        assert response.status_code == 403 and response.json()["code"] == code
        assert "DR operator" in response.json()["error"] or "permission" in response.json()["error"]
    # A browser session must have confirmed its password recently (sudo mode).
    response = post(client_for(users["dr_operator"]), "/api/v1/dr/staging/failover", GOOD)
    assert response.status_code == 403
    assert response.json()["error"] == "Confirm your password first (sudo mode), then repeat the request."
    assert post(sudo(users["viewer"]), "/api/v1/dr/staging/failover", GOOD).status_code == 403
    assert post(Client(), "/api/v1/dr/staging/failover", GOOD).status_code == 401
    assert state() == before
    # Only the refusal past the permission check (no sudo mode) is audited.
    error = "Confirm your password first (sudo mode), then repeat the request."
    assert refused_events() == [{"outcome": Outcome.DENIED, "details": {"code": "forbidden", "error": error}}]
    assert AuditEvent.objects.filter(action__startswith="dr.").count() == 1
    assert post(sudo(users["dr_operator"]), "/api/v1/dr/staging/failover", GOOD).status_code == 202


# --- Voting -------------------------------------------------------------------------------------
def test_a_second_person_approves_through_the_api(
    client, users, plan, no_execution, django_capture_on_commit_callbacks
):
    requested = post(sudo(users["dr_operator"]), "/api/v1/dr/staging/failover", GOOD).json()["run"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            f"/api/v1/dr/staging/runs/{requested}/decide",
            {"decision": "approve", "comment": "confirmed"},
            token(users, ["dr"]),
        )
    assert response.status_code == 200, response.content
    assert response.json()["run"]["status"] == "queued" and response.json()["operation"]["approved_at"]
    assert Approval.objects.get().user == users["admin"]
    event = AuditEvent.objects.get(action="dr.failover.approved")
    assert event.actor == users["admin"] and event.actor_name == "token:dr-bot"
    assert Run.objects.get(pk=requested).events.filter(message__startswith="Approved by token:dr-bot (owned by ada)")
    no_execution.assert_called_once_with(requested)


def test_one_persons_token_cannot_approve_their_own_request(client, users, plan, no_execution):
    requested = post(client, "/api/v1/dr/staging/failover", GOOD, token(users, ["dr"])).json()["run"]["id"]
    before = state()
    for voter in (token(users, ["dr"]), None):  # another token of ada's, then ada herself
        response = post(
            client if voter else sudo(users["admin"]),
            f"/api/v1/dr/staging/runs/{requested}/decide",
            {"decision": "approve"},
            voter,
        )
        assert response.status_code == 403 and response.json()["code"] == "self_approval"
    assert state() == before and Run.objects.get(pk=requested).status == Status.AWAITING_APPROVAL
    assert [e["details"]["code"] for e in refused_events()] == ["self_approval", "self_approval"]
    no_execution.assert_not_called()


def test_votes_that_are_refused(client, users, plan, no_execution):
    dave = make_user("dave", "dr_operator", plan.environment)
    requested = post(client, "/api/v1/dr/staging/failover", GOOD, token(users, ["dr"])).json()["run"]["id"]
    url = f"/api/v1/dr/staging/runs/{requested}/decide"
    before = state()

    reject = post(sudo(dave), url, {"decision": "reject"})
    assert reject.status_code == 400 and reject.json()["code"] == "comment_required"
    assert post(sudo(dave), url, {"decision": "maybe"}).json()["code"] == "invalid"
    deployer = post(sudo(users["deployer"]), url, {"decision": "approve"})
    assert deployer.status_code == 403  # no dr: refused before anything is recorded
    assert state() == before
    assert [e["details"]["code"] for e in refused_events()] == ["comment_required", "invalid"]

    assert post(sudo(dave), url, {"decision": "reject", "comment": "false alarm"}).status_code == 200
    assert Run.objects.get(pk=requested).status == Status.CANCELED
    again = post(sudo(users["dr_operator"]), url, {"decision": "approve"})
    assert again.status_code == 409 and again.json()["code"] == "not_awaiting"

    other = Run.objects.create(kind="maintenance.selftest", environment=plan.environment)
    assert post(sudo(dave), f"/api/v1/dr/staging/runs/{other.pk}/decide", {"decision": "approve"}).status_code == 404


def test_an_expired_request_cannot_be_approved(client, users, plan, no_execution):
    requested = post(client, "/api/v1/dr/staging/failover", GOOD, token(users, ["dr"])).json()["run"]["id"]
    Run.objects.filter(pk=requested).update(created_at=timezone.now() - timedelta(minutes=31))
    response = post(sudo(users["dr_operator"]), f"/api/v1/dr/staging/runs/{requested}/decide", {"decision": "approve"})
    assert response.status_code == 409 and response.json()["code"] == "expired"
    assert DROperation.objects.get(run_id=requested).approved_at is None
    assert Operation.FAILOVER == DROperation.objects.get(run_id=requested).operation
