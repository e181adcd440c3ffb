"""The Terraform run kinds: plan, apply (exactly a saved, approved plan) and the drift check.

Every kind takes the environment's lock, so one Terraform run per workspace executes at a time
and later ones wait in `queued`. Terraform's JSON log streams into run events as it arrives;
the plan's JSON is reduced and masked before it is stored (see plans.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infrastructure import conf, plans, policy
from infrastructure.models import Drift, Plan, Purpose, Workspace
from infrastructure.terraform import Interrupted, TerraformError, parse_json_line
from opsconsole.access.models import Action
from opsconsole.runs.context import Canceled, RunContext, RunFailed
from opsconsole.runs.models import Run, Status
from opsconsole.runs.registry import run_kind

CHECK = "Check the code"
INIT = "terraform init"
SELECT = "Select the workspace"
PLAN = "terraform plan"
SHOW = "Read the plan"
VERIFY = "Check the plan is current"
APPLY = "terraform apply"
OUTPUTS = "Read the outputs"
LEVELS = {"error": "error", "warn": "warning", "warning": "warning", "debug": "debug"}
STALE_MARKERS = ("Saved plan is stale", "saved plan is stale")


def workspace_params(workspace: Workspace) -> dict:
    """The workspace definition, copied into the run at launch."""
    return {
        "workspace": workspace.pk,
        "workspace_name": workspace.name,
        "directory": workspace.directory,
        "var_file": workspace.var_file,
        "backend_config": workspace.backend_config,
        "secret_variables": dict(workspace.secret_variables),
        "approval_ttl_minutes": workspace.environment.approval_ttl_minutes,
    }


def code_sha256(directory: Path) -> str:
    """A fingerprint of the code and var files a plan was made from."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in (".tf", ".tfvars", ".tfbackend", ".hcl") or path.name.endswith(".tf.json"):
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class TerraformJob:
    """What every Terraform run kind shares: the session, the log stream, init and workspace."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.p = ctx.params
        self.workspace = Workspace.objects.select_related("environment").get(pk=self.p["workspace"])
        if self.workspace.environment_id != ctx.run.environment_id:
            raise RunFailed(f"Workspace {self.workspace.name} is not {ctx.run.environment}'s; nothing was run.")
        name = self.p["workspace_name"]
        try:
            self.session = conf.session(self.p, name, name, on_line=self.log_line, should_stop=self.should_stop)
        except TerraformError as exc:
            raise RunFailed(str(exc)) from None
        for secret in self.session.secrets:
            ctx.add_secret(secret)
        self.directory = self.session.terraform.directory

    def should_stop(self) -> bool:
        return Run.objects.filter(pk=self.ctx.run.pk, cancel_requested=True).exists()

    def log_line(self, line: str) -> None:
        event = parse_json_line(line)
        if event is None:
            if line.strip():
                self.ctx.log.info("%s", line)
            return
        level = LEVELS.get(event.get("@level", "info"), "info")
        data = {key: event[key] for key in ("type", "hook", "change", "changes", "diagnostic") if key in event}
        getattr(self.ctx.log, level if level != "warning" else "warning")(
            "%s", event.get("@message", ""), extra={"data": data}
        )

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A step that runs Terraform: a stop request cancels the run, a Terraform error fails it."""
        with self.ctx.step(name):
            try:
                yield
            except Interrupted as exc:
                self.ctx.log.warning("%s Terraform was interrupted with its graceful stop.", exc)
                raise Canceled() from None
            except TerraformError as exc:
                raise RunFailed(str(exc)) from None

    def init_and_select(self) -> None:
        with self.step(INIT):
            self.session.init()
        self.ctx.check_cancel()
        with self.step(SELECT):
            self.session.select_workspace()
        self.ctx.check_cancel()

    def var_file_args(self) -> list[str]:
        return [f"-var-file={self.p['var_file']}"] if self.p.get("var_file") else []


