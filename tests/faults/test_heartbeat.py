"""A heartbeat that fails on a dropped database connection skips a beat and carries on: before,
the heartbeat thread died at the first error, and the reaper later ended a run that was still going."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.models import QuerySet
from django.utils import timezone

from opsconsole.runs import runner
from opsconsole.runs.models import Run, Status
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_heartbeats_carry_on_after_the_database_drops_the_connection(settings):
    settings.RUN_HEARTBEAT_SECONDS = 0.05
    long_ago = timezone.now() - timedelta(hours=1)
    run = Run.objects.create(kind="maintenance.selftest", status=Status.RUNNING, heartbeat_at=long_ago)
    failures = []
    update = QuerySet.update

    def drops_the_first_two_beats(queryset, **fields):
        if "heartbeat_at" in fields and len(failures) < 2:
            failures.append(fields)
            raise OperationalError("server closed the connection unexpectedly")
        return update(queryset, **fields)

    with mock.patch.object(QuerySet, "update", drops_the_first_two_beats), runner._heartbeat(run.pk):
        wait_for(
            lambda: Run.objects.filter(pk=run.pk, heartbeat_at__gt=long_ago).exists(), 10, "a heartbeat", interval=0.05
        )
    assert len(failures) == 2
