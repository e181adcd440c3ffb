"""`manage.py start_run` creates the same Run the UI would, audited, and can wait for it."""

import pytest
from django.core.management import CommandError, call_command

from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_starts_a_run_named_after_the_shell_user_and_waits_for_it(capsys, staging):
    call_command(
        "start_run",
        "maintenance.selftest",
        "--environment",
        "staging",
        "--param",
        "lines=2",
        "--param",
        "delay_ms=0",
        "--wait",
    )
    run = Run.objects.get()
    assert run.status == Status.SUCCEEDED
    assert run.environment == staging
    assert run.params == {"lines": 2, "delay_ms": 0, "fail": False}
    assert run.requested_by_name.startswith("cli:")
    output = capsys.readouterr().out
    assert "self-test line 2 of 2" in output
    assert f"run #{run.pk} ended succeeded" in output
    requested = AuditEvent.objects.get(action="maintenance.selftest.requested")
    assert requested.actor_name == run.requested_by_name


def test_waiting_on_a_failing_run_exits_non_zero():
    with pytest.raises(CommandError, match="failed: The self-test was asked to fail"):
        call_command("start_run", "maintenance.selftest", "--param", "fail=true", "--param", "delay_ms=0", "--wait")


def test_as_a_user_it_applies_that_users_permissions(users, staging):
    with pytest.raises(CommandError, match="You do not have permission to start Worker self-test in staging"):
        call_command("start_run", "maintenance.selftest", "--environment", "staging", "--as", "vera")
    assert not Run.objects.exists()
    refused = AuditEvent.objects.get(action="runs.start_run.refused")
    assert (refused.actor, refused.environment, refused.outcome) == (users["viewer"], "staging", "denied")


def test_bad_input_is_refused_clearly():
    with pytest.raises(CommandError, match="no environment called 'nowhere'"):
        call_command("start_run", "maintenance.selftest", "--environment", "nowhere")
    with pytest.raises(CommandError, match="--param expects key=value"):
        call_command("start_run", "maintenance.selftest", "--param", "lines")
    with pytest.raises(CommandError, match="no run kind called 'nope'"):
        call_command("start_run", "nope")
    assert not Run.objects.exists()
