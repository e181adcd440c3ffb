"""Locking an environment with a reason: deploys are refused and the page says who and why."""

import pytest

from deployments.models import Release
from deployments.services import request_deploy
from opsconsole.audit.models import AuditEvent
from opsconsole.environments.services import lock, unlock
from opsconsole.runs.models import EnvironmentLock
from opsconsole.runs.services import NotPermitted, Refused
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_locked_environment_refuses_deploys_and_shows_who_and_why(users, staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    release = Release.objects.create(repository="r", tag="v1", digest="sha256:" + "d" * 64, registered_by_name="ci")
    lock(staging, users["deployer"], "DB failover drill <b>tonight</b>")
    with pytest.raises(Refused, match="locked by dana"):
        request_deploy(staging, release, users["deployer"])
    page = client_for(users["viewer"]).get("/environments/staging/").content.decode()
    assert "dana (DB failover drill &lt;b&gt;tonight&lt;/b&gt;)" in page
    assert AuditEvent.objects.filter(action="deployments.environment.locked", environment="staging").exists()


def test_locking_needs_a_reason_and_the_deploy_role(users, staging):
    with pytest.raises(Refused, match="Say why"):
        lock(staging, users["deployer"], " ")
    with pytest.raises(NotPermitted):
        lock(staging, users["viewer"], "because")
    assert not EnvironmentLock.objects.exists()


def test_unlocking_frees_the_environment_and_is_audited(users, staging):
    lock(staging, users["deployer"], "maintenance")
    with pytest.raises(Refused, match="is locked by dana"):
        lock(staging, users["deployer"], "again")
    unlock(staging, users["deployer"])
    assert not EnvironmentLock.objects.exists()
    assert AuditEvent.objects.get(action="deployments.environment.unlocked").details == {"was": "dana (maintenance)"}
    with pytest.raises(Refused, match="not locked"):
        unlock(staging, users["deployer"])


def test_the_lock_form_works_from_the_page(users, staging):
    client = client_for(users["deployer"])
    client.post("/environments/staging/lock/", {"action": "lock", "reason": "hold"})
    assert EnvironmentLock.objects.get().reason == "hold"
    client.post("/environments/staging/lock/", {"action": "unlock"})
    assert not EnvironmentLock.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_lock_waits_for_a_deploy_request_holding_the_environment_row(users, staging):
    """A deploy request checks the lock again holding the environment's row; locking by hand takes
    the same row, so it comes strictly before or after the request, never between check and run."""
    import threading
    import time

    from django.db import connection, transaction

    from opsconsole.environments.models import Environment

    outcome = {}

    def lock_by_hand():
        try:
            outcome["lock"] = lock(staging, users["deployer"], "maintenance")
        finally:
            connection.close()

    with transaction.atomic():
        Environment.objects.select_for_update(no_key=True).get(pk=staging.pk)  # what a deploy request holds
        locker = threading.Thread(target=lock_by_hand)
        locker.start()
        deadline = time.monotonic() + 20
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is read once per transaction otherwise
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert locker.is_alive(), "the lock did not wait for the row"
        assert not EnvironmentLock.objects.exists()
    locker.join(20)
    assert outcome["lock"].reason == "maintenance"
