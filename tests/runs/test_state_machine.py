"""The run state machine refuses what it forbids, with a clear error, and changes nothing."""

import pytest

from opsconsole.runs.models import TERMINAL, TRANSITIONS, EnvironmentLock, IllegalTransition, Run, Status

pytestmark = pytest.mark.django_db


def make_run(status: str, **fields) -> Run:
    return Run.objects.create(kind="maintenance.selftest", status=status, **fields)


def test_an_illegal_transition_is_refused_with_a_clear_error():
    run = make_run(Status.SUCCEEDED)
    with pytest.raises(IllegalTransition, match=rf"Run #{run.pk} cannot go from succeeded to running\."):
        run.transition(Status.RUNNING)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_are_final(terminal):
    run = make_run(terminal)
    for target in Status.values:
        with pytest.raises(IllegalTransition):
            run.transition(target)


def test_a_queued_run_cannot_skip_to_succeeded():
    run = make_run(Status.QUEUED)
    with pytest.raises(IllegalTransition):
        run.transition(Status.SUCCEEDED)
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_a_stale_copy_cannot_overwrite_a_newer_state():
    run = make_run(Status.RUNNING)
    stale = Run.objects.get(pk=run.pk)
    run.transition(Status.FAILED, error="boom")
    with pytest.raises(IllegalTransition, match="from failed"):
        stale.transition(Status.SUCCEEDED)
    assert Run.objects.get(pk=run.pk).status == Status.FAILED


def test_rolling_back_ends_rolled_back_and_a_terminal_state_frees_the_lock(staging):
    run = make_run(Status.RUNNING, environment=staging)
    EnvironmentLock.acquire(staging, run=run)
    run.transition(Status.ROLLING_BACK)
    assert EnvironmentLock.objects.filter(run=run).exists()
    run.transition(Status.ROLLED_BACK)
    assert run.finished_at is not None
    assert not EnvironmentLock.objects.filter(environment=staging).exists()


def test_every_state_has_a_transition_table_entry():
    assert set(TRANSITIONS) == set(Status.values)
