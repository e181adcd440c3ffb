"""A name no environment has answers exactly as an environment the caller may neither see nor act
in, on every API route that takes an environment's name (in its path or, for POST /api/v1/runs, in
its body): the same status, the same JSON, and a refusal audited the same way but for the path. So
a token or user scoped to staging cannot learn from the API which other environments exist. A
principal that sees every environment is told plainly that there is none by that name (404).

Routes are discovered from the URL conf, so a new route taking a name is covered the day it is added.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from opsconsole.access.models import Action, ApiToken
from opsconsole.audit import refusals
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from tests.access.test_authorization_matrix import ROUTES
from tests.conftest import LocalCounter, client_for
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db

NAMED_ROUTES = [route for route in ROUTES if route.startswith("api/v1/") and "<slug:name>" in route]
# Run kinds of each sort: any door, service only (deploy, DR, restore), and one that does not exist.
KINDS = ("maintenance.selftest", "deployments.deploy", "dr.failover", "backups.restore", "no.such.kind")
# Everything an audit event says but its place in the chain, its time and its request's id.
AUDITED = ("action", "actor_id", "actor_name", "target", "environment", "ip", "user_agent", "outcome", "details")


@pytest.fixture
def dr_run(users, staging, production) -> Run:
    """Production has everything a route could look up: a DR plan and a DR run awaiting a vote."""
    offline_plan(staging)
    offline_plan(production)
    return Run.objects.create(kind="dr.failover", environment=production, status=Status.AWAITING_APPROVAL, params={})


def token(users, scopes, environments=()) -> dict:
    _, raw = ApiToken.issue("probe", scopes, environments, created_by=users["admin"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def requests_for(name: str, run_id: int):
    """(method, path, body) of every route that takes an environment's name, with `name` in it."""
    body = {"release_id": 1, "reason": "probe", "confirm": "probe", "decision": "approve"}
    for route in NAMED_ROUTES:
        path = "/" + route.replace("<slug:name>", name).replace("<id:run_id>", str(run_id))
        yield "GET", path, body
        yield "POST", path, body
    for kind in KINDS:
        yield "POST", "/api/v1/runs", {"kind": kind, "environment": name}


def answer(client: Client, headers: dict, method: str, path: str, body: dict, monkeypatch):
    """The status, the JSON and the audit events of one request (refusal counts start afresh, so
    a second refusal of the same route is written rather than coalesced into the first)."""
    monkeypatch.setattr(refusals, "_counter", LocalCounter())
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if method == "GET":
        response = client.get(path, **headers)
    else:
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
    events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq").values(*AUDITED))
    for event in events:
        event["details"].pop("path", None)
    return response.status_code, response.json(), events


@pytest.mark.parametrize("principal", ["token scoped to staging", "deployer in staging"])
def test_an_unknown_name_answers_as_an_environment_out_of_reach(client, users, staging, dr_run, principal, monkeypatch):
    if principal == "token scoped to staging":
        headers = token(users, list(Action.values), [staging])
    else:
        client, headers = client_for(users["deployer"]), {}
    refused = 0
    pairs = zip(requests_for("production", dr_run.pk), requests_for("nosuchenv", dr_run.pk), strict=True)
    for (method, path, body), (_, unknown_path, unknown_body) in pairs:
        existing = answer(client, headers, method, path, body, monkeypatch)
        unknown = answer(client, headers, method, unknown_path, unknown_body, monkeypatch)
        where = f"{method} {path} {body.get('kind', '')}"
        assert existing == unknown, where
        status, content, events = existing
        assert status in (403, 405), where
        if status == 403:
            refused += 1
            assert content["code"] == "forbidden" and "production" not in content["error"], where
            # A refused POST is audited once (request.refused), the same for both names.
            assert [event["action"] for event in events] == (["request.refused"] if method == "POST" else []), where
    assert refused >= len(NAMED_ROUTES) + len(KINDS)


@pytest.mark.parametrize("principal", ["token for every environment", "admin"])
def test_a_principal_who_sees_every_environment_is_told_there_is_none(client, users, dr_run, principal, monkeypatch):
    if principal == "admin":
        client, headers = client_for(users["admin"]), {}
    else:
        headers = token(users, list(Action.values))
    missing = {"error": "There is no environment called 'nosuchenv'.", "code": "not_found"}
    told = 0
    for method, path, body in requests_for("nosuchenv", dr_run.pk):
        status, content, events = answer(client, headers, method, path, body, monkeypatch)
        if status == 405:  # the route does not serve this method, whatever the name
            continue
        assert (status, content, events) == (404, missing, []), f"{method} {path} {body.get('kind', '')}"
        told += 1
    assert told >= len(NAMED_ROUTES) + len(KINDS)
