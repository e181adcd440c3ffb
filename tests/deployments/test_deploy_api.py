"""The deploy API: register releases, request deploys and rollbacks, and every kind of bad input
answered with a clear 4xx that changes nothing."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from deployments.models import Deployment, Release
from opsconsole.access.models import ApiToken
from opsconsole.audit.models import AuditEvent
from opsconsole.environments.models import FreezeWindow
from opsconsole.runs.models import EnvironmentLock, Run, Status

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def deployable(staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    return staging


@pytest.fixture
def token(users, deployable):
    _, raw = ApiToken.issue("ci", ["view", "deploy"], [deployable], created_by=users["admin"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def release(db):
    return Release.objects.create(repository="r", tag="v1", digest=DIGEST, registered_by_name="ci")


@pytest.fixture
def no_execution(settings):
    """Queue runs without executing them (these tests are about the request, not AWS)."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


def post(client, url, body, headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def state():
    """What a refusal must leave as it was. The refusal's own record (request.refused, written by the
    refusal audit middleware) is the one audit event it may add."""
    audited = AuditEvent.objects.exclude(action__startswith="request.refused").count()
    return (Run.objects.count(), Release.objects.count(), EnvironmentLock.objects.count(), audited)


def test_registering_a_release_is_idempotent_on_the_digest(client, token):
    body = {
        "repository": "123.dkr.ecr.us-east-1.amazonaws.com/api",
        "tag": "v1.2.3",
        "digest": DIGEST,
        "git_sha": "0123abcd",
        "commit_message": "Fix <b>things</b>",
        "commit_url": "https://git.example/c/1",
    }
    first = post(client, "/api/v1/releases", body, token)
    assert first.status_code == 201
    again = post(client, "/api/v1/releases", {**body, "tag": "v1.2.3-again"}, token)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["tag"] == "v1.2.3"
    assert Release.objects.count() == 1
    assert Release.objects.get().registered_by_name == "token:ci"
    assert AuditEvent.objects.filter(action="deployments.release.registered").count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"repository": "r", "tag": "bad tag!", "digest": DIGEST}, "invalid_tag"),
        ({"repository": "r", "tag": "v1", "digest": "sha256:xyz"}, "invalid_digest"),
        ({"repository": "", "tag": "v1", "digest": DIGEST}, "invalid"),
        ({"repository": "r", "tag": 5, "digest": DIGEST}, "invalid"),
    ],
)
def test_a_malformed_release_is_refused(client, token, body, code):
    before = state()
    response = post(client, "/api/v1/releases", body, token)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert state() == before


def test_a_deploy_request_creates_a_queued_run_and_its_deployment(client, token, release, no_execution):
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token)
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.status == Status.QUEUED
    assert run.params["release"]["image"] == f"r@{DIGEST}"
    assert run.params["ecs_service"] == "s"  # the definition is copied at launch
    assert Deployment.objects.get(run=run).release == release


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        # The token is scoped to staging: an unknown name is refused as an environment out of its reach.
        ("/api/v1/environments/nowhere/deploy", {"release_id": 1}, 403, "forbidden"),
        ("/api/v1/environments/staging/deploy", {"release_id": 999999}, 400, "unknown_release"),
        ("/api/v1/environments/staging/deploy", {"release_id": "1"}, 400, "invalid"),
        ("/api/v1/environments/staging/deploy", {}, 400, "invalid"),
        ("/api/v1/environments/staging/deploy", {"digest": "sha256:" + "b" * 64}, 400, "unknown_release"),
    ],
)
def test_bad_deploy_requests_are_refused_and_change_nothing(client, token, release, url, body, status, code):
    before = state()
    response = post(client, url, body, token)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert state() == before


def test_a_deploy_without_a_token_is_401(client, release, deployable):
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, {})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_token_without_the_deploy_scope_is_403(client, users, release, deployable):
    _, raw = ApiToken.issue("reader", ["view"], created_by=users["admin"])
    before = state()
    response = post(
        client,
        "/api/v1/environments/staging/deploy",
        {"release_id": release.pk},
        {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
    )
    assert response.status_code == 403
    assert state() == before


def test_a_deploy_to_a_locked_environment_is_a_conflict(client, token, release, deployable, users):
    EnvironmentLock.acquire(deployable, held_by="ada", reason="incident INC-42")
    before = state()
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token)
    assert response.status_code == 409
    assert response.json() == {
        "error": "staging is locked by ada (incident INC-42). Unlock it first.",
        "code": "locked",
    }
    assert state() == before


