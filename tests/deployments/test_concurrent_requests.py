"""Identical deploy requests at the same moment (a double submit, a retrying CI job, an impatient
team) make one run; every other one is refused as a duplicate naming it, or, sent with the same
Idempotency-Key, answered with that same run. And what changes while a request waits for the
environment's row (a lock, a freeze window) stops it: the checks run again under the row lock.

Real threads, each with its own connection to PostgreSQL; a barrier holds them just before the
row lock, so every one of them has passed the checks made before it."""

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments.models import Deployment, Release
from opsconsole.access.models import ApiToken
from opsconsole.environments import services as environments
from opsconsole.environments.models import Environment, FreezeWindow
from opsconsole.runs import idempotency
from opsconsole.runs.models import EnvironmentLock, IdempotencyKey, Run
from opsconsole.runs.services import Refused
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 24


@pytest.fixture
def deployable(staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    return staging


@pytest.fixture
def release(db):
    return Release.objects.create(repository="r", tag="v9", digest="sha256:" + "9" * 64, registered_by_name="ci")


@pytest.fixture
def no_execution(settings):
    """Queue runs without executing them: the first stays active while the others arrive."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


@pytest.fixture
def token(users, deployable):
    _, raw = ApiToken.issue("ci", ["view", "deploy"], [deployable], created_by=users["admin"])
    return raw


def at_once(count: int, request, *, hold=None):
    """Call request(i) in `count` threads; `hold` = (module, name) of a function each thread waits
    at until all have arrived. Returns what each call returned (or raised)."""
    barrier = threading.Barrier(count, timeout=30)
    outcomes: list = [None] * count

    def run(index: int) -> None:
        try:
            outcomes[index] = request(index)
        except Exception as exc:  # noqa: BLE001 (a refusal is an outcome like any other)
            outcomes[index] = exc
        finally:
            connection.close()

    def start_all() -> None:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    if hold is None:
        start_all()
        return outcomes
    original = getattr(*hold)

    def held(*args, **kwargs):
        barrier.wait()
        return original(*args, **kwargs)

    with mock.patch.object(*hold, held):
        start_all()
    return outcomes


def test_24_identical_api_requests_at_once_make_one_run_and_23_duplicates(token, release, no_execution):
    def deploy(index):
        return Client().post(
            "/api/v1/environments/staging/deploy",
            json.dumps({"release_id": release.pk}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    responses = at_once(REQUESTS, deploy, hold=(services, "_lock"))

    [run] = Run.objects.all()
    assert Deployment.objects.count() == 1
    assert sorted(r.status_code for r in responses) == [202] + [409] * (REQUESTS - 1)
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert all(r["code"] == "duplicate" and r["run"] == run.pk for r in refusals)
    assert all(r["url"] == f"/api/v1/runs/{run.pk}" and f"run #{run.pk}" in r["error"] for r in refusals)


def test_24_requests_with_one_idempotency_key_all_get_the_same_run(token, release, no_execution):
    def deploy(index):
        return Client().post(
            "/api/v1/environments/staging/deploy",
            json.dumps({"release_id": release.pk}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY="ci-build-1234-deploy-staging",
        )

    # Held just before each takes the key: one gets it, the others wait for its answer.
    responses = at_once(REQUESTS, deploy, hold=(idempotency, "_hold"))

    [run] = Run.objects.all()
    assert [r.status_code for r in responses] == [202] * REQUESTS
    assert {r.json()["id"] for r in responses} == {run.pk}
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == REQUESTS - 1
    assert IdempotencyKey.objects.count() == 1 and Deployment.objects.count() == 1


def test_the_service_called_at_once_makes_one_run(users, deployable, release, no_execution):
    outcomes = at_once(
        6, lambda i: services.request_deploy(deployable, release, users["deployer"]).pk, hold=(services, "_lock")
    )
    [run] = Run.objects.all()
    assert outcomes.count(run.pk) == 1
    assert all(isinstance(o, Refused) and o.code == "duplicate" and o.run == run for o in outcomes if o != run.pk)


def test_a_double_submitted_deploy_form_makes_one_run(users, deployable, release, no_execution):
    page = client_for(users["deployer"]).get("/environments/staging/")
    form_token = page.context["deploy_token"]
    clients = [client_for(users["deployer"]) for _ in range(2)]

    def submit(index):
        return clients[index].post(
            "/environments/staging/deploy/", {"release": release.pk, "request_token": form_token}
        )

    responses = at_once(2, submit, hold=(idempotency, "_hold"))

    [run] = Run.objects.all()
    assert [(r.status_code, r.url) for r in responses] == [(302, f"/runs/{run.pk}/")] * 2


def in_another_transaction(change):
    """Make `change` in a transaction of its own (another connection) and commit it."""
    thread = threading.Thread(target=lambda: (change(), connection.close()))
    thread.start()
    thread.join(30)


def test_a_lock_placed_after_the_first_checks_stops_the_deploy(users, deployable, release, no_execution):
    original = services._lock

    def someone_locks_first(environment):
        in_another_transaction(lambda: environments.lock(deployable, users["admin"], "INC-7 database failover"))
        return original(environment)

    with mock.patch.object(services, "_lock", someone_locks_first), pytest.raises(Refused) as refused:
        services.request_deploy(deployable, release, users["deployer"])

    assert refused.value.code == "locked" and "INC-7" in str(refused.value)
    assert not Run.objects.exists() and not Deployment.objects.exists()
    assert EnvironmentLock.objects.get().run is None  # the person's lock, nothing else


def test_a_freeze_window_opened_after_the_first_checks_stops_the_deploy(users, deployable, release, no_execution):
    original = services._lock
    now = timezone.now()

    def someone_freezes_first(environment):
        in_another_transaction(
            lambda: FreezeWindow.objects.create(
                environment=deployable,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(hours=1),
                reason="Launch day",
            )
        )
        return original(environment)

    with mock.patch.object(services, "_lock", someone_freezes_first), pytest.raises(Refused) as refused:
        services.request_deploy(deployable, release, users["deployer"])
    assert refused.value.code == "frozen" and "Launch day" in str(refused.value)
    assert not Run.objects.exists()


def test_a_lock_committed_while_the_request_waits_for_the_row_stops_it(users, deployable, release, no_execution):
    """Ordering, without patching the checks: another transaction holds the environment's row,
    places a lock and commits only after the request has started waiting for the row."""
    holding, release_row = threading.Event(), threading.Event()

    def hold_the_row_and_lock():
        with transaction.atomic():
            Environment.objects.select_for_update(no_key=True).get(pk=deployable.pk)
            holding.set()
            release_row.wait(30)
            EnvironmentLock.objects.create(environment=deployable, held_by="ada", reason="maintenance")
        connection.close()

    other = threading.Thread(target=hold_the_row_and_lock)
    other.start()
    holding.wait(30)
    threading.Timer(0.5, release_row.set).start()  # the request below is waiting for the row by then
    with pytest.raises(Refused) as refused:
        services.request_deploy(deployable, release, users["deployer"])
    other.join(30)
    assert refused.value.code == "locked" and not Run.objects.exists()
