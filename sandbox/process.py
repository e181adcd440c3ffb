"""Starting the sandbox AWS (the moto server, sandbox/server.py) as a child process. No Django here:
the console's `make run`, the benchmarks and their child processes all use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_STALE_READS = "0.2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_aws(port: int, env: dict[str, str] | None = None, quiet: bool = False) -> tuple[subprocess.Popen, str]:
    """The moto server on loopback, once it answers; returns it and its endpoint. `env` replaces
    the child's environment (e.g. SANDBOX_ROLLOUT_SECONDS); without it the child inherits ours,
    with a small chance of stale ECS reads unless SANDBOX_STALE_READS says otherwise, so the demo
    meets eventual consistency as AWS has it. `quiet` drops its output."""
    if env is None:
        env = {"SANDBOX_STALE_READS": DEMO_STALE_READS, **os.environ}
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return process, endpoint
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox AWS (moto server) did not start")