def validate_workspace_params(params: dict, environment) -> dict:
    """A plan or drift check takes nothing from its caller: the workspace, its var file, backend
    config and secret variables are the run's environment's own, copied from its Workspace."""
    if params:
        raise ValueError(
            f"A Terraform run takes no parameters ({', '.join(sorted(map(str, params)))} given): its workspace, "
            "var file, backend config and secret variables are the environment's own."
        )
    workspace = Workspace.objects.select_related("environment").filter(environment=environment).first()
    if workspace is None:
        raise ValueError(f"{environment} has no Terraform workspace; an admin adds one first.")
    return workspace_params(workspace)


def validate_apply_params(params: dict, environment) -> dict:
    """An apply takes one thing, the saved plan it applies, which must be a plan of this environment."""
    plan_run = params.get("plan_run")
    if set(params) != {"plan_run"} or not isinstance(plan_run, int) or isinstance(plan_run, bool):
        raise ValueError("A Terraform apply takes the run id of its saved plan (plan_run) and nothing else.")
    plan = Plan.objects.select_related("workspace").filter(run_id=plan_run).first()
    if plan is None or environment is None or plan.workspace.environment_id != environment.pk:
        raise ValueError(f"There is no saved plan from run #{plan_run} in {environment}.")
    return {**workspace_params(plan.workspace), "plan_run": plan_run}


def plan_file_for(run_id: int) -> Path:
    directory = conf.work_dir() / "plans"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"run-{run_id}.tfplan"


def _plan(ctx: RunContext, purpose: str) -> dict:
    job = TerraformJob(ctx)
    ctx.plan([CHECK, INIT, SELECT, PLAN, SHOW])
    try:
        return _plan_steps(ctx, job, purpose)
    except (RunFailed, TerraformError) as exc:
        if purpose == Purpose.DRIFT:
            job.workspace.mark_drift(Drift.ERROR, [{"error": str(exc)[:500]}])
        raise


def _plan_steps(ctx: RunContext, job: TerraformJob, purpose: str) -> dict:
    with ctx.step(CHECK):
        findings = policy.check(job.directory)
        if findings:
            for finding in findings:
                ctx.log.error("%s", finding)
            raise RunFailed(f"{len(findings)} policy check(s) failed: " + "; ".join(map(str, findings[:5])))
        ctx.log.info("Policy checks passed.")
        code = code_sha256(job.directory)
    job.init_and_select()
    plan_file = plan_file_for(ctx.run.pk)
    with job.step(PLAN):
        args = ["plan", "-input=false", "-json", "-detailed-exitcode", "-lock-timeout=60s", f"-out={plan_file}"]
        result = job.session.run(args + job.var_file_args(), ok_codes=(0, 2))
        has_changes = result.code == 2
    with job.step(SHOW):
        reduced, secrets = plans.reduce_plan(job.session.show(plan_file))
        for secret in secrets:
            ctx.add_secret(secret)
        summary = plans.summarize(reduced)
        Plan.objects.update_or_create(
            run=ctx.run,
            defaults=dict(
                workspace=job.workspace,
                purpose=purpose,
                has_changes=has_changes,
                summary=summary,
                changes=reduced,
                plan_file=str(plan_file) if purpose == Purpose.PLAN and has_changes else "",
                plan_sha256=file_sha256(plan_file),
                code_sha256=code,
            ),
        )
        ctx.log.info(
            "Plan: %d to add, %d to change, %d to destroy.", summary["add"], summary["change"], summary["destroy"]
        )
    if purpose == Purpose.DRIFT or not has_changes:
        plan_file.unlink(missing_ok=True)  # nothing will apply it
    if purpose == Purpose.DRIFT:
        resources = [{"address": c["address"], "action": c["action"]} for c in reduced["resource_changes"]]
        job.workspace.mark_drift(Drift.DRIFTED if has_changes else Drift.IN_SYNC, resources)
        if has_changes:
            ctx.log.warning("Drift: %d resource(s) differ from the code.", len(resources))
    return {"has_changes": has_changes, "summary": {k: summary[k] for k in ("add", "change", "destroy")}}


