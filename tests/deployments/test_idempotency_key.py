"""The deploy API honours an Idempotency-Key header: the same key from the same caller within a day
gets the first answer again (status, body, the same run) and starts nothing; the same key with a
different request is refused; a refusal is not kept, so the key stays usable."""

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from deployments.models import Deployment, Release
from opsconsole.access.models import ApiToken
from opsconsole.runs import idempotency
from opsconsole.runs.models import EnvironmentLock, IdempotencyKey, Run, Status
from opsconsole.runs.schedules import PERIODIC

pytestmark = pytest.mark.django_db

DEPLOY = "/api/v1/environments/staging/deploy"


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
    return Release.objects.create(repository="r", tag="v1", digest="sha256:" + "a" * 64, registered_by_name="ci")


@pytest.fixture(autouse=True)
def no_execution(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


def post(client, body, headers, key="build-77", url=DEPLOY, raw=None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(url, raw or json.dumps(body), content_type="application/json", **headers, **extra)


def test_the_same_key_gets_the_same_answer_and_starts_nothing(client, token, release):
    first = post(client, {"release_id": release.pk}, token)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first
    # The same request, spelt differently (spacing, key order), is the same request.
    again = post(client, None, token, raw=f'{{ "release_id" : {release.pk} }}')
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Run.objects.count() == Deployment.objects.count() == 1


def test_the_same_key_with_another_request_is_refused(client, token, release):
    other = Release.objects.create(repository="r", tag="v2", digest="sha256:" + "b" * 64, registered_by_name="ci")
    post(client, {"release_id": release.pk}, token)
    for body, url in (
        ({"release_id": other.pk}, DEPLOY),
        ({"release_id": release.pk}, DEPLOY.replace("deploy", "rollback")),
    ):
        response = post(client, body, token, url=url)
        assert response.status_code == 422
        assert response.json() == {
            "error": "This Idempotency-Key was used with a different request; use a new key for a new request.",
            "code": "idempotency_key_reused",
        }
    assert Run.objects.count() == 1


def test_a_key_is_the_callers_own(client, token, users, deployable, release):
    _, raw = ApiToken.issue("other-ci", ["view", "deploy"], [deployable], created_by=users["admin"])
    first = post(client, {"release_id": release.pk}, token)
    theirs = post(client, {"release_id": release.pk}, {"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    # Not the first caller's answer: their own request, a duplicate of the run already queued.
    assert theirs.status_code == 409 and theirs.json()["code"] == "duplicate"
    assert theirs.json()["run"] == first.json()["id"]


def test_a_refusal_is_not_kept_so_the_key_can_be_used_again(client, token, deployable, release):
    EnvironmentLock.objects.create(environment=deployable, held_by="ada", reason="maintenance")
    refused = post(client, {"release_id": release.pk}, token)
    assert refused.status_code == 409 and refused.json()["code"] == "locked"
    assert not IdempotencyKey.objects.exists() and not Run.objects.exists()
    EnvironmentLock.objects.all().delete()
    assert post(client, {"release_id": release.pk}, token).status_code == 202


@pytest.mark.parametrize("key", ["", "x" * 201, "two words", "caf\u00e9"])
def test_a_malformed_key_is_a_400(client, token, release, key):
    response = post(client, {"release_id": release.pk}, token, key=key)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert not Run.objects.exists()


def test_a_key_older_than_a_day_counts_as_new(client, token, release):
    first = post(client, {"release_id": release.pk}, token).json()["id"]
    Run.objects.filter(pk=first).update(status=Status.SUCCEEDED)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = post(client, {"release_id": release.pk}, token)
    assert again.status_code == 202 and again.json()["id"] != first
    assert IdempotencyKey.objects.get().run_id is None  # an API answer is kept as its body


def test_old_keys_are_forgotten_by_a_periodic_task(db):
    IdempotencyKey.objects.create(principal="token:1", key="old", created_at=timezone.now() - timedelta(days=2))
    IdempotencyKey.objects.create(principal="token:1", key="new")
    assert idempotency.forget_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert PERIODIC["opsconsole: forget idempotency keys older than a day"][0] == (
        "opsconsole.runs.tasks.forget_idempotency_keys"
    )


def test_without_a_key_nothing_is_kept(client, token, release):
    assert post(client, {"release_id": release.pk}, token, key=None).status_code == 202
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_repeat_while_the_first_is_still_answered_waits_then_is_told_to_repeat(client, token, release):
    holding, done = threading.Event(), threading.Event()
    principal = f"token:{ApiToken.objects.get().pk}"

    def first_request_in_flight():
        with transaction.atomic():
            IdempotencyKey.objects.create(principal=principal, key="build-77", fingerprint="the first request")
            holding.set()
            done.wait(30)
        connection.close()

    other = threading.Thread(target=first_request_in_flight)
    other.start()
    holding.wait(30)
    try:
        with mock.patch.object(idempotency, "WAIT_SECONDS", 1):
            response = post(client, {"release_id": release.pk}, token)
    finally:
        done.set()
        other.join(30)
    assert response.status_code == 409 and response.json()["code"] == "idempotency_in_progress"
    assert response["Retry-After"] == "1"
    assert not Run.objects.exists()
    # The server's own lock timeout is back for whatever the connection does next.
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"
