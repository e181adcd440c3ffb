"""The deploy and rollback run kinds: rolling (ECS rolling update) and blue/green.

Before the service is touched, a failure ends the run `failed` and AWS is unchanged. After it,
any failure (rollout FAILED or timed out, an alarm, a smoke test, an AWS error, a cancel) rolls
back to the kept task definition, ends the run `rolled_back` with the reason, and locks the
environment so nothing redeploys the bad release until someone unlocks it.
"""

from __future__ import annotations

import dataclasses

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from deployments import ecs, prometheus
from deployments.models import Deployment
from deployments.services import lock_after_rollback
from opsconsole import aws
from opsconsole.aws import Poller, StepFailed
from opsconsole.environments.models import Color, InsufficientData, Strategy
from opsconsole.environments.services import check_blockers
from opsconsole.runs.context import Canceled, RunContext, RunFailed
from opsconsole.runs.models import Status
from opsconsole.runs.registry import run_kind
from opsconsole.runs.services import Refused

READ = "Read the service"
REGISTER = "Register the task definition"
MIGRATE = "Run migrations"
UPDATE = "Update the service"
ROLLOUT = "Wait for the rollout"
BAKE = "Bake: alarms and smoke tests"
SHIFT = "Shift traffic"
SMOKE = "Smoke-test the idle colour"
SCALE_DOWN = "Scale down the old colour"


