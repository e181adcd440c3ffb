"""API fuzzing: schemathesis reads /api/v1/openapi.json from a live server and sends generated
requests to every operation the document describes (so an endpoint added to the document is
fuzzed the day it is added), authenticated with a token that holds every scope.

No answer may be a 5xx, every status code must be one the document lists for the operation, and
every body must match the document's schema. The number of examples per operation is bounded so
the whole run stays within a couple of minutes.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments.models import Release
from dr.models import DRPlan
from opsconsole.access.models import Action, ApiToken
from opsconsole.environments.models import Environment, Tier
from opsconsole.runs.models import Run, Status

# Per operation and mode: enough to find what a hand-written test forgets, few enough that the
# whole run takes about a minute.
POSITIVE_EXAMPLES = 25
NEGATIVE_EXAMPLES = 15
MODES = ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def token(transactional_db, django_user_model, monkeypatch) -> str:
    """A world with something in it (environments, releases, runs, a DR plan) and a token that
    may do everything; AWS calls fail at once on a closed local port."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fuzz")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fuzz")
    owner = django_user_model.objects.create_superuser("fuzz-owner", "f@example.com", "x" * 20)
    staging = Environment.objects.create(name="staging", tier=Tier.STAGING)
    Environment.objects.create(name="production", tier=Tier.PRODUCTION, required_approvals=1)
    release = Release.objects.create(repository="r", tag="v1", digest="sha256:" + "1" * 64, registered_by_name="ci")
    Run.objects.create(kind="maintenance.selftest", environment=staging, status=Status.SUCCEEDED, params={})
    DRPlan.objects.create(
        environment=staging,
        hosted_zone_id="Z1",
        record_name="api.example.com.",
        primary_target="primary.example.com",
        dr_target="dr.example.com",
        db_source_identifier="db",
        dr_db_instance="db-dr",
        dr_ecs_cluster="dr",
        dr_ecs_service="api-dr",
        dr_smoke_url="http://127.0.0.1:9/",
    )
    assert release.pk
    _, raw = ApiToken.issue("fuzz", list(Action.values), created_by=owner)
    return raw


def fuzz(operation, mode: GenerationMode, examples: int, base_url: str, headers: dict) -> str:
    """Send `examples` generated requests to one operation; the first failure, shrunk, or ""."""
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def send(case):
        case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)

    try:
        send()
    except (Exception, BaseExceptionGroup) as exc:  # a failed check (a FailureGroup): report it with the others
        return f"{operation.method.upper()} {operation.path} ({mode}): {exc}"
    finally:
        session.close()
    return ""


# schemathesis' own pytest plugin does not run under pytest 9, so the test drives Hypothesis itself.
def test_the_api_answers_every_generated_request_as_its_document_says(live_server, token):
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json", headers=headers, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the OpenAPI document describes fewer operations than the API has"
    failures = []
    for operation in operations:
        for mode, examples in MODES:
            failures.append(fuzz(operation, mode, examples, live_server.url, headers))
    failures = [failure for failure in failures if failure]
    assert not failures, "\n\n".join(failures)


def test_the_document_is_served_and_lists_every_api_route(live_server, token):
    """The fuzzing above covers what the document lists; this says the document lists every
    /api/v1/ route of the URL conf, so an undocumented endpoint cannot escape it."""
    from tests.access.test_authorization_matrix import ROUTES

    document = requests.get(
        f"{live_server.url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    documented = {path.removeprefix("/") for path in document["paths"]}
    routes = {
        route.replace("<slug:name>", "{name}").replace("<id:run_id>", "{run_id}")
        for route in ROUTES
        if route.startswith("api/v1/") and route != "api/v1/openapi.json"
    }
    assert routes, "no API routes found"
    assert routes <= documented, f"API routes missing from the OpenAPI document: {sorted(routes - documented)}"
