"""Run kinds that belong to the core: the worker self-test, which proves the whole path
(request -> queue -> worker -> live log -> outcome) and is what the browser test watches."""

from __future__ import annotations

import time

from opsconsole.runs.context import RunContext, RunFailed
from opsconsole.runs.registry import EnvironmentUse, run_kind

MAX_LINES = 50_000


def validate_selftest(params: dict, environment=None) -> dict:
    try:
        lines = int(params.get("lines", 20))
        delay_ms = int(params.get("delay_ms", 100))
    except (TypeError, ValueError):
        raise ValueError("lines and delay_ms must be whole numbers.") from None
    if not 1 <= lines <= MAX_LINES:
        raise ValueError(f"lines must be between 1 and {MAX_LINES}.")
    if not 0 <= delay_ms <= 10_000:
        raise ValueError("delay_ms must be between 0 and 10000.")
    return {"lines": lines, "delay_ms": delay_ms, "fail": bool(params.get("fail", False))}


@run_kind(
    "maintenance.selftest",
    "Worker self-test",
    environment=EnvironmentUse.OPTIONAL,
    validate=validate_selftest,
)
def selftest(ctx: RunContext) -> dict:
    lines, delay = ctx.params["lines"], ctx.params["delay_ms"] / 1000
    for number in range(1, lines + 1):
        if number % 100 == 1:  # a cancel is noticed within 100 lines; no query per line
            ctx.check_cancel()
        ctx.log.info("self-test line %d of %d", number, lines)
        if delay:
            time.sleep(delay)
    if ctx.params["fail"]:
        raise RunFailed("The self-test was asked to fail.")
    return {"lines": lines}
