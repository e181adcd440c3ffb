"""The DR page and its forms: who sees the button enabled, re-authentication, the typed name,
approval from the page, readiness on demand against the sandbox AWS."""

import time
from unittest import mock

import pytest

from dr.models import DROperation, DRPlan, ReadinessCheck
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for, make_user
from tests.dr.test_guards import plan  # noqa: F401 (a DR plan on staging, no AWS)

pytestmark = pytest.mark.django_db


def sudo(client):
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def test_the_nav_points_at_the_dr_page(users, plan):  # noqa: F811
    response = client_for(users["viewer"]).get("/dr/")
    assert response.status_code == 200
    assert b'href="/dr/"' in response.content


def test_only_dr_operators_see_the_button_enabled(users, plan):  # noqa: F811
    viewer = client_for(users["viewer"]).get("/dr/").content.decode()
    assert 'id="failover-button"' not in viewer and "Only DR operators may fail over" in viewer
    operator = client_for(users["dr_operator"]).get("/dr/").content.decode()
    assert 'id="failover-button"' in operator


def test_the_request_form_asks_for_re_authentication(users, plan):  # noqa: F811
    response = client_for(users["dr_operator"]).get("/dr/staging/failover/")
    assert response.status_code == 302 and response.url.startswith("/sudo/")


def test_a_mistyped_name_is_refused_on_the_page_and_changes_nothing(users, plan):  # noqa: F811
    client = sudo(client_for(users["dr_operator"]))
    response = client.post("/dr/staging/failover/", {"reason": "down", "confirm": "production"}, follow=True)
    assert "Type the environment&#x27;s name, staging, exactly" in response.content.decode()
    assert not Run.objects.exists()
    refused = AuditEvent.objects.get(action="dr.failover.refused")  # the attempt is kept
    assert refused.outcome == "denied" and refused.details["code"] == "name_mismatch"
    assert refused.actor == users["dr_operator"]


def test_a_request_and_an_approval_through_the_pages(users, plan):  # noqa: F811
    client = sudo(client_for(users["dr_operator"]))
    response = client.post("/dr/staging/failover/", {"reason": "INC-9 region down", "confirm": "staging"})
    run = Run.objects.get()
    assert response.url == f"/runs/{run.pk}/" and run.status == Status.AWAITING_APPROVAL
    page = client.get("/dr/").content.decode()
    assert "Awaiting a second person" in page and "INC-9 region down" in page

    dave = make_user("dave", "dr_operator", plan.environment)
    vote = {"decision": "approve", "comment": "ok"}
    with (
        mock.patch("dr.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.approvals.dispatch_safely"),
    ):
        unconfirmed = client_for(dave).post(f"/dr/staging/runs/{run.pk}/decide/", vote)
        assert unconfirmed.status_code == 302 and unconfirmed.url.startswith("/sudo/")
        run.refresh_from_db()
        assert run.status == Status.AWAITING_APPROVAL  # a vote needs the password again too
        sudo(client_for(dave)).post(f"/dr/staging/runs/{run.pk}/decide/", vote)
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert DROperation.objects.get(run=run).approved_at is not None


def test_a_viewer_cannot_check_readiness_or_request(users, plan):  # noqa: F811
    client = sudo(client_for(users["viewer"]))
    assert client.post("/dr/staging/check/").status_code == 403
    assert client.post("/dr/staging/failover/", {"reason": "x", "confirm": "staging"}).status_code == 403
    assert not ReadinessCheck.objects.exists() and not Run.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readiness_on_demand_shows_the_checklist_with_times(users, stack, dr_snapshot):  # noqa: F811

    s = stack.environments["staging"]
    DRPlan.objects.create(
        environment=users["dr_operator"].role_bindings.first().environment,
        hosted_zone_id=s.hosted_zone_id,
        record_name=s.record_name,
        primary_target=s.primary_target,
        dr_target=s.dr_target,
        db_source_identifier=s.db_instance,
        dr_db_instance="x-dr",
        dr_ecs_cluster=s.dr_cluster,
        dr_ecs_service=s.dr_service,
        dr_smoke_url="http://127.0.0.1:9/",
    )
    client = client_for(users["dr_operator"])
    client.post("/dr/staging/check/")
    check = ReadinessCheck.objects.get()
    assert check.ok, check.items
    assert AuditEvent.objects.get(action="dr.readiness.checked").details == {"ok": True, "failed": []}
    assert [i["ok"] for i in check.items] == [True, True, True, True]
    page = client.get("/dr/").content.decode()
    assert "Newest DR snapshot is younger than the RPO" in page and "ready" in page


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readiness_fails_without_a_dr_snapshot(users, stack):  # noqa: F811
    s = stack.environments["staging"]
    plan_ = DRPlan.objects.create(
        environment=users["dr_operator"].role_bindings.first().environment,
        hosted_zone_id=s.hosted_zone_id,
        record_name=s.record_name,
        primary_target=s.primary_target,
        dr_target=s.dr_target,
        db_source_identifier=s.db_instance,
        dr_db_instance="x-dr",
        dr_ecs_cluster=s.dr_cluster,
        dr_ecs_service="no-such-service",
        dr_smoke_url="http://127.0.0.1:9/",
    )
    from dr import readiness

    check = readiness.check(plan_)
    assert not check.ok
    assert [i["ok"] for i in check.items] == [False, False, True, True]


def test_the_drill_history_is_charted_against_the_targets(users, plan):  # noqa: F811
    for index, (rto, rpo) in enumerate([(120, 600), (90, 4000), (200, 300)]):
        run = Run.objects.create(kind="dr.drill", environment=plan.environment, status=Status.SUCCEEDED)
        DROperation.objects.create(
            plan=plan, run=run, operation="drill", reason=f"drill {index}", rto_seconds=rto, rpo_seconds=rpo
        )
    page = client_for(users["viewer"]).get("/dr/").content.decode()
    assert 'aria-label="RTO and RPO of the latest drills"' in page
    assert page.count("<rect ") == 6
    assert "RPO 4000s" in page  # the bar's tooltip
    assert page.count("badge warn") >= 1  # 4000s is over the 60 min RPO target
