"""The pages' twin of test_unknown_environments.py: on every page that takes an environment's name
in its path, a name no environment has answers exactly as an environment the user may not see:
the same status, the same message, and a refusal audited the same way but for the path. So a
user bound in staging only cannot learn from the pages which other environments exist. A user
who sees every environment is told plainly that there is none (404).

Routes are discovered from the URL conf, so a new page taking a name is covered the day it is added.
"""

from __future__ import annotations

import pytest
from django.test import Client

from opsconsole.audit import refusals
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from tests.access.test_authorization_matrix import ROUTES
from tests.access.test_unknown_environments import AUDITED
from tests.conftest import LocalCounter, client_for
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db

NAMED_PAGES = [route for route in ROUTES if not route.startswith("api/") and "<slug:name>" in route]
# Everything any of those forms could carry.
FORM = {"release": "1", "confirm": "yes", "reason": "probe", "decision": "approve", "comment": "probe"}


@pytest.fixture
def dr_run(staging, production) -> Run:
    """Production has everything a page could look up: a DR plan and a DR run awaiting a vote."""
    offline_plan(staging)
    offline_plan(production)
    return Run.objects.create(kind="dr.failover", environment=production, status=Status.AWAITING_APPROVAL, params={})


def signed_in(user) -> Client:
    """Signed in and re-authenticated (sudo), so the DR pages get as far as the environment."""
    client = client_for(user)
    session = client.session
    session["sudo_until"] = 10**12
    session.save()
    return client


def requests_for(name: str, run_id: int):
    """(method, path) of every page that takes an environment's name, with `name` in it."""
    for route in NAMED_PAGES:
        path = "/" + route.replace("<slug:name>", name).replace("<id:run_id>", str(run_id))
        yield "GET", path
        yield "POST", path


def answer(client: Client, method: str, path: str, monkeypatch) -> tuple[int, str, list[dict]]:
    """The status, the message the page showed (a refusal's, or a 404's) and the audit events of
    one request (refusal counts start afresh, so a second refusal is written, not coalesced)."""
    monkeypatch.setattr(refusals, "_counter", LocalCounter())
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    response = client.get(path) if method == "GET" else client.post(path, FORM)
    events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq").values(*AUDITED))
    for event in events:
        event["details"].pop("path", None)
    message = str(response.context.get("exception", "")) if response.context is not None else ""
    return response.status_code, message, events


def test_every_page_taking_a_name_is_covered():
    assert len(NAMED_PAGES) >= 15
    assert {"environments/<slug:name>/", "dr/<slug:name>/failover/", "infrastructure/<slug:name>/plan/"} <= set(
        NAMED_PAGES
    )


def test_an_unknown_name_answers_as_an_environment_out_of_reach(users, dr_run, monkeypatch):
    client = signed_in(users["deployer"])  # a deployer bound in staging only
    refused = 0
    pairs = zip(requests_for("production", dr_run.pk), requests_for("nosuchenv", dr_run.pk), strict=True)
    for (method, path), (_, unknown_path) in pairs:
        existing = answer(client, method, path, monkeypatch)
        unknown = answer(client, method, unknown_path, monkeypatch)
        where = f"{method} {path}"
        assert existing == unknown, where
        status, message, events = existing
        assert status in (403, 405), where
        if status == 403:
            refused += 1
            assert message.startswith("You do not have permission to ") and "production" not in message, where
            assert message.endswith("in an environment of that name, or there is none."), where
            # A refused POST is audited once (request.refused), the same for both names.
            assert [event["action"] for event in events] == (["request.refused"] if method == "POST" else []), where
    assert refused >= len(NAMED_PAGES)


def test_a_user_who_sees_every_environment_is_told_there_is_none(users, dr_run, monkeypatch):
    client = signed_in(users["admin"])  # the admin role, bound in every environment
    told = 0
    for method, path in requests_for("nosuchenv", dr_run.pk):
        status, message, events = answer(client, method, path, monkeypatch)
        if status == 405:  # the page does not serve this method, whatever the name
            continue
        assert (status, message, events) == (404, "There is no environment called 'nosuchenv'.", []), f"{method} {path}"
        told += 1
    assert told >= len(NAMED_PAGES)
