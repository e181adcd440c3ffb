"""Only the guarded path (dr.services) may launch a DR run.

The generic ways to start a run (POST /api/v1/runs, the start_run command) go through launch()
too; the DR run kinds' validator refuses them unless dr.services opened this context, so a token
with the `dr` scope cannot skip the reason, the typed name and the second person. The job checks
again that its DROperation exists and was approved before it touches AWS.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_guarded: ContextVar[bool] = ContextVar("dr_guarded_launch", default=False)


@contextmanager
def guarded_launch():
    token = _guarded.set(True)
    try:
        yield
    finally:
        _guarded.reset(token)


def validate(params: dict) -> dict:
    if not _guarded.get():
        raise ValueError("DR runs start only from the DR page: request, then a second DR operator approves.")
    return params
