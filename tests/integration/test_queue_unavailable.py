"""Redis down when someone asks for a run: the request is refused with a clear message and
nothing changes. (We refuse rather than queue for later: a deploy that starts by surprise an
hour after the click, when Redis comes back, is worse than a clear "try again".)"""

import shutil
import socket
import subprocess
import time
from unittest import mock

import pytest

from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import Refused, launch
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def doomed_redis():
    """A Redis of our own that the test can stop, and its URL."""
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield server, url
    server.kill()
    server.wait()


def counts():
    return Run.objects.count(), AuditEvent.objects.exclude(action__startswith="auth.").exclude(
        action="request.refused"
    ).count()


def test_with_celery_and_redis_down_the_request_is_refused_and_changes_nothing(users, settings, doomed_redis):
    from opsconsole.celery import app

    server, url = doomed_redis
    settings.OPSCONSOLE_QUEUE = "celery"
    server.kill()
    server.wait()
    before = counts()
    original, app.conf.broker_url = app.conf.broker_url, url
    try:
        with pytest.raises(Refused) as refused:
            launch("maintenance.selftest", principal=users["admin"], params={"lines": 1})
    finally:
        app.conf.broker_url = original
    assert "The job queue (celery) is unreachable, so nothing was started" in str(refused.value)
    assert counts() == before


def test_with_rq_and_redis_down_the_page_says_so_and_changes_nothing(users, settings, doomed_redis):
    import django_rq
    import redis

    server, url = doomed_redis
    settings.OPSCONSOLE_QUEUE = "rq"
    server.kill()
    server.wait()
    client = client_for(users["admin"])
    before = counts()
    with mock.patch.object(django_rq, "get_connection", return_value=redis.Redis.from_url(url)):
        response = client.post("/runs/selftest/", {"lines": "1", "delay_ms": "0"}, follow=True)
    assert response.status_code == 200
    assert "The job queue (rq) is unreachable, so nothing was started" in response.content.decode()
    assert counts() == before


def test_a_broker_lost_between_check_and_commit_ends_the_run_errored_not_stuck(users, settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch", side_effect=ConnectionError("broker gone")),
    ):
        run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 1})
    run.refresh_from_db()
    assert run.status == Status.ERRORED
    assert run.error == "Could not be queued: the job queue is unreachable (ConnectionError)."
    assert AuditEvent.objects.filter(action="maintenance.selftest.errored", outcome="failure").exists()


def test_with_redis_down_the_apis_answer_503_queue_unavailable_and_change_nothing(users, settings, doomed_redis):
    """Through the deploy API and the generic runs API alike: a clear 503 a client can retry on,
    never a 500, and no run, deployment or audit event behind it."""
    import django_rq
    import redis

    from deployments.models import Deployment, Release
    from opsconsole.access.models import ApiToken

    server, url = doomed_redis
    settings.OPSCONSOLE_QUEUE = "rq"
    server.kill()
    server.wait()
    staging = users["deployer"].role_bindings.get().environment
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    release = Release.objects.create(repository="r", tag="v1", digest="sha256:" + "a" * 64, registered_by_name="ci")
    _, raw = ApiToken.issue("ci", ["view", "deploy", "run"], created_by=users["admin"])
    client = client_for(users["viewer"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "content_type": "application/json"}
    before = counts()
    with mock.patch.object(django_rq, "get_connection", return_value=redis.Redis.from_url(url)):
        deploy = client.post("/api/v1/environments/staging/deploy", {"release_id": release.pk}, **auth)
        selftest = client.post("/api/v1/runs", {"kind": "maintenance.selftest", "params": {"lines": 1}}, **auth)
    for response in (deploy, selftest):
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "queue_unavailable"
        assert "The job queue (rq) is unreachable, so nothing was started" in response.json()["error"]
    assert counts() == before and not Deployment.objects.exists()
