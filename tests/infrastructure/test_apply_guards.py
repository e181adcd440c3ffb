"""The apply job's own guards, checked again when it starts whatever was checked at approval:
it applies exactly the saved plan (a plan file whose bytes changed after the plan, even into another
valid plan, is refused by its SHA-256 before Terraform runs), and never a plan that went stale
after it was approved (another apply in the workspace started after the plan was made).

Real Terraform on the fixture stack; the queue is held (runs are queued, not executed, until the
test hands them to the runner) only where the test needs time between an approval and a start."""

from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from infrastructure import jobs, services
from infrastructure.models import Plan
from opsconsole.runs import runner
from opsconsole.runs.models import Run, Status
from tests.infrastructure.conftest import FIXTURES, state_of

pytestmark = pytest.mark.django_db(transaction=True)

NOT_RUN = [jobs.INIT, jobs.SELECT, jobs.APPLY, jobs.OUTPUTS]


def plan_of(workspace, user) -> Plan:
    run = services.request_plan(workspace.environment, user)
    plan = Plan.objects.select_related("run", "workspace").get(run=run)
    assert plan.run.status == Status.SUCCEEDED and plan.has_changes and Path(plan.plan_file).is_file()
    return plan


def step_states(run: Run) -> dict[str, str]:
    return {step["name"]: step["state"] for step in run.steps}


def assert_refused_before_terraform(apply: Run, error: str) -> None:
    apply.refresh_from_db()
    assert apply.status == Status.FAILED
    assert apply.error == error
    states = step_states(apply)
    assert states[jobs.VERIFY] == "failed"
    assert [states[name] for name in NOT_RUN] == ["pending"] * len(NOT_RUN), states  # Terraform never ran
    assert apply.events.filter(message=f"▶ {jobs.APPLY}").count() == 0


@contextmanager
def queue_held(settings):
    """Runs are queued (an approval queues them) but no worker takes them until the test does."""
    settings.OPSCONSOLE_QUEUE = "celery"
    with (
        mock.patch("opsconsole.runs.services.check_queue"),
        mock.patch("opsconsole.runs.approvals.check_queue"),
        mock.patch("opsconsole.runs.dispatch.dispatch"),
    ):
        yield


def test_a_plan_file_replaced_by_another_valid_plan_is_refused_and_nothing_is_applied(users, workspace, terraform_root):
    approved = plan_of(workspace, users["deployer"])
    # Another plan of the same code, made with a different value, then the code put back as it was:
    # only the saved file's bytes tell the two apart.
    (terraform_root / "staging.tfvars").write_text('greeting = "pwned"\n')
    other = plan_of(workspace, users["deployer"])
    (terraform_root / "staging.tfvars").write_bytes((FIXTURES / "stack" / "staging.tfvars").read_bytes())
    Path(approved.plan_file).write_bytes(Path(other.plan_file).read_bytes())

    apply = services.request_apply(approved, users["deployer"])
    services.decide(apply, users["approver"], "approve")

    assert_refused_before_terraform(
        apply, f"The saved plan of run #{approved.run_id} was modified after it was made; refusing to apply."
    )
    assert not state_of(terraform_root).exists()
    workspace.refresh_from_db()
    assert workspace.outputs == {}


def test_a_plan_file_with_one_byte_changed_is_refused_and_nothing_is_applied(users, workspace, terraform_root):
    approved = plan_of(workspace, users["deployer"])
    saved = Path(approved.plan_file)
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0x01
    saved.write_bytes(bytes(data))

    apply = services.request_apply(approved, users["deployer"])
    services.decide(apply, users["approver"], "approve")

    assert_refused_before_terraform(
        apply, f"The saved plan of run #{approved.run_id} was modified after it was made; refusing to apply."
    )
    assert not state_of(terraform_root).exists()


def test_a_plan_that_went_stale_between_approval_and_start_is_refused_by_the_apply_job(
    users, workspace, terraform_root, settings
):
    first, second = plan_of(workspace, users["deployer"]), plan_of(workspace, users["deployer"])
    with queue_held(settings):
        waiting = services.request_apply(first, users["deployer"])
        services.decide(waiting, users["approver"], "approve")  # the service's check passes: nothing applied yet
        waiting.refresh_from_db()
        assert waiting.status == Status.QUEUED

        # Before a worker takes it, another apply in the workspace starts (after the first plan) and succeeds.
        newer = services.request_apply(second, users["deployer"])
        services.decide(newer, users["approver"], "approve")
        assert runner.execute(newer.pk) == Status.SUCCEEDED
        state = state_of(terraform_root).read_bytes()

        assert runner.execute(waiting.pk) == Status.FAILED

    assert_refused_before_terraform(
        waiting,
        f"The plan from run #{first.run_id} is stale: apply run #{newer.pk} changed the workspace after it was made. "
        "Plan again.",
    )
    assert state_of(terraform_root).read_bytes() == state  # the state is the newer apply's, untouched