@run_kind(
    "terraform.plan",
    "Terraform plan",
    action=Action.DEPLOY,
    validate=validate_workspace_params,
)
def terraform_plan(ctx: RunContext) -> dict:
    return _plan(ctx, Purpose.PLAN)


def drift_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """The notification event a drift check raises: drift found, when the code and the world differ."""
    return "drift.detected" if status == Status.SUCCEEDED and result.get("has_changes") else None


def drift_notify_facts(run: Run) -> dict:
    """How many resources differ from the code."""
    summary = (run.result or {}).get("summary") or {}
    return {"changes": sum(int(summary.get(key) or 0) for key in ("add", "change", "destroy"))}


@run_kind(
    "terraform.drift",
    "Terraform drift check",
    action=Action.DEPLOY,
    validate=validate_workspace_params,
    notifies=drift_notifies,
    notify_facts=drift_notify_facts,
)
def terraform_drift(ctx: RunContext) -> dict:
    return _plan(ctx, Purpose.DRIFT)


@run_kind(
    "terraform.apply",
    "Terraform apply",
    action=Action.DEPLOY,
    validate=validate_apply_params,
    # Another person's approval of exactly this saved plan is asked for by infrastructure.services.
    only_through="the Infrastructure page's Apply button, which asks another person to approve the saved plan",
)
def terraform_apply(ctx: RunContext) -> dict:
    job = TerraformJob(ctx)
    ctx.plan([VERIFY, INIT, SELECT, APPLY, OUTPUTS])
    plan = Plan.objects.select_related("run", "workspace").filter(run_id=ctx.params.get("plan_run")).first()
    with ctx.step(VERIFY):
        if plan is None:
            raise RunFailed("The plan this apply was approved for no longer exists.")
        stale = plan.staleness(exclude_run=ctx.run.pk)
        if stale:
            raise RunFailed(stale)
        plan_file = Path(plan.plan_file)
        if not plan.plan_file or not plan_file.is_file():
            raise RunFailed(f"The saved plan of run #{plan.run_id} is gone (already applied?). Plan again.")
        if file_sha256(plan_file) != plan.plan_sha256:
            raise RunFailed(f"The saved plan of run #{plan.run_id} was modified after it was made; refusing to apply.")
        if code_sha256(job.directory) != plan.code_sha256:
            raise RunFailed(
                f"The plan from run #{plan.run_id} is stale: the Terraform code changed since it was made. Plan again."
            )
        ctx.log.info("Applying exactly the plan of run #%d (sha256 %s).", plan.run_id, plan.plan_sha256[:12])
    job.init_and_select()
    with ctx.step(APPLY):
        try:
            job.session.run(["apply", "-input=false", "-json", "-lock-timeout=60s", str(plan_file)])
        except Interrupted as exc:
            ctx.log.warning("%s Terraform stopped gracefully; the state records what was applied.", exc)
            raise Canceled() from None
        except TerraformError as exc:
            if any(marker in str(exc) for marker in STALE_MARKERS):
                raise RunFailed(
                    f"The plan from run #{plan.run_id} is stale: the state changed since it was made. Plan again."
                ) from None
            raise RunFailed(str(exc)) from None
    plan_file.unlink(missing_ok=True)  # a saved plan applies once
    with job.step(OUTPUTS):
        outputs, secrets = plans.mask_outputs(job.session.output())
        for secret in secrets:
            ctx.add_secret(secret)
        job.workspace.outputs = outputs
        job.workspace.save(update_fields=["outputs"])
        job.workspace.mark_drift(Drift.IN_SYNC)
    return {"plan_run": plan.run_id, "outputs": outputs}
