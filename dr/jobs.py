"""The failover, drill and failback run kinds.

Each step is a checklist item. What a finished step produced is saved on the DROperation's
`progress` at once, so a resumed operation (a new run of the same kind) skips it; every step is
also safe to repeat (a restore that already exists is waited for, not created again). A failed
step ends the run `failed` saying which steps are done and what is left; nothing is undone by a
failover (the DR side stays up, production DNS untouched unless that step finished). A drill
works on isolated names (its own database, service and the drill DNS record) and tears down
everything it created, also after a failed step.
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone

from deployments import ecs
from dr import aws as draws
from dr import terraform as drterraform
from dr.models import DROperation, DRPlan, Operation, Site
from opsconsole import aws
from opsconsole.access.models import Action
from opsconsole.aws import Poller, StepFailed
from opsconsole.runs.context import Canceled, RunContext, RunFailed
from opsconsole.runs.models import TERMINAL, Run, Status
from opsconsole.runs.registry import run_kind

SNAPSHOT = "Find the newest snapshot in the DR region"
RESTORE = "Restore the database in the DR region"
SERVICE = "Bring up the DR service with the live release"
SMOKE = "Smoke-test the DR endpoint"
DNS = "Switch the DNS record to the DR target"
DRILL_DNS = "Point the drill DNS record at the DR target"
MEASURE = "Record RTO and RPO"
TEARDOWN = "Tear down what the drill created"
PRIMARY_SMOKE = "Smoke-test the primary endpoint"
DNS_BACK = "Switch the DNS record back to the primary target"
SCALE_DOWN = "Scale the DR service down"


class DRJob:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.p = ctx.params
        self.op = DROperation.objects.select_related("plan").filter(run=ctx.run).first()
        if self.op is None or self.op.approved_at is None:
            raise RunFailed("This DR run was not requested and approved through the DR page; nothing was done.")
        role = self.p.get("role_arn", "")
        self.rds = aws.client("rds", self.p["dr_region"], role)
        self.ecs = aws.client("ecs", self.p["dr_region"], role)
        self.route53 = aws.client("route53", self.p["dr_region"], role)
        self.poller = Poller(log=ctx.log.info, interval=settings.DEPLOY_POLL_MS / 1000, check_cancel=ctx.check_cancel)

    # --- step bookkeeping ------------------------------------------------------------------------
    def step(self, name: str, key: str, body) -> object:
        """Run `body()` as the checklist step `name`, unless a previous attempt finished it."""
        if key in self.op.progress:
            self.ctx.skip_step(name, f"done by run #{self.p['resumes_run']}" if self.p.get("resumes_run") else "done")
            return self.op.progress[key]
        try:
            with self.ctx.step(name):
                value = body()
        except StepFailed as failure:
            raise RunFailed(self.failure_message(name, str(failure))) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            why = f"AWS: {error.get('Code')}: {error.get('Message', '')}"
            raise RunFailed(self.failure_message(name, why)) from None
        self.op.save_progress(key, value)
        return value

    def failure_message(self, step: str, why: str) -> str:
        done = [s["name"] for s in self.ctx.run.steps if s["state"] in ("done", "skipped")]
        left = [s["name"] for s in self.ctx.run.steps if s["state"] == "pending"]
        text = f"{step} failed: {why.rstrip('.')}."
        if done:
            text += f" Done: {', '.join(done)}."
        if left:
            text += f" Not done: {', '.join(left)}."
        if self.op.operation == Operation.FAILOVER:
            text += " Resume the failover once the cause is fixed."
        return text

    # --- the steps -------------------------------------------------------------------------------
    def find_snapshot(self) -> dict:
        p = self.p
        found = draws.newest_snapshot(self.rds, self.poller, p["db_source_identifier"])
        if found is None:
            raise StepFailed(f"There is no available snapshot of {p['db_source_identifier']} in {p['dr_region']}")
        taken = found["SnapshotCreateTime"]
        age = timezone.now() - taken
        self.ctx.log.info("Newest DR snapshot: %s, taken %s (%s ago).", found["DBSnapshotIdentifier"], taken, age)
        if age.total_seconds() > p["rpo_minutes"] * 60:
            self.ctx.log.warning("It is older than the RPO target of %s minutes.", p["rpo_minutes"])
        DROperation.objects.filter(pk=self.op.pk).update(
            snapshot_identifier=found["DBSnapshotIdentifier"], snapshot_at=taken
        )
        return {"identifier": found["DBSnapshotIdentifier"], "at": taken.isoformat()}

    def restore(self, instance: str, snapshot: str) -> dict:
        p = self.p
        if draws.db_instance(self.rds, self.poller, instance) is None:
            self.poller.call(
                self.rds.restore_db_instance_from_db_snapshot,
                DBInstanceIdentifier=instance,
                DBSnapshotIdentifier=snapshot,
                DBInstanceClass=p["dr_db_instance_class"],
                Tags=[{"Key": "created-by", "Value": "opsconsole"}, {"Key": "run", "Value": str(self.ctx.run.pk)}],
            )
            self.ctx.log.info("Restoring %s into %s in %s.", snapshot, instance, p["dr_region"])
        else:
            self.ctx.log.info("%s already exists in %s; waiting for it.", instance, p["dr_region"])
        found = draws.wait_for_instance(self.rds, self.poller, instance, p["restore_timeout_seconds"])
        endpoint = found.get("Endpoint", {}).get("Address", "")
        self.ctx.log.info("DR database %s is available (%s).", instance, endpoint)
        return {"instance": instance, "endpoint": endpoint}

    def bring_up(self, service: str, *, terraform: bool = True) -> dict:
        """Terraform apply with the DR var file when the plan has one (and the runner exists),
        then make sure the service runs dr_desired_count tasks and deploy the live release."""
        p = self.p
        if not p.get("release"):
            raise StepFailed(f"{p['environment']} has no live release to deploy to the DR service")
        applied = None
        if terraform and p.get("terraform"):
            applied = self.apply_terraform()
        elif terraform and p.get("terraform_var_file"):
            self.ctx.log.warning(
                "The DR plan names %s, but there was no Terraform workspace for %s when this run was requested; "
                "scaling the DR service instead.",
                p["terraform_var_file"],
                p["environment"],
            )
        current = ecs.describe_service(self.ecs, self.poller, p["dr_ecs_cluster"], service)
        ecs.require_ecs_controller(current, service)
        running = current.description.get("desiredCount", 0)
        if running >= p["dr_desired_count"]:
            self.ctx.log.info("%s already wants %s tasks (at least %s).", service, running, p["dr_desired_count"])
        else:
            self.poller.call(
                self.ecs.update_service,
                cluster=p["dr_ecs_cluster"],
                service=service,
                desiredCount=p["dr_desired_count"],
            )
            self.ctx.log.info("Scaled %s from %s to %s tasks.", service, running, p["dr_desired_count"])
        new = ecs.register_revision(
            self.ecs, self.poller, current.task_definition, p["dr_container_name"], p["release"]["image"]
        )
        deployment = ecs.update_service(self.ecs, self.poller, p["dr_ecs_cluster"], service, new)
        self.ctx.log.info("Deploying %s (%s) to %s.", p["release"]["tag"], new, service)
        rollout = ecs.wait_for_rollout(
            self.ecs, self.poller, p["dr_ecs_cluster"], service, new, deployment, p["rollout_timeout_seconds"]
        )
        if not rollout.completed:
            raise StepFailed(f"The DR service did not roll out: {rollout.reason}")
        return {"service": service, "task_definition": new, "release": p["release"]["tag"], "terraform": applied}

    def apply_terraform(self) -> dict:
        from infrastructure.terraform import Interrupted

        tf = self.p["terraform"]
        self.ctx.log.info(
            "terraform apply of the DR stack: workspace %s, var file %s.", tf["workspace"], tf["var_file"]
        )
        try:
            stack = drterraform.DRStack(
                tf, on_line=self.terraform_line, add_secret=self.ctx.add_secret, should_stop=self.should_stop
            )
            summary = stack.apply()
        except drterraform.DRTerraformError as exc:
            raise StepFailed(str(exc)) from None
        except Interrupted:
            self.ctx.log.warning("Terraform stopped gracefully; its state records what was applied.")
            raise Canceled() from None
        counts = (summary["add"], summary["change"], summary["destroy"])
        self.ctx.log.info("DR stack applied: %s added, %s changed, %s destroyed.", *counts)
        return {"workspace": tf["workspace"], "var_file": tf["var_file"], **summary}

    def should_stop(self) -> bool:
        return Run.objects.filter(pk=self.ctx.run.pk, cancel_requested=True).exists()

    def terraform_line(self, line: str) -> None:
        from infrastructure.terraform import parse_json_line

        event = parse_json_line(line)
        if event is None:
            if line.strip():
                self.ctx.log.info("%s", line)
            return
        level = {"error": "error", "warn": "warning", "warning": "warning"}.get(event.get("@level", ""), "info")
        data = {key: event[key] for key in ("type", "hook", "change", "changes", "diagnostic") if key in event}
        getattr(self.ctx.log, level)("%s", event.get("@message", ""), extra={"data": data})

    def smoke(self, url: str) -> bool:
        failures = ecs.smoke_test([{"url": url, "expected_status": 200}])
        if failures:
            raise StepFailed("smoke test failed: " + "; ".join(failures))
        self.ctx.log.info("%s answered 200.", url)
        return True

    def switch(self, name: str, target: str) -> dict:
        p = self.p
        change = draws.upsert_record(
            self.route53,
            self.poller,
            p["hosted_zone_id"],
            name,
            p["record_type"],
            p["record_ttl"],
            target,
            f"opsconsole run #{self.ctx.run.pk}: {p['operation']}",
        )
        self.ctx.log.info("UPSERT %s %s -> %s (change %s); waiting for INSYNC.", name, p["record_type"], target, change)
        draws.wait_insync(self.route53, self.poller, change)
        switched = timezone.now()
        DROperation.objects.filter(pk=self.op.pk).update(dns_switched_at=switched)
        self.ctx.log.info("%s now points at %s.", name, target)
        return {"record": name, "target": target, "at": switched.isoformat()}

    def measure(self) -> dict:
        op = DROperation.objects.get(pk=self.op.pk)
        rto = draws.seconds_between(op.approved_at, op.dns_switched_at) if op.approved_at else None
        rpo = draws.seconds_between(op.snapshot_at, op.dns_switched_at) if op.snapshot_at else None
        DROperation.objects.filter(pk=op.pk).update(rto_seconds=rto, rpo_seconds=rpo)
        p = self.p
        for label, value, target in (("RTO", rto, p["rto_minutes"]), ("RPO", rpo, p["rpo_minutes"])):
            if value is None:
                continue
            met = value <= target * 60
            (self.ctx.log.info if met else self.ctx.log.warning)(
                "%s: %ss (target %s min): %s.", label, round(value), target, "met" if met else "MISSED"
            )
        return {"rto_seconds": rto, "rpo_seconds": rpo}


def _set_site(plan_id: int, site: str) -> None:
    DRPlan.objects.filter(pk=plan_id).update(active_site=site)


# DR runs start only through dr.services (the typed name, the reason, a second person's approval).
DR_DOOR = "the DR page or POST /api/v1/dr/<environment>/<operation>, then a second DR operator's approval"


def dr_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """The notification events of a DR operation: requested (it is created awaiting a second
    approval), approved, and completed whatever its outcome."""
    if previous is None:
        return "dr.requested" if status == Status.AWAITING_APPROVAL else None
    if previous == Status.AWAITING_APPROVAL:
        return "dr.approved" if status == Status.QUEUED else None
    return "dr.completed" if status in TERMINAL else None


def dr_notify_facts(run: Run) -> dict:
    """What a notification about a DR operation says: which operation, why, and its RTO once measured."""
    params = run.params or {}
    facts = {"operation": params.get("operation", run.kind.split(".", 1)[1]), "reason": params.get("reason", "")}
    operation = getattr(run, "dr_operation", None)
    if operation is not None and operation.rto_seconds is not None:
        facts["rto_seconds"] = round(operation.rto_seconds, 1)
    return facts


@run_kind(
    "dr.failover",
    "DR failover",
    action=Action.DR,
    only_through=DR_DOOR,
    notifies=dr_notifies,
    notify_facts=dr_notify_facts,
)
def failover(ctx: RunContext) -> dict:
    job, p = DRJob(ctx), ctx.params
    ctx.plan([SNAPSHOT, RESTORE, SERVICE, SMOKE, DNS, MEASURE])
    ctx.log.info("Failing %s over to %s: %s", p["environment"], p["dr_region"], p["reason"])
    snapshot = job.step(SNAPSHOT, "snapshot", job.find_snapshot)
    job.step(RESTORE, "restore", lambda: job.restore(p["dr_db_instance"], snapshot["identifier"]))
    job.step(SERVICE, "service", lambda: job.bring_up(p["dr_ecs_service"]))
    job.step(SMOKE, "smoke", lambda: job.smoke(p["dr_smoke_url"]))
    job.step(DNS, "dns", lambda: job.switch(p["record_name"], p["dr_target"]))
    _set_site(p["plan"], Site.DR)
    with ctx.step(MEASURE):
        measured = job.measure()
    return {**measured, "snapshot": snapshot["identifier"], "dr_region": p["dr_region"]}


@run_kind(
    "dr.drill",
    "DR drill",
    action=Action.DR,
    locks_environment=False,
    only_through=DR_DOOR,
    notifies=dr_notifies,
    notify_facts=dr_notify_facts,
)
def drill(ctx: RunContext) -> dict:
    """The failover's steps on isolated names, then a teardown whatever happened."""
    job, p = DRJob(ctx), ctx.params
    if not p["drill_record_name"]:
        raise RunFailed("The DR plan has no drill DNS record; a drill never switches the live one.")
    suffix = f"drill-{ctx.run.pk}"
    instance, service = f"{p['dr_db_instance']}-{suffix}"[:63], f"{p['dr_ecs_service']}-{suffix}"
    ctx.plan([SNAPSHOT, RESTORE, SERVICE, SMOKE, DRILL_DNS, MEASURE, TEARDOWN])
    ctx.log.info("Drill of %s in %s, into %s and %s.", p["environment"], p["dr_region"], instance, service)
    try:
        snapshot = job.step(SNAPSHOT, "snapshot", job.find_snapshot)
        job.step(RESTORE, "restore", lambda: job.restore(instance, snapshot["identifier"]))
        if p.get("terraform"):
            ctx.log.info("A drill does not apply Terraform: it would change the standing DR stack.")
        job.step(SERVICE, "service", lambda: job.bring_up(_drill_service(job, service), terraform=False))
        job.step(SMOKE, "smoke", lambda: job.smoke(p["dr_smoke_url"]))
        job.step(DRILL_DNS, "dns", lambda: job.switch(p["drill_record_name"], p["dr_target"]))
        with ctx.step(MEASURE):
            measured = job.measure()
    finally:
        with ctx.step(TEARDOWN):
            _teardown(job, instance, service)
    return {**measured, "snapshot": snapshot["identifier"]}


