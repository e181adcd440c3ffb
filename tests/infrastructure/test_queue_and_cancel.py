"""One Terraform run per workspace at a time: a second one queues behind the first; cancel
interrupts Terraform itself."""

import threading
import time

import pytest
from django.db import connection

from infrastructure import services
from infrastructure.models import Plan, Workspace
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import cancel
from tests.infrastructure.conftest import use_stack
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PROVISIONER_SECONDS = 240
CANCEL_DEADLINE_SECONDS = 120


@pytest.fixture
def slow(terraform_root, staging):
    use_stack(terraform_root, "slow")
    return Workspace.objects.create(environment=staging, name="staging")


def approve_in_background(apply, approver) -> threading.Thread:
    """Approving executes the apply (the test queue is inline): do it on another thread."""

    def approve():
        try:
            services.decide(apply, approver, "approve")
        finally:
            connection.close()

    thread = threading.Thread(target=approve)
    thread.start()
    return thread


def test_cancel_interrupts_terraform_and_records_the_outcome(users, slow, terraform_root, settings):
    # The provisioner sleeps PROVISIONER_SECONDS, and the console would kill Terraform only that
    # long after the cancel: an apply that ends within CANCEL_DEADLINE_SECONDS of the cancel was
    # stopped by Terraform's graceful stop, however slowly a loaded machine got there.
    (terraform_root / "long.tfvars").write_text(f"seconds = {PROVISIONER_SECONDS}\n")
    slow.var_file = "long.tfvars"
    slow.save()
    settings.TERRAFORM_CANCEL_GRACE_SECONDS = PROVISIONER_SECONDS
    plan = Plan.objects.get(run=services.request_plan(slow.environment, users["deployer"]))
    apply = services.request_apply(plan, users["deployer"])
    thread = approve_in_background(apply, users["approver"])
    provisioning = apply.events.filter(message__contains="Provisioning with 'local-exec'")
    wait_for(provisioning.exists, 60, "the provisioner to start")

    started = time.monotonic()
    cancel(Run.objects.get(pk=apply.pk), users["deployer"])
    thread.join(timeout=CANCEL_DEADLINE_SECONDS)
    assert not thread.is_alive(), f"the apply still ran {CANCEL_DEADLINE_SECONDS} s after the cancel"
    print(f"\nthe apply ended {time.monotonic() - started:.1f} s after the cancel")
    apply.refresh_from_db()
    assert apply.status == Status.CANCELED
    assert (
        apply.events.filter(message__contains="Terraform was interrupted").exists()
        or apply.events.filter(message__contains="Terraform stopped gracefully").exists()
    )
    assert AuditEvent.objects.filter(action="terraform.apply.canceled", target=f"run:{apply.pk}").exists()
    assert not apply.environment.__class__.objects.filter(pk=apply.environment_id, lock__isnull=False).exists()


def test_a_second_run_on_the_same_workspace_queues_until_the_first_ends(users, slow):
    slow.var_file = "quick.tfvars"
    slow.save()
    plan = Plan.objects.get(run=services.request_plan(slow.environment, users["deployer"]))
    apply = services.request_apply(plan, users["deployer"])
    thread = approve_in_background(apply, users["approver"])
    wait_for(lambda: Run.objects.get(pk=apply.pk).status == Status.RUNNING, 60, "the apply to start")

    second = services.request_plan(slow.environment, users["deployer"])
    second.refresh_from_db()
    assert second.status == Status.QUEUED
    assert second.events.get().message == f"Waiting: the environment is locked by run #{apply.pk}."

    thread.join(timeout=60)
    apply.refresh_from_db()
    second.refresh_from_db()
    assert apply.status == Status.SUCCEEDED, apply.error
    assert second.status == Status.SUCCEEDED, second.error
    assert second.started_at >= apply.finished_at
