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

pytestmark = pytest.mark.django_db(transaction=True)


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


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_cancel_interrupts_terraform_and_records_the_outcome(users, slow):
    plan = Plan.objects.get(run=services.request_plan(slow.environment, users["deployer"]))
    apply = services.request_apply(plan, users["deployer"])
    thread = approve_in_background(apply, users["approver"])
    wait_for(lambda: apply.events.filter(message__contains="Provisioning with 'local-exec'").exists())

    started = time.monotonic()
    cancel(Run.objects.get(pk=apply.pk), users["deployer"])
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 15  # not the 30 s the provisioner would sleep
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
    wait_for(lambda: Run.objects.get(pk=apply.pk).status == Status.RUNNING)

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