def _drill_service(job: DRJob, name: str) -> str:
    """A copy of the DR service, at 0 tasks, for the drill to bring up: the same task definition,
    placement (launch type or capacity providers), network configuration (awsvpc needs its subnets
    and security groups) and deployment configuration (circuit breaker)."""
    p = job.p
    source = ecs.describe_service(job.ecs, job.poller, p["dr_ecs_cluster"], p["dr_ecs_service"]).description
    copied = {key: source[key] for key in ("networkConfiguration", "deploymentConfiguration") if source.get(key)}
    if source.get("capacityProviderStrategy"):
        copied["capacityProviderStrategy"] = source["capacityProviderStrategy"]
    else:
        copied["launchType"] = source.get("launchType", "FARGATE")
    job.op.save_progress("created_service", name)
    job.poller.call(
        job.ecs.create_service,
        cluster=p["dr_ecs_cluster"],
        serviceName=name,
        taskDefinition=source["taskDefinition"],
        desiredCount=0,
        tags=[{"key": "created-by", "value": "opsconsole-drill"}],
        **copied,
    )
    job.ctx.log.info("Created the drill service %s.", name)
    return name


def _teardown(job: DRJob, instance: str, service: str) -> None:
    p, log = job.p, job.ctx.log
    if job.op.progress.get("created_service"):
        try:
            job.poller.call(job.ecs.delete_service, cluster=p["dr_ecs_cluster"], service=service, force=True)
            log.info("Deleted the drill service %s.", service)
        except ClientError as exc:
            log.warning("Could not delete %s: %s", service, exc)
    if draws.db_instance(job.rds, job.poller, instance) is not None:
        job.poller.call(job.rds.delete_db_instance, DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
        log.info("Deleting the drill database %s.", instance)
    if draws.delete_record(job.route53, job.poller, p["hosted_zone_id"], p["drill_record_name"], p["record_type"]):
        log.info("Deleted the drill record %s.", p["drill_record_name"])
    DROperation.objects.filter(pk=job.op.pk).update(torn_down=True)


@run_kind(
    "dr.failback",
    "DR failback",
    action=Action.DR,
    only_through=DR_DOOR,
    notifies=dr_notifies,
    notify_facts=dr_notify_facts,
)
def failback(ctx: RunContext) -> dict:
    """Back to the primary region: check it answers, switch DNS back, scale the DR service down.
    The DR database is kept: reconcile the data written in DR before deleting it."""
    job, p = DRJob(ctx), ctx.params
    ctx.plan([PRIMARY_SMOKE, DNS_BACK, SCALE_DOWN, MEASURE])
    if p["primary_smoke_url"]:
        job.step(PRIMARY_SMOKE, "smoke", lambda: job.smoke(p["primary_smoke_url"]))
    else:
        ctx.skip_step(PRIMARY_SMOKE, "the plan has no primary smoke URL")
    job.step(DNS_BACK, "dns", lambda: job.switch(p["record_name"], p["primary_target"]))
    _set_site(p["plan"], Site.PRIMARY)

    def scale_down() -> bool:
        job.poller.call(
            job.ecs.update_service, cluster=p["dr_ecs_cluster"], service=p["dr_ecs_service"], desiredCount=0
        )
        ctx.log.info("Scaled %s to 0 tasks; the DR database %s is kept.", p["dr_ecs_service"], p["dr_db_instance"])
        return True

    job.step(SCALE_DOWN, "scale_down", scale_down)
    with ctx.step(MEASURE):
        measured = job.measure()
    return measured
