"""A restore takes the environment's lock (the restore kind locks_environment): it does not start
while the environment is locked by hand or while a deploy holds the lock (it waits in the queue,
saying for whom, and starts when the lock is freed), and while it runs it holds the lock itself,
so another run that needs the lock waits for it to end.

The real parts: a pg_dump backup in the sandbox's S3, the test PostgreSQL to restore into, a real
deploy against the sandbox's ECS, the inline queue, and other runs started from other threads (each
with its own database connection)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from backups import postgres
from backups.models import Restore
from backups.services import request_backup, request_restore
from deployments import ecs
from deployments.services import request_deploy
from opsconsole.environments.services import lock, unlock
from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.services import launch
from tests.backups.conftest import database_exists
from tests.deployments.conftest import releases, staging_aws  # noqa: F401  (a real deploy's fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TARGET = "h6_bk_lock"


@pytest.fixture
def dump(users, pg_policy):
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    return run.backup


@pytest.fixture
def target(scratch_names) -> str:
    scratch_names.append(TARGET)
    return TARGET


def messages(run: Run) -> list[str]:
    return list(run.events.order_by("seq").values_list("message", flat=True))


def holder(environment) -> int | None:
    """The run holding the environment's lock (None: free, or held by hand)."""
    return EnvironmentLock.objects.filter(environment=environment).values_list("run_id", flat=True).first()


def in_thread(work):
    """Run work() on another thread with its own database connection; return what it returned."""
    result: dict = {}

    def body() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 (re-raised on the caller's thread)
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, result


def test_a_restore_waits_while_the_environment_is_locked_by_hand(users, staging, dump, target):
    lock(staging, users["admin"], "schema change window")

    run = request_restore(dump, users["backup_operator"], target, target)

    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.started_at is None
    assert messages(run) == ["Waiting: the environment is locked by ada (schema change window)."]
    assert not database_exists(target)
    assert Restore.objects.get(run=run).target == target

    unlock(staging, users["admin"])  # starts what waited
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert database_exists(target)
    assert holder(staging) is None and not EnvironmentLock.objects.filter(environment=staging).exists()


def test_a_restore_waits_for_a_running_deploy(users, staging_aws, releases, dump, target, monkeypatch):  # noqa: F811
    """While a deploy holds the lock, a restore waits; it starts when the deploy ends."""
    deploying, finish_deploy = threading.Event(), threading.Event()
    describe_service = ecs.describe_service

    def held_mid_deploy(*args, **kwargs):
        if not deploying.is_set():
            deploying.set()  # the deploy is running and holds the lock
            assert finish_deploy.wait(60), "the test never let the deploy finish"
        return describe_service(*args, **kwargs)

    monkeypatch.setattr(ecs, "describe_service", held_mid_deploy)
    deployer, result = in_thread(lambda: request_deploy(staging_aws, releases["v1.1.0"], users["deployer"]))
    try:
        assert deploying.wait(60), "the deploy did not start"
        deploy = Run.objects.get(kind="deployments.deploy")
        assert deploy.status == Status.RUNNING and holder(staging_aws) == deploy.pk

        restore = request_restore(dump, users["backup_operator"], target, target)

        restore.refresh_from_db()
        assert restore.status == Status.QUEUED and restore.started_at is None
        assert messages(restore) == [f"Waiting: the environment is locked by run #{deploy.pk}."]
        assert not database_exists(target)
    finally:
        finish_deploy.set()
        deployer.join(120)
    assert "error" not in result, result.get("error")

    # The deploy's end freed the lock and started the restore that waited for it.
    deploy.refresh_from_db()
    restore.refresh_from_db()
    assert deploy.status == Status.SUCCEEDED, deploy.error
    assert restore.status == Status.SUCCEEDED, restore.error
    assert restore.started_at >= deploy.finished_at
    assert database_exists(target)


def test_a_restore_holds_the_lock_while_it_runs_so_another_run_waits(users, staging, dump, target, monkeypatch):
    seen: dict = {}
    create_database = postgres.create_database

    def meanwhile(conn, name):
        # The restore is running: who holds the lock, and what happens to a run that needs it?
        seen["holder"] = holder(staging)
        thread, result = in_thread(
            lambda: launch(
                "maintenance.selftest",
                principal=users["admin"],
                environment=staging,
                params={"lines": 1, "delay_ms": 0},
            )
        )
        thread.join(30)
        assert "error" not in result, result.get("error")
        seen["other"] = Run.objects.get(pk=result["value"].pk)
        seen["other_said"] = messages(seen["other"])
        return create_database(conn, name)

    monkeypatch.setattr(postgres, "create_database", meanwhile)
    restore = request_restore(dump, users["backup_operator"], target, target)

    restore.refresh_from_db()
    assert restore.status == Status.SUCCEEDED, restore.error
    assert seen["holder"] == restore.pk
    other = seen["other"]
    assert other.status == Status.QUEUED and other.started_at is None
    assert seen["other_said"] == [f"Waiting: the environment is locked by run #{restore.pk}."]

    # It started when the restore ended, and ran.
    other.refresh_from_db()
    assert other.status == Status.SUCCEEDED, other.error
    assert other.started_at >= restore.finished_at
    assert holder(staging) is None and not EnvironmentLock.objects.filter(environment=staging).exists()
