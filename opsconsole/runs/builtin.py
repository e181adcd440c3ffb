"""Run kinds that belong to the core: the worker self-test, which proves the whole path
(request -> queue -> worker -> live log -> outcome) and is what the browser test watches."""

from __future__ import annotations

import time

from opsconsole.runs.context import RunContext, RunFailed
from opsconsole.runs.registry import EnvironmentUse, run_kind

MAX_LINES = 50_000
MAX_SECONDS = 3600  # a self-test proves the path; it has no reason to hold a worker longer
CANCEL_CHECK_SECONDS = 1.0


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
    if lines * delay_ms > MAX_SECONDS * 1000:
        seconds = lines * delay_ms // 1000
        raise ValueError(f"lines x delay_ms would run for {seconds} s; a self-test runs an hour at most.")
    return {"lines": lines, "delay_ms": delay_ms, "fail": bool(params.get("fail", False))}


@run_kind(
    "maintenance.selftest",
    "Worker self-test",
    environment=EnvironmentUse.OPTIONAL,
    validate=validate_selftest,
)
def selftest(ctx: RunContext) -> dict:
    lines, delay = ctx.params["lines"], ctx.params["delay_ms"] / 1000
    checked = time.monotonic()
    ctx.check_cancel()
    for number in range(1, lines + 1):
        ctx.log.info("self-test line %d of %d", number, lines)
        until = time.monotonic() + delay
        while True:
            # A cancel is noticed within about a second, with one query a second at most.
            if time.monotonic() - checked >= CANCEL_CHECK_SECONDS:
                ctx.check_cancel()
                checked = time.monotonic()
            left = until - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, CANCEL_CHECK_SECONDS / 2))
    if ctx.params["fail"]:
        raise RunFailed("The self-test was asked to fail.")
    return {"lines": lines}
