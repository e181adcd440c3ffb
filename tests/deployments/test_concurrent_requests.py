"""Identical deploy requests at the same moment (a double submit, a retrying CI job, an impatient
team) make one run; every other one is refused as busy, naming the run that is going."""

import threading
from unittest import mock

import pytest
from django.db import connection

from deployments import services
from deployments.models import Deployment, Release
from opsconsole.runs.models import Run
from opsconsole.runs.services import Refused

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 6


@pytest.fixture
def deployable(staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    return staging


def test_concurrent_identical_deploys_make_one_run(users, deployable, settings):
    release = Release.objects.create(repository="r", tag="v9", digest="sha256:" + "9" * 64, registered_by_name="ci")
    settings.OPSCONSOLE_QUEUE = "celery"
    barrier = threading.Barrier(REQUESTS)
    checked = services._check_can_change

    def check_then_wait(*args, **kwargs):
        override = checked(*args, **kwargs)  # every request passes the checks made before the transaction
        barrier.wait()
        return override

    outcomes: list = [None] * REQUESTS

    def request(index: int) -> None:
        try:
            outcomes[index] = services.request_deploy(deployable, release, users["deployer"]).pk
        except Refused as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    with (
        mock.patch.object(services, "_check_can_change", check_then_wait),
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch"),
    ):
        threads = [threading.Thread(target=request, args=(i,)) for i in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    [run] = Run.objects.all()
    assert Deployment.objects.count() == 1
    assert outcomes.count(run.pk) == 1
    refusals = [outcome for outcome in outcomes if outcome != run.pk]
    assert len(refusals) == REQUESTS - 1
    assert all(isinstance(r, Refused) and r.code == "busy" and f"Run #{run.pk}" in str(r) for r in refusals)
