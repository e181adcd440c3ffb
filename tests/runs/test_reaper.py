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


@pytest.mark.django_db(transaction=True)
def test_what_a_lost_worker_left_is_told_before_the_next_waiting_run_starts(staging, settings):
    settings.RUN_LOST_AFTER_SECONDS = 60
    order = []
    lost = Run.objects.create(
        kind="maintenance.selftest",
        status=Status.RUNNING,
        environment=staging,
        worker="w1",
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    EnvironmentLock.objects.create(environment=staging, run=lost, held_by="w1", reason="run")
    waiting = Run.objects.create(kind="maintenance.selftest", status=Status.QUEUED, environment=staging)

    def look(run):
        order.append(("report", run.pk))
        return "the service still runs v1", {"task_definition": "app:1"}

    with (
        mock.patch.dict("opsconsole.runs.reaper.LOST_HANDLERS", {"maintenance.selftest": look}),
        mock.patch("opsconsole.runs.dispatch.dispatch", side_effect=lambda pk, *a, **k: order.append(("dispatch", pk))),
    ):
        assert reap()["reaped"] == [lost.pk]
    assert order == [("report", lost.pk), ("dispatch", waiting.pk)]
    lost.refresh_from_db()
    assert lost.status == Status.ERRORED
    assert lost.result["worker_lost"] == {"task_definition": "app:1"}
