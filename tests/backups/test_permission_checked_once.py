"""Backup now, Verify and Restore: the backups service checks the permission once and launches
without checking it again; the views only call the service, whose refusal is what the user sees."""

from __future__ import annotations

from unittest import mock

import pytest

from backups import services
from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from opsconsole.access import permissions
from opsconsole.runs import services as run_services
from opsconsole.runs.models import Run
from opsconsole.runs.services import NotPermitted
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(staging):
    return BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="nightly", source_identifier="db", copy_to_dr=False
    )


@pytest.fixture
def backup(policy):
    return Backup.objects.create(
        policy=policy,
        environment=policy.environment,
        kind=policy.kind,
        region="us-east-1",
        status=BackupStatus.AVAILABLE,
    )


@pytest.fixture
def checks(settings):
    """Counts the permission checks of the backups service and of launch()."""
    settings.OPSCONSOLE_QUEUE = "inline"  # the queue check passes; nothing runs before commit
    with (
        mock.patch.object(services, "allowed", wraps=permissions.allowed) as by_service,
        mock.patch.object(run_services, "allowed", wraps=permissions.allowed) as by_launch,
    ):
        yield lambda: (by_service.call_count, by_launch.call_count)


def test_backup_now_checks_the_permission_once(users, policy, checks):
    response = client_for(users["backup_operator"]).post(f"/backups/policies/{policy.pk}/run/")
    assert response.status_code == 302 and Run.objects.filter(kind="backups.rds_snapshot").exists()
    assert checks() == (1, 0)


def test_verify_checks_the_permission_once(users, backup, checks):
    response = client_for(users["backup_operator"]).post(f"/backups/{backup.pk}/verify/")
    assert response.status_code == 302 and Run.objects.filter(kind="backups.verify").exists()
    assert checks() == (1, 0)


def test_a_scheduled_backup_checks_nothing(policy, checks):
    services.request_backup(policy, None, scheduled=True)
    assert checks() == (0, 0)


@pytest.mark.parametrize(
    ("request_it", "message"),
    [
        (lambda u, p, b: services.request_backup(p, u), "You do not have permission to run backups in staging."),
        (
            lambda u, p, b: services.request_verification(b, u),
            "You do not have permission to start Verify a restore in staging.",
        ),
        (
            lambda u, p, b: services.request_restore(b, u, "db-copy", "db-copy"),
            "You do not have permission to restore backups in staging.",
        ),
    ],
)
def test_the_service_refuses_a_viewer_and_changes_nothing(users, policy, backup, request_it, message):
    with pytest.raises(NotPermitted) as refused:
        request_it(users["viewer"], policy, backup)
    assert str(refused.value) == message
    assert not Run.objects.exists()


@pytest.mark.parametrize("path", ["/backups/policies/{policy}/run/", "/backups/{backup}/verify/"])
def test_the_page_answers_a_viewer_403(users, policy, backup, path):
    response = client_for(users["viewer"]).post(path.format(policy=policy.pk, backup=backup.pk))
    assert response.status_code == 403
    assert not Run.objects.exists()
