"""The audit log's periodic sweep: the counts of coalesced refusals, once their minute is over."""

from __future__ import annotations

from celery import shared_task

from opsconsole.audit import refusals


@shared_task(name="opsconsole.audit.tasks.flush_refusals", ignore_result=True)
def flush_refusals() -> int:
    return refusals.flush_finished()
