"""Six DR operators (or one retrying script) asking for a failover at the same moment make one
request; the others are refused as duplicates naming it, each refusal audited as
dr.failover.refused. The same Idempotency-Key gets the same run; the page's form sent twice makes
one request. Real threads against PostgreSQL, held at a barrier just before the plan's row lock."""

import json
import time
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from dr import services
from dr.models import DROperation
from opsconsole.access.models import ApiToken, Role
from opsconsole.audit.models import AuditEvent, Outcome
from opsconsole.runs import idempotency
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for, make_user
from tests.deployments.test_concurrent_requests import at_once
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = {"reason": "INC-42 us-east-1 down", "confirm": "staging"}
REQUESTS = 6


@pytest.fixture
def plan(staging):
    return offline_plan(staging)


@pytest.fixture
def operators(users, staging):
    return [users["dr_operator"], *(make_user(f"op{i}", Role.DR_OPERATOR, staging) for i in range(REQUESTS - 1))]


def api_post(raw_token: str, key: str | None = None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return Client().post(
        "/api/v1/dr/staging/failover",
        json.dumps(GOOD),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw_token}",
        **extra,
    )


def refusals() -> list[dict]:
    return list(AuditEvent.objects.filter(action="dr.failover.refused").values("outcome", "details"))


def test_six_operators_at_once_make_one_request(plan, operators):
    tokens = [ApiToken.issue(f"dr-{i}", ["dr"], created_by=user)[1] for i, user in enumerate(operators)]

    responses = at_once(REQUESTS, lambda i: api_post(tokens[i]), hold=(services, "_lock"))

    [run] = Run.objects.all()
    assert run.status == Status.AWAITING_APPROVAL and DROperation.objects.count() == 1
    assert sorted(r.status_code for r in responses) == [202] + [409] * (REQUESTS - 1)
    answers = [r.json() for r in responses if r.status_code == 409]
    assert all(
        a["code"] == "duplicate" and a["run"] == run.pk and a["url"] == f"/api/v1/runs/{run.pk}" for a in answers
    )
    audited = refusals()
    assert len(audited) == REQUESTS - 1
    assert all(e["outcome"] == Outcome.DENIED and e["details"]["code"] == "duplicate" for e in audited)


def test_the_service_called_at_once_makes_one_request(plan, operators):
    outcomes = at_once(
        REQUESTS,
        lambda i: services.request(plan, operators[i], "failover", reason="down", typed_name="staging").pk,
        hold=(services, "_lock"),
    )
    [run] = Run.objects.all()
    assert outcomes.count(run.pk) == 1
    assert all(isinstance(o, services.Refused) and o.code == "duplicate" for o in outcomes if o != run.pk)


def test_one_idempotency_key_sent_six_times_at_once_gets_one_run(plan, users):
    raw = ApiToken.issue("dr-bot", ["dr"], created_by=users["admin"])[1]
    responses = at_once(REQUESTS, lambda i: api_post(raw, key="incident-42"), hold=(idempotency, "_hold"))

    [run] = Run.objects.all()
    assert [r.status_code for r in responses] == [202] * REQUESTS
    assert {r.json()["run"]["id"] for r in responses} == {run.pk}
    assert refusals() == []


def test_the_page_form_sent_twice_makes_one_request(plan, users):
    client = client_for(users["dr_operator"])
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    token = client.get("/dr/staging/failover/").context["request_token"]
    form = {**GOOD, "request_token": token}

    first, again = client.post("/dr/staging/failover/", form), client.post("/dr/staging/failover/", form)

    [run] = Run.objects.all()
    assert first.url == again.url == f"/runs/{run.pk}/"
    said = [str(m) for m in get_messages(again.wsgi_request)]
    assert said[-1] == f"Already requested: this form was sent before and started run #{run.pk}."
    assert refusals() == []


def test_a_resume_and_a_request_at_once_make_one_run(plan, operators):
    """Resuming a failed failover and asking for a new one take turns on the plan's row too."""
    with mock.patch("dr.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        failed = services.request(plan, operators[0], "failover", reason="down", typed_name="staging")
        Run.objects.filter(pk=failed.pk).update(status=Status.FAILED)
        operation = DROperation.objects.get(run=failed)
        with mock.patch.object(DROperation, "resume_refusal", return_value=None):
            outcomes = at_once(
                2,
                lambda i: (
                    (
                        services.resume(operation, operators[1])
                        if i == 0
                        else services.request(plan, operators[2], "failover", reason="down", typed_name="staging")
                    ).pk
                ),
                hold=(services, "_lock"),
            )
    assert Run.objects.filter(status__in=(Status.QUEUED, Status.AWAITING_APPROVAL)).count() == 1
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert all(o.code in ("busy", "duplicate") for o in outcomes if not isinstance(o, int))