class Deploy:
    """One deploy or rollback, with what it needs at hand."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.p = ctx.params
        self.deployment = Deployment.objects.select_related("environment").get(run=ctx.run)
        region, role = self.p["aws_region"], self.p.get("role_arn", "")
        self.ecs = aws.client("ecs", region, role)
        self.cloudwatch = aws.client("cloudwatch", region, role)
        self.poller = Poller(log=ctx.log.info, interval=settings.DEPLOY_POLL_MS / 1000, check_cancel=ctx.check_cancel)
        self.image = self.p["release"]["image"]
        self.check = self.prometheus_check()

    def prometheus_check(self) -> prometheus.Check | None:
        """The environment's Prometheus verification, as copied at launch (None: there is none).

        A rollback is not verified by Prometheus: the expression's window still holds the errors
        that made someone roll back, and failing it would put the bad release back.
        """
        p = self.p
        if not p.get("prometheus_query"):
            return None
        if self.ctx.run.kind == "deployments.rollback":
            self.ctx.log.info("A rollback is not verified by Prometheus (its window still holds the errors).")
            return None
        if not p.get("prometheus_url") or p.get("prometheus_threshold") is None:
            raise RunFailed(
                "The environment names a Prometheus query but no Prometheus URL (set PROMETHEUS_URL or "
                "the environment's URL) or no threshold. Nothing was changed on the service."
            )
        return prometheus.Check(
            url=p["prometheus_url"],
            expression=p["prometheus_query"],
            threshold=float(p["prometheus_threshold"]),
            comparison=p.get("prometheus_comparison") or prometheus.Comparison.ABOVE,
            timeout=settings.PROMETHEUS_TIMEOUT_SECONDS,
        )

    def preflight(self) -> None:
        """Before the service changes, make sure the bake can verify the deploy: every alarm it is
        to watch exists, and Prometheus answers. A deploy that could not be verified is not made."""
        self.preflight_alarms()
        if self.check is None:
            return
        try:
            prometheus.query(self.check.url, self.check.expression, self.check.timeout)
        except (prometheus.QueryError, prometheus.Unverifiable) as exc:
            raise StepFailed(
                f"The Prometheus verification cannot run ({self.check.expression!r}: {exc}), so the deploy "
                "could not be verified."
            ) from None
        self.ctx.log.info("Prometheus answers; the bake checks %s (%s).", self.check.expression, self.check.rule)

    def preflight_alarms(self) -> None:
        """DescribeAlarms answers a misspelled or deleted name with nothing: refuse it here, or the
        bake would watch fewer alarms than the environment names and pass."""
        names = self.p["alarm_names"]
        if not names:
            self.ctx.log.info("The environment names no CloudWatch alarm: the bake watches none.")
            return
        alarms = ecs.read_alarms(self.cloudwatch, self.poller, names)
        if alarms.missing:
            raise StepFailed(ecs.missing_alarms_problem(alarms.missing) + ".")
        policy = "a pass" if self.insufficient_data_passes else "a failure"
        self.ctx.log.info(
            "The bake watches %s alarm(s): %s. INSUFFICIENT_DATA at the end of the bake counts as %s.",
            len(alarms.found),
            alarms.describe(),
            policy,
        )

    @property
    def insufficient_data_passes(self) -> bool:
        return self.p.get("insufficient_data", InsufficientData.FAIL) == InsufficientData.PASS

    def run(self, *, migrate: bool) -> dict:
        p, ctx = self.p, self.ctx
        if p["strategy"] == Strategy.BLUE_GREEN:
            return self.run_blue_green(migrate=migrate)
        ctx.plan([READ, REGISTER, MIGRATE, UPDATE, ROLLOUT, BAKE])
        ctx.log.info("Deploying %s to %s (%s).", p["release"]["tag"], p["environment"], self.image)
        try:
            with ctx.step(READ):
                current = ecs.describe_service(self.ecs, self.poller, p["ecs_cluster"], p["ecs_service"])
                ecs.require_ecs_controller(current, p["ecs_service"])
                self.deployment.previous_task_definition_arn = current.task_definition
                self.deployment.save(update_fields=["previous_task_definition_arn"])
                ctx.log.info("Current task definition (the rollback target): %s", current.task_definition)
                self.preflight()
            with ctx.step(REGISTER):
                new = ecs.register_revision(
                    self.ecs, self.poller, current.task_definition, p["container_name"], self.image
                )
                self.deployment.task_definition_arn = new
                self.deployment.save(update_fields=["task_definition_arn"])
                ctx.log.info("Registered %s.", new)
            self.migrate(new, current, migrate)
        except StepFailed as failure:
            raise RunFailed(
                str(failure) if "not touched" in str(failure) else f"{failure} Nothing was changed on the service."
            ) from None
        except (ClientError, BotoCoreError) as failure:  # throttled or unreachable even after the retries
            raise RunFailed(f"AWS call failed after retries: {failure}. Nothing was changed on the service.") from None

        # From here on the service is changing: every failure rolls back.
        try:
            with ctx.step(UPDATE):
                deployment_id = ecs.update_service(self.ecs, self.poller, p["ecs_cluster"], p["ecs_service"], new)
                ctx.log.info("Service updated (deployment %s).", deployment_id or "?")
            with ctx.step(ROLLOUT):
                rollout = ecs.wait_for_rollout(
                    self.ecs,
                    self.poller,
                    p["ecs_cluster"],
                    p["ecs_service"],
                    new,
                    deployment_id,
                    p["rollout_timeout_seconds"],
                )
                if not rollout.completed:
                    raise StepFailed(f"Rollout failed: {rollout.reason}")
                ctx.log.info("Rollout completed.")
            with ctx.step(BAKE):
                problem = ecs.bake(
                    self.cloudwatch,
                    self.poller,
                    p["alarm_names"],
                    p["smoke_checks"],
                    p["bake_seconds"],
                    self.check,
                    self.insufficient_data_passes,
                )
                if problem:
                    raise StepFailed(problem[0].upper() + problem[1:])
                ctx.log.info("Baked for %ss with no alarm.", p["bake_seconds"])
        except Canceled:
            return self.roll_back(current.task_definition, "canceled by an operator during the rollout")
        except (StepFailed, Exception) as failure:  # noqa: B014 (any failure after the update rolls back)
            return self.roll_back(current.task_definition, str(failure))
        return self.succeeded(new)

    def migrate(self, task_definition: str, current: ecs.Service, migrate: bool) -> None:
        p, ctx = self.p, self.ctx
        if not migrate:
            ctx.skip_step(MIGRATE, "a rollback does not run migrations")
            return
        if not p["migration_command"]:
            ctx.skip_step(MIGRATE, "no migration command configured")
            return
        with ctx.step(MIGRATE):
            try:
                ecs.run_migration(
                    self.ecs,
                    self.poller,
                    p["ecs_cluster"],
                    task_definition,
                    p["container_name"],
                    p["migration_command"],
                    current,
                    p["migration_timeout_seconds"],
                )
            except (ClientError, BotoCoreError) as failure:  # the task may be running: not "nothing changed"
                raise RunFailed(
                    f"AWS call failed after retries while running the migration task: {failure}. The service "
                    f"was not changed, but the migration task's outcome is unknown: check its tasks in "
                    f"{p['ecs_cluster']} (started with {task_definition}) before deploying again."
                ) from None

    def succeeded(self, task_definition: str) -> dict:
        self.deployment.environment.went_live(self.deployment.release_id)
        return {"task_definition": task_definition, "release": self.p["release"]["tag"]}

    def uncancelable(self) -> Poller:
        """The poller for what must finish once begun (a rollback, a shift back): a cancel, often
        what brought us there, must not stop it halfway, leaving the service mid-change and the run
        stuck, since rolling_back cannot become canceled."""
        return dataclasses.replace(self.poller, check_cancel=lambda: None)

    def roll_back(self, previous: str, reason: str) -> dict:
        """Put the service back on `previous`, wait for it, lock the environment, end rolled_back."""
        p, ctx = self.p, self.ctx
        poller = self.uncancelable()
        ctx.run.transition(Status.ROLLING_BACK, error=reason)
        ctx.log.warning("Rolling back to %s: %s", previous, reason)
        try:
            with ctx.step("Roll back"):
                self._put_back(poller, previous, reason)
        except BaseException as exc:
            # Whatever happened, the environment must not be left open to deploys.
            lock_after_rollback(ctx.run, getattr(exc, "lock_reason", f"{type(exc).__name__}: {exc}"), completed=False)
            raise
        lock_after_rollback(ctx.run, reason)
        ctx.log.warning("Rolled back to %s. %s is locked until someone unlocks it.", previous, p["environment"])
        return {"rolled_back_to": previous, "reason": reason}

    def _put_back(self, poller: Poller, previous: str, reason: str) -> None:
        p = self.p
        # Always UpdateService, never "the service already reads as `previous`": a read may be stale
        # (ECS is eventually consistent) while our revision still rolls out. UpdateService's answer is
        # not stale, and with the task definition ECS's circuit breaker already put back it starts no
        # new deployment: its PRIMARY is the one to follow either way.
        deployment_id = ecs.update_service(self.ecs, poller, p["ecs_cluster"], p["ecs_service"], previous)
        rollout = ecs.wait_for_rollout(
            self.ecs, poller, p["ecs_cluster"], p["ecs_service"], previous, deployment_id, p["rollout_timeout_seconds"]
        )
        if not rollout.completed:
            failure = RunFailed(
                f"{reason.rstrip('.')}. The rollback to {previous} did not complete "
                f"({rollout.reason}); check the service in the ECS console."
            )
            failure.lock_reason = rollout.reason
            raise failure

    # --- Blue/green ------------------------------------------------------------------------------
    def run_blue_green(self, *, migrate: bool) -> dict:
        """Deploy to the idle colour at the live colour's size, test it through the test listener,
        shift the weights step by step with a bake at each, then scale the old colour down."""
        p, ctx = self.p, self.ctx
        live = p["live_color"]
        idle = Color.GREEN if live == Color.BLUE else Color.BLUE
        services = {Color.BLUE: p["ecs_service"], Color.GREEN: p["green_service"]}
        groups = {Color.BLUE: p["blue_target_group_arn"], Color.GREEN: p["green_target_group_arn"]}
        elbv2 = aws.client("elbv2", p["aws_region"], p.get("role_arn", ""))
        steps = p["traffic_steps"] or [100]
        scale_down = p.get("scale_down_old_color", True)
        ctx.plan(
            [
                READ,
                REGISTER,
                MIGRATE,
                UPDATE,
                ROLLOUT,
                SMOKE,
                *[f"{SHIFT} to {s}%" for s in steps],
                *([f"{SCALE_DOWN} ({live})"] if scale_down else []),
            ]
        )
        ctx.log.info("Blue/green: %s is live; deploying %s to %s.", live, p["release"]["tag"], idle)
        try:
            with ctx.step(READ):
                current = ecs.describe_service(self.ecs, self.poller, p["ecs_cluster"], services[live])
                ecs.require_ecs_controller(current, services[live])
                idle_service = ecs.describe_service(self.ecs, self.poller, p["ecs_cluster"], services[idle])
                ecs.require_ecs_controller(idle_service, services[idle])
                size = current.description.get("desiredCount", 0)
                if size < 1:
                    raise StepFailed(
                        f"The live colour's service {services[live]} has a desired count of 0, so there is no "
                        f"size to give {idle}; set the live service's desired count first."
                    )
                self.preflight()
            with ctx.step(REGISTER):
                new = ecs.register_revision(
                    self.ecs, self.poller, current.task_definition, p["container_name"], self.image
                )
                Deployment.objects.filter(pk=self.deployment.pk).update(
                    task_definition_arn=new, previous_task_definition_arn=current.task_definition, color=idle
                )
            self.migrate(new, current, migrate)
            with ctx.step(UPDATE):
                # The idle colour may be at 0 tasks (terraform keeps green there): it gets the live
                # colour's size in the same call, or its rollout completes with no task at all.
                deployment_id = ecs.update_service(
                    self.ecs, self.poller, p["ecs_cluster"], services[idle], new, desired_count=size
                )
                ctx.log.info("%s: %s at %s tasks (the size of %s).", services[idle], new, size, live)
            with ctx.step(ROLLOUT):
                rollout = ecs.wait_for_rollout(
                    self.ecs,
                    self.poller,
                    p["ecs_cluster"],
                    services[idle],
                    new,
                    deployment_id,
                    p["rollout_timeout_seconds"],
                )
                if not rollout.completed:
                    raise StepFailed(f"The {idle} service did not roll out: {rollout.reason}")
                problem = ecs.wait_for_capacity(
                    self.ecs,
                    elbv2,
                    self.poller,
                    p["ecs_cluster"],
                    services[idle],
                    groups[idle],
                    p["rollout_timeout_seconds"],
                )
                if problem:
                    raise StepFailed(f"The {idle} colour is not ready for traffic: {problem}.")
            with ctx.step(SMOKE):
                if p["test_listener_arn"]:
                    ecs.point_listener(elbv2, self.poller, p["test_listener_arn"], groups[idle])
                    ctx.log.info("The test listener forwards to %s.", idle)
                else:
                    ctx.log.warning("No test listener is configured: the smoke test URL is used as it is.")
                checks = [{"url": p["test_url"], "expected_status": 200}] if p["test_url"] else p["smoke_checks"]
                failures = ecs.smoke_test(checks)
                if failures:
                    raise StepFailed("Smoke test of the idle colour failed: " + "; ".join(failures))
        except StepFailed as failure:
            raise RunFailed(f"{failure} Traffic still goes to {live}; nothing was shifted.") from None
        except (ClientError, BotoCoreError) as failure:
            raise RunFailed(
                f"AWS call failed after retries: {failure}. Traffic still goes to {live}; nothing was shifted."
            ) from None

        try:
            for percent in steps:
                with ctx.step(f"{SHIFT} to {percent}%"):
                    ecs.set_listener_weights(
                        elbv2, self.poller, p["listener_arn"], {groups[idle]: percent, groups[live]: 100 - percent}
                    )
                    ctx.log.info("%s%% of traffic to %s.", percent, idle)
                    problem = ecs.bake(
                        self.cloudwatch,
                        self.poller,
                        p["alarm_names"],
                        p["smoke_checks"],
                        p["bake_seconds"],
                        self.check,
                        self.insufficient_data_passes,
                    )
                    if problem:
                        raise StepFailed(problem[0].upper() + problem[1:])
        except (StepFailed, Canceled, Exception) as failure:  # noqa: B014
            reason = "canceled by an operator" if isinstance(failure, Canceled) else str(failure)
            ctx.run.transition(Status.ROLLING_BACK, error=reason)
            try:
                with ctx.step("Shift traffic back"):
                    # As roll_back: the cancel that brought us here must not stop the shift back halfway.
                    ecs.set_listener_weights(
                        elbv2, self.uncancelable(), p["listener_arn"], {groups[live]: 100, groups[idle]: 0}
                    )
            except BaseException as exc:
                lock_after_rollback(ctx.run, f"{reason}; shifting traffic back failed: {exc}", completed=False)
                raise
            lock_after_rollback(ctx.run, reason)
            ctx.log.warning("All traffic back on %s: %s", live, reason)
            return {"live_color": live, "reason": reason}
        self.deployment.environment.went_live(self.deployment.release_id, color=idle)
        if not scale_down:
            ctx.log.info("%s is live; %s keeps running for an instant shift back.", idle, live)
            return {"live_color": idle, "task_definition": new}
        with ctx.step(f"{SCALE_DOWN} ({live})"):
            try:
                # The deploy went live: a cancel now must not turn it into a canceled run.
                ecs.scale_service(self.ecs, self.uncancelable(), p["ecs_cluster"], services[live], 0)
            except (ClientError, BotoCoreError) as failure:  # the deploy is done: say so, do not undo it
                ctx.log.warning("%s is live, but %s could not be scaled down: %s", idle, services[live], failure)
            else:
                ctx.log.info("%s is live; %s is scaled down to 0 tasks.", idle, services[live])
        return {"live_color": idle, "task_definition": new}


def refuse_if_blocked(ctx: RunContext) -> None:
    """A deploy queued before a failover must not start against the primary region afterwards."""
    try:
        check_blockers(ctx.run.environment)
    except Refused as refused:
        raise RunFailed(f"{refused} Nothing was changed on the service.") from None


def deploy_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """The notification event a deploy raises going from `previous` to `status`."""
    if status == Status.RUNNING:
        return "deploy.started"
    if status == Status.SUCCEEDED:
        return "deploy.succeeded"
    if status == Status.ROLLED_BACK:
        return "deploy.rolled_back"
    return "deploy.failed" if status in (Status.FAILED, Status.ERRORED) else None


def rollback_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """A rollback reads as a deploy, except that its success is the deploy rolled back."""
    return "deploy.rolled_back" if status == Status.SUCCEEDED else deploy_notifies(previous, status, result)


# Deploys and rollbacks start only through deployments.services: the release, the freeze window,
# the lock, the approvals and the definition copied from the environment are checked there.
@run_kind(
    "deployments.deploy",
    "Deploy",
    action="deploy",
    only_through="the environment's Deploy button or POST /api/v1/environments/<name>/deploy",
    notifies=deploy_notifies,
)
def deploy(ctx: RunContext) -> dict:
    refuse_if_blocked(ctx)
    return Deploy(ctx).run(migrate=True)


def warn_about_newer_migrations(ctx: RunContext, deployment: Deployment) -> None:
    """A rollback skips migrations: say so when the schema has moved on since the target release."""
    target_last_good = (
        Deployment.objects.filter(
            environment=deployment.environment, release=deployment.release, run__status=Status.SUCCEEDED
        )
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    newer = (
        Deployment.objects.filter(
            environment=deployment.environment,
            id__gt=target_last_good or 0,
            kind="deploy",
            run__status__in=[Status.SUCCEEDED, Status.ROLLED_BACK],
        )
        .exclude(run__params__migration_command=[])
        .select_related("release")
        .order_by("-id")
        .first()
    )
    if newer is not None:
        ctx.log.warning(
            "The target %s is older than the last migration applied (with %s, run #%s). Migrations are not "
            "reversed: check that %s works with the current schema.",
            deployment.release.tag,
            newer.release.tag,
            newer.run_id,
            deployment.release.tag,
        )


@run_kind(
    "deployments.rollback",
    "Rollback",
    action="deploy",
    only_through="the environment's Roll back button or POST /api/v1/environments/<name>/rollback",
    notifies=rollback_notifies,
)
def rollback(ctx: RunContext) -> dict:
    """Deploy an earlier good release again, without migrations, then lock the environment."""
    refuse_if_blocked(ctx)
    job = Deploy(ctx)
    warn_about_newer_migrations(ctx, job.deployment)
    result = job.run(migrate=False)
    if ctx.run.status == Status.RUNNING:
        lock_after_rollback(ctx.run, f"manual rollback to {ctx.params['release']['tag']}")
    return result
