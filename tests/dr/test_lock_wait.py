"""A failover takes the environment's lock like any change. When something holds it at approval
time, the run's log and the DR page say what the failover waits for and how to start it sooner."""

from unittest import mock

import pytest

from dr import services
from dr.models import Operation
from opsconsole.runs import runner
from opsconsole.runs.models import EnvironmentLock, Level, Run, Status
from tests.conftest import client_for, make_user
from tests.dr.conftest import offline_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(staging):
    return offline_plan(staging)


@pytest.fixture
def no_execution():
    with (
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.approvals.dispatch_safely") as dispatched,
    ):
        yield dispatched


def approved_failover(plan, users) -> Run:
    dave = make_user("dave", "dr_operator", plan.environment)
    run = services.request(plan, users["dr_operator"], Operation.FAILOVER, reason="region down", typed_name="staging")
    services.decide(run, dave, "approve")
    run.refresh_from_db()
    return run


def test_an_approved_failover_says_which_run_holds_the_lock(plan, users, no_execution):
    deploy = Run.objects.create(
        kind="deployments.deploy", environment=plan.environment, status=Status.RUNNING, requested_by_name="dana"
    )
    lock = EnvironmentLock.acquire(plan.environment, run=deploy)

    run = approved_failover(plan, users)

    assert run.status == Status.QUEUED
    warning = run.events.get(level=Level.WARNING)
    assert warning.message == (
        f"staging is locked by run #{deploy.pk} (Deploy, running since {lock.acquired_at:%H:%M:%S} UTC, requested by "
        f"dana): this failover waits until it ends. Cancel run #{deploy.pk} to start sooner."
    )
    assert warning.data == {"waiting_for": "environment_lock"}
    page = client_for(users["dr_operator"]).get("/dr/").content.decode()
    assert f"Run #{run.pk}</a> is queued: staging is locked by run #{deploy.pk} (Deploy" in page

    # The worker that picks it up leaves it queued, and says so too.
    assert runner.execute(run.pk) == "waiting"
    assert run.events.order_by("-seq").first().message == f"Waiting: the environment is locked by run #{deploy.pk}."


def test_a_lock_held_by_hand_and_runs_queued_before_it_are_named(plan, users, no_execution):
    EnvironmentLock.acquire(plan.environment, held_by="dana", reason="investigating")
    ahead = Run.objects.create(kind="deployments.deploy", environment=plan.environment, status=Status.QUEUED)

    run = approved_failover(plan, users)

    warning = run.events.get(level=Level.WARNING).message
    assert warning.startswith("staging is locked by hand by dana (investigating) since ")
    assert "this failover waits until someone unlocks it on the environment's page." in warning
    assert warning.endswith(f"Queued before it: run #{ahead.pk}.")


def test_nothing_is_said_when_nothing_holds_it_back(plan, users, no_execution):
    run = approved_failover(plan, users)
    assert not run.events.filter(level=Level.WARNING).exists()
    assert "dr-waiting" not in client_for(users["dr_operator"]).get("/dr/").content.decode()
