"""The DR stack through Terraform: the environment's Terraform code (its infrastructure Workspace:
directory, backend config, secret variables) in the DR plan's Terraform workspace, with the DR plan's
var file. Readiness plans it and expects no changes; a failover applies it.

Used only when the DR plan names a var file and the Terraform runner exists (the infrastructure
app is installed and the environment has a Terraform workspace). Terraform itself runs in an
infrastructure.terraform Session, as the Terraform run kinds do: the same init and workspace
selection, clean environment, secrets as TF_VAR_* (never argv), output streamed line by line,
graceful stop on cancel.
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.apps import apps

from dr.models import DRPlan
from infrastructure.terraform import Session, TerraformError  # no Django: safe without the app

EXPECTED_CHANGES: frozenset[str] = frozenset()  # none: any change makes the DR stack not ready


class DRTerraformError(Exception):
    """Terraform could not plan or apply the DR stack; the message is for the user."""


def stack_params(plan: DRPlan) -> dict | None:
    """The DR stack's Terraform definition, copied into a run at launch; None when there is none
    (no var file, no infrastructure app, or no Terraform workspace for the environment)."""
    if not plan.terraform_var_file or not apps.is_installed("infrastructure"):
        return None
    from infrastructure.models import Workspace

    workspace = Workspace.objects.filter(environment=plan.environment_id).first()
    if workspace is None:
        return None
    return {
        "directory": workspace.directory,
        "environment_id": plan.environment_id,
        "workspace": plan.terraform_workspace or f"{workspace.name}-dr",
        "var_file": plan.terraform_var_file,
        "backend_config": workspace.backend_config,
        "secret_variables": dict(workspace.secret_variables),
    }


def missing_runner(plan: DRPlan) -> str:
    """Why a DR plan's var file cannot be used, or "" when it can."""
    if not plan.terraform_var_file:
        return "The DR plan names no Terraform var file."
    if not apps.is_installed("infrastructure"):
        return "The Terraform runner (the infrastructure app) is not installed."
    if stack_params(plan) is None:
        return (
            f"The DR plan names {plan.terraform_var_file}, but {plan.environment} has no Terraform workspace; "
            "an admin adds one (Terraform workspaces)."
        )
    return ""


class DRStack:
    """One DR stack's Terraform, ready to plan or apply. `on_line` gets Terraform's output lines,
    `add_secret` every secret value (to redact), `should_stop` is polled to cancel."""

    def __init__(
        self,
        params: dict,
        *,
        on_line: Callable[[str], None] | None = None,
        add_secret: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        from infrastructure import conf

        self.params = params
        # Per environment: two plans naming the same workspace may use other code or backends.
        data_name = f"dr-{params.get('environment_id', 0)}-{params['workspace']}"
        try:
            self.session = conf.session(
                params, params["workspace"], data_name, on_line=on_line, should_stop=should_stop
            )
        except TerraformError as exc:
            raise DRTerraformError(str(exc)) from None
        directory, self.data_dir = self.session.terraform.directory, self.session.terraform.data_dir
        if not (directory / params["var_file"]).is_file():
            raise DRTerraformError(f"The DR var file {params['var_file']} is not in {directory}.")
        if add_secret is not None:
            for secret in self.session.secrets:
                add_secret(secret)

    @contextmanager
    def _prepared(self) -> Iterator[Session]:
        """The session, initialised and in its workspace, alone on its data directory on this
        machine (a scheduled readiness check and a failover share it); Terraform's errors come out
        as DRTerraformError."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".opsconsole.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self.session.init()
                self.session.select_workspace()
                yield self.session
            except TerraformError as exc:
                raise DRTerraformError(str(exc)) from None
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def changes(self) -> list[dict]:
        """Plan the DR stack with its var file (without taking the state lock: it only reads) and
        return its changes as [{"address", "action"}] (outputs as "output.<name>")."""
        from infrastructure import plans

        with self._prepared() as session, tempfile.TemporaryDirectory(prefix="dr-plan-") as scratch:
            plan_file = Path(scratch) / "dr.tfplan"
            args = ["plan", "-input=false", "-json", "-lock=false", f"-var-file={self.params['var_file']}"]
            session.run([*args, f"-out={plan_file}"])
            reduced, _ = plans.reduce_plan(session.show(plan_file))
        found = [{"address": c["address"], "action": c["action"]} for c in reduced["resource_changes"]]
        found += [
            {"address": f"output.{name}", "action": change["action"]}
            for name, change in reduced["output_changes"].items()
            if change["action"] != "no-op"
        ]
        return found

    def apply(self) -> dict:
        """Apply the DR stack with its var file; returns add/change/destroy counts from
        Terraform's change summary."""
        with self._prepared() as session:
            args = ["apply", "-input=false", "-auto-approve", "-json", "-lock-timeout=60s"]
            result = session.run([*args, f"-var-file={self.params['var_file']}"])
        summary = {"add": 0, "change": 0, "destroy": 0}
        for line in result.stdout_lines:
            if line.startswith("{") and '"change_summary"' in line:
                try:
                    changes = json.loads(line).get("changes", {})
                except ValueError:
                    continue
                summary = {key: int(changes.get(key, 0)) for key in ("add", "change")}
                summary["destroy"] = int(changes.get("remove", 0))
        return summary


def unexpected(changes: list[dict]) -> list[dict]:
    """The changes readiness does not expect (EXPECTED_CHANGES is empty: all of them)."""
    return [change for change in changes if change["address"] not in EXPECTED_CHANGES]