def test_a_deploy_during_a_freeze_is_refused_unless_an_admin_overrides_it(
    client, token, release, deployable, users, no_execution
):
    now = timezone.now()
    FreezeWindow.objects.create(
        environment=deployable,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="Black Friday",
    )
    before = state()
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token)
    assert response.status_code == 409 and response.json()["code"] == "frozen"
    assert "Black Friday" in response.json()["error"]
    response = post(
        client, "/api/v1/environments/staging/deploy", {"release_id": release.pk, "override_reason": "hotfix"}, token
    )
    assert response.status_code == 403  # a token is not an admin
    assert state() == before

    from deployments.services import request_deploy

    run = request_deploy(deployable, release, users["admin"], override_reason="security hotfix CVE-1")
    assert Deployment.objects.get(run=run).freeze_override_reason == "security hotfix CVE-1"
    override = AuditEvent.objects.get(action="deployments.freeze.overridden")
    assert override.details == {"reason": "security hotfix CVE-1"} and override.actor == users["admin"]


def test_the_same_deploy_again_is_a_duplicate_naming_the_run(client, token, release, no_execution):
    first = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token)
    assert first.status_code == 202
    run_id = first.json()["id"]
    before = state()
    response = post(client, "/api/v1/environments/staging/deploy", {"digest": release.digest}, token)
    assert response.status_code == 409
    assert response.json() == {
        "error": f"An identical request is already queued on staging: Deploy run #{run_id} (/runs/{run_id}/). "
        "Follow that run instead of asking again.",
        "code": "duplicate",
        "run": run_id,
        "url": f"/api/v1/runs/{run_id}",
    }
    assert state()[:3] == before[:3] and Deployment.objects.count() == 1


def test_another_deploy_while_one_is_active_is_busy_naming_it(client, token, release, no_execution):
    other = Release.objects.create(repository="r", tag="v2", digest="sha256:" + "b" * 64, registered_by_name="ci")
    run_id = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token).json()["id"]
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": other.pk}, token)
    assert response.status_code == 409
    assert response.json()["code"] == "busy" and response.json()["run"] == run_id
    assert Run.objects.count() == 1


def test_rolling_back_to_a_release_that_never_succeeded_is_refused(client, token, release, deployable):
    failed = Run.objects.create(kind="deployments.deploy", environment=deployable, status=Status.FAILED)
    Deployment.objects.create(run=failed, environment=deployable, release=release)
    before = state()
    response = post(client, "/api/v1/environments/staging/rollback", {"release_id": release.pk}, token)
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_good_release"
    assert state() == before


def test_environments_are_listed_with_their_state(client, token, release, deployable):
    deployable.live_release = release
    deployable.save()
    EnvironmentLock.acquire(deployable, held_by="ada", reason="maintenance")
    environments = client.get("/api/v1/environments", **token).json()["environments"]
    assert environments == [
        {
            "name": "staging",
            "tier": "staging",
            "region": "us-east-1",
            "strategy": "rolling",
            "live_release": pytest.approx(environments[0]["live_release"]),
            "live_color": None,
            "locked": True,
            "lock_reason": "ada (maintenance)",
            "required_approvals": 0,
        }
    ]
    assert environments[0]["live_release"]["digest"] == DIGEST


def test_the_openapi_document_describes_every_api_route(client, token):
    from django.urls import get_resolver

    document = client.get("/api/v1/openapi.json", **token).json()
    assert document["openapi"].startswith("3.")
    routes = {str(p.pattern) for p in get_resolver().url_patterns if str(p.pattern).startswith("api/v1/")}
    documented = {
        path.lstrip("/").replace("{run_id}", "<id:run_id>").replace("{name}", "<slug:name>")
        for path in document["paths"]
    } | {"api/v1/openapi.json"}
    assert routes == documented


def test_a_deploy_requested_while_another_kind_of_run_holds_the_environment_is_queued(
    client, token, release, deployable, no_execution
):
    Run.objects.create(kind="maintenance.selftest", environment=deployable, status=Status.RUNNING)
    response = post(client, "/api/v1/environments/staging/deploy", {"release_id": release.pk}, token)
    assert response.status_code == 202
    assert response.json()["status"] == Status.QUEUED


def test_a_deploy_naming_two_different_releases_is_refused(client, token, release, deployable):
    other = Release.objects.create(repository="r", tag="v2", digest="sha256:" + "e" * 64, registered_by_name="ci")
    before = state()
    body = {"release_id": release.pk, "digest": other.digest}
    response = post(client, "/api/v1/environments/staging/deploy", body, token)
    assert response.status_code == 400
    assert response.json() == {
        "error": "release_id and digest name two different releases; give one of them.",
        "code": "invalid",
    }
    assert state() == before


@pytest.mark.parametrize("before", ["0", "-3", "x", "²", "9" * 25])
def test_a_cursor_that_is_not_an_id_is_a_400_on_every_api_list(client, token, before):
    for path in ("/api/v1/releases", "/api/v1/runs"):
        response = client.get(path, {"before": before}, **token)
        assert response.status_code == 400, (path, response.content)
        assert (
            response.json()["code"] == "invalid"
            and "before must be a positive whole number" in response.json()["error"]
        )
