"""The reaper re-sends queued runs whose message may be lost, but not over and over."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.reaper import reap

pytestmark = pytest.mark.django_db


def queued(minutes_ago: int, dispatched_minutes_ago: int | None, environment=None) -> Run:
    now = timezone.now()
    return Run.objects.create(
        kind="maintenance.selftest",
        status=Status.QUEUED,
        environment=environment,
        created_at=now - timedelta(minutes=minutes_ago),
        dispatched_at=None if dispatched_minutes_ago is None else now - timedelta(minutes=dispatched_minutes_ago),
    )


def test_a_long_queued_run_is_resent_at_most_every_few_minutes(settings):
    settings.RUN_RESEND_AFTER_SECONDS = 300
    stale = queued(30, dispatched_minutes_ago=10)
    fresh = queued(30, dispatched_minutes_ago=1)
    never = queued(30, dispatched_minutes_ago=None)
    young = queued(0, dispatched_minutes_ago=None)
    with mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch:
        result = reap()
    assert sorted(result["resent"]) == sorted([stale.pk, never.pk])
    assert sorted(call.args[0] for call in dispatch.call_args_list) == sorted([stale.pk, never.pk])
    stale.refresh_from_db()
    assert stale.dispatched_at > timezone.now() - timedelta(seconds=5)
    with mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch:
        assert reap()["resent"] == []
    assert fresh.pk not in result["resent"] and young.pk not in result["resent"]


def test_a_run_waiting_on_a_held_lock_is_not_resent(staging):
    waiting = queued(30, dispatched_minutes_ago=60, environment=staging)
    EnvironmentLock.acquire(staging, held_by="ada", reason="maintenance")
    with mock.patch("opsconsole.runs.dispatch.dispatch") as dispatch:
        assert waiting.pk not in reap()["resent"]
    dispatch.assert_not_called()
