"""Manual rollback to an earlier good release: no migrations, a warning when the schema has moved
on, and the environment locked afterwards."""

import pytest

from deployments.models import Deployment
from deployments.services import request_rollback
from opsconsole.environments.services import unlock
from opsconsole.runs.models import EnvironmentLock, Status
from opsconsole.runs.services import Refused
from tests.conftest import client_for
from tests.deployments.test_rolling_deploy import service_image

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_rolling_back_redeploys_the_earlier_release_without_migrations_and_locks(users, staging_aws, releases, stack):
    from deployments.services import request_deploy

    old, new = releases["v1.1.0"], releases["v1.2.0"]
    request_deploy(staging_aws, old, users["deployer"])
    assert Deployment.objects.get(release=old).run.status == Status.SUCCEEDED
    request_deploy(staging_aws, new, users["deployer"])
    staging_aws.refresh_from_db()
    assert staging_aws.live_release == new

    client = client_for(users["deployer"])
    response = client.post("/environments/staging/rollback/", {"release": old.pk, "confirm": "yes"})
    run = Deployment.objects.filter(kind="rollback").get().run
    assert response.url == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert service_image(stack, staging_aws) == old.image
    staging_aws.refresh_from_db()
    assert staging_aws.live_release == old
    steps = {step["name"]: step for step in run.steps}
    assert steps["Run migrations"]["state"] == "skipped"
    messages = list(run.events.values_list("message", flat=True))
    assert any("older than the last migration applied (with v1.2.0" in m for m in messages)
    lock = EnvironmentLock.objects.get(environment=staging_aws)
    assert lock.reason == f"Rolled back by run #{run.pk}: manual rollback to v1.1.0"

    with pytest.raises(Refused, match="is locked"):
        request_rollback(staging_aws, new, users["deployer"])
    unlock(staging_aws, users["deployer"])
    with pytest.raises(Refused, match="already live"):
        request_rollback(staging_aws, old, users["deployer"])


def test_the_rollback_form_requires_confirmation(users, staging_aws, releases):
    client = client_for(users["deployer"])
    response = client.post("/environments/staging/rollback/", {"release": releases["v1.1.0"].pk}, follow=True)
    assert "Confirm the rollback" in response.content.decode()
    assert not Deployment.objects.exists()
