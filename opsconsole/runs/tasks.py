"""Queue entry points. Celery and RQ call the same functions; the message is the run id."""

from __future__ import annotations

from celery import shared_task

from opsconsole.runs import idempotency, reaper, runner


@shared_task(name="opsconsole.runs.tasks.execute_run", acks_late=True, ignore_result=True)
def execute_run(run_id: int) -> str:
    return runner.execute(run_id)


def execute_run_rq(run_id: int) -> str:
    return runner.execute(run_id)


@shared_task(name="opsconsole.runs.tasks.reap_runs", ignore_result=True)
def reap_runs() -> dict:
    return reaper.reap()


@shared_task(name="opsconsole.runs.tasks.forget_idempotency_keys", ignore_result=True)
def forget_idempotency_keys() -> int:
    return idempotency.forget_expired()
