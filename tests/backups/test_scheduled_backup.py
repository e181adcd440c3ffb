"""A policy's crontab fires for real: Celery beat (database scheduler) sends it, a Celery worker
runs the backup against the sandbox AWS, and a good backup is recorded."""

import pytest

from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from opsconsole.runs.models import Run, Status
from tests.integration.conftest import MANAGE, clean_queues, processes, wait_for  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_beat_fires_a_policy_schedule_and_a_worker_takes_the_backup(staging, stack, processes):  # noqa: F811
    policy = BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.RDS_SNAPSHOT,
        name="every minute",
        schedule="* * * * *",
        source_identifier=stack.environments["staging"].db_instance,
        copy_to_dr=False,
    )
    processes.celery_worker(BACKUP_POLL_MS="50")
    processes.start("beat", MANAGE + ["run_scheduler"], "celery")

    def backed_up():
        run = Run.objects.filter(kind="backups.rds_snapshot").first()
        assert run is None or run.status in (Status.QUEUED, Status.RUNNING, Status.SUCCEEDED), (
            run.error,
            list(run.events.values_list("message", flat=True)),
        )
        return Backup.objects.filter(policy=policy, status=BackupStatus.AVAILABLE).first()

    backup = wait_for(backed_up, 150, "the scheduled backup to succeed", interval=1)
    run = Run.objects.filter(kind="backups.rds_snapshot").order_by("id").first()
    assert run.status == Status.SUCCEEDED
    assert run.requested_by_name == "system" and run.requested_by is None
    assert backup.identifier.startswith("opsconsole-staging-")
