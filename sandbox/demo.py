"""Demo data for the sandbox: environments wired to the sandbox AWS stack, releases from its ECR,
one user per role and a CI token. Called by `make run` (runconsole) in sandbox mode only."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from backups.models import BackupPolicy, Kind
from deployments import ecr
from deployments.models import Release
from opsconsole.access.models import ApiToken, Role, RoleBinding, hash_token
from opsconsole.environments.models import Environment, Strategy, Tier
from sandbox.bootstrap import DR_REGION, REGION, REPOSITORY, TAGS, Stack
from sandbox.history import record_sandbox_start, seed_backup_history, seed_deploy_history

DEMO_USERS = {
    "vera": Role.VIEWER,
    "dana": Role.DEPLOYER,
    "arthur": Role.APPROVER,
    "bob": Role.BACKUP_OPERATOR,
    "dora": Role.DR_OPERATOR,
    "ada": Role.ADMIN,
}


def aws_environment(endpoint: str) -> dict[str, str]:
    """What the console's processes need to talk to the sandbox exactly as to AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": REGION,
        "OPSCONSOLE_ECR_REPOSITORIES": f"{REGION}/{REPOSITORY}",
    }


@dataclass
class Demo:
    password: str
    token: str


def _secret(var_dir: Path, name: str, env_name: str, make) -> str:
    given = os.environ.get(env_name)
    if given:
        return given
    path = var_dir / name
    if not path.exists():
        path.write_text(make() + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


TERRAFORM_DEMO = Path(__file__).resolve().parent / "terraform_demo"


def terraform_root(var_dir: Path) -> Path:
    """A copy of the demo Terraform stack under var/, so its local state never lands in the repo."""
    root = var_dir / "terraform-demo"
    shutil.copytree(TERRAFORM_DEMO, root, dirs_exist_ok=True)
    return root


def seed_terraform_workspaces() -> None:
    from infrastructure.models import Workspace

    for environment in Environment.objects.filter(name__in=("staging", "production")):
        Workspace.objects.get_or_create(
            environment=environment, defaults={"name": environment.name, "var_file": f"env/{environment.name}.tfvars"}
        )


@transaction.atomic
def seed(stack: Stack, var_dir: Path, console_url: str) -> Demo:
    password = _secret(var_dir, "demo-password.txt", "OPSCONSOLE_DEMO_PASSWORD", lambda: secrets.token_urlsafe(9))
    token = _secret(var_dir, "demo-token.txt", "OPSCONSOLE_DEMO_TOKEN", lambda: "opc_" + secrets.token_urlsafe(32))

    users = get_user_model().objects
    for username, role in DEMO_USERS.items():
        user, _ = users.get_or_create(username=username, defaults={"email": f"{username}@sandbox.invalid"})
        user.set_password(password)
        user.save()
        RoleBinding.objects.get_or_create(user=user, role=role, environment=None)

    # The demo token lives as long as a token may, from each start: the demo keeps working however
    # long the sandbox's var/ is kept (real tokens expire; see docs/security.md).
    expires_at = timezone.now() + timedelta(days=settings.API_TOKEN_MAX_DAYS)
    ci = ApiToken.objects.filter(token_hash=hash_token(token)).first()
    if ci is None:
        ci = ApiToken.objects.create(
            name="demo-ci",
            prefix=token[:10],
            token_hash=hash_token(token),
            scopes=["view", "deploy", "run"],
            all_environments=True,
            expires_at=expires_at,
        )
    else:
        ApiToken.objects.filter(pk=ci.pk).update(expires_at=expires_at)

    health = f"{console_url}healthz"
    for name, tier, strategy, approvals in (
        ("staging", Tier.STAGING, Strategy.ROLLING, 0),
        ("production", Tier.PRODUCTION, Strategy.BLUE_GREEN, 1),
    ):
        s = stack.environments[name]
        Environment.objects.update_or_create(
            name=name,
            defaults=dict(
                tier=tier,
                aws_region=REGION,
                description=f"Sentinel API, {name} (sandbox AWS)",
                ecs_cluster=s.cluster,
                ecs_service=s.service,
                task_family=s.family,
                container_name=s.container,
                strategy=strategy,
                migration_command=["python", "manage.py", "migrate", "--noinput"],
                # The sandbox has no API to smoke-test; the console's own /healthz stands in for it.
                smoke_checks=[{"url": health, "expected_status": 200, "body_contains": "ok"}],
                alarm_names=s.alarm_names,
                bake_seconds=8 if strategy == Strategy.ROLLING else 4,
                rollout_timeout_seconds=120,
                migration_timeout_seconds=120,
                required_approvals=approvals,
                green_service=s.green_service,
                listener_arn=s.listener_arn,
                test_listener_arn=s.test_listener_arn,
                blue_target_group_arn=s.blue_target_group_arn,
                green_target_group_arn=s.green_target_group_arn,
                test_url=s.test_url or health,  # the test listener, as the sandbox answers it
                traffic_steps=[10, 100],
                live_color="blue",
            ),
        )

    # First start only: the Delivery page's past. Before the sync, so the real releases are the
    # newest (the deploy form lists the newest first).
    seed_deploy_history(stack.repository_uri)
    ecr.sync(ci, [(REGION, REPOSITORY)])
    # The sandbox AWS starts afresh on every start, running the first tag everywhere.
    first = Release.objects.filter(tag=TAGS[0], digest=stack.images[TAGS[0]]).first()
    Environment.objects.filter(name__in=stack.environments).update(live_release=first, live_color="blue")
    for environment in Environment.objects.filter(name__in=stack.environments) if first else ():
        record_sandbox_start(environment, first)
    seed_backup_policies(stack)
    seed_backup_history()
    seed_dr_plans(stack, health)
    seed_terraform_workspaces()
    return Demo(password=password, token=token)


def seed_backup_policies(stack: Stack) -> None:
    """An RDS snapshot and a Redis snapshot policy per environment; a pg_dump policy when the
    console's own database is PostgreSQL (the sandbox then dumps it: a real pg_dump needs a real
    server). The Redis export to S3 is the sandbox's own (sandbox/elasticache_export.py)."""
    from django.db import connection

    for name, s in stack.environments.items():
        environment = Environment.objects.get(name=name)
        common = dict(
            enabled=True, copy_to_dr=True, dr_region=DR_REGION, dr_bucket=stack.backup_buckets.get(DR_REGION, "")
        )
        policies = [
            ("nightly RDS snapshot", Kind.RDS_SNAPSHOT, "0 3 * * *", dict(source_identifier=s.db_instance)),
            (
                "hourly Redis snapshot",
                Kind.REDIS_SNAPSHOT,
                "15 * * * *",
                dict(
                    source_identifier=s.redis_cluster,
                    bucket=stack.backup_buckets[REGION],
                    prefix="redis/",
                    rpo_minutes=2 * 60,
                ),
            ),
        ]
        if connection.vendor == "postgresql":
            db = connection.settings_dict
            policies.append(
                (
                    "pg_dump every 30 minutes",
                    Kind.PG_DUMP,
                    "*/30 * * * *",
                    dict(
                        database_host=db["HOST"] or "127.0.0.1",
                        database_port=int(db["PORT"] or 5432),
                        database_name=db["NAME"],
                        database_user=db["USER"] or "postgres",
                        # The console's own database password, if it has one, comes from its
                        # environment like any secret; the demo stores none.
                        password_source="",
                        bucket=stack.backup_buckets[REGION],
                        prefix="database/",
                        rpo_minutes=60,
                    ),
                )
            )
        for policy_name, kind, schedule, fields in policies:
            policy = BackupPolicy.objects.filter(environment=environment, name=policy_name).first() or BackupPolicy(
                environment=environment, name=policy_name
            )
            for key, value in {**common, "kind": kind, "schedule": schedule, **fields}.items():
                setattr(policy, key, value)
            policy.save()


def seed_dr_plans(stack: Stack, health: str) -> None:
    """A DR plan per environment, wired to the sandbox's DR region resources and Route53 zone.
    The console's own /healthz stands in for the DR (and primary) endpoint's smoke test."""
    from dr.models import DRPlan

    for name, s in stack.environments.items():
        if not s.dr_service:
            continue
        DRPlan.objects.update_or_create(
            environment=Environment.objects.get(name=name),
            defaults=dict(
                primary_region=REGION,
                dr_region=DR_REGION,
                hosted_zone_id=s.hosted_zone_id,
                record_name=s.record_name,
                drill_record_name=s.drill_record_name,
                primary_target=s.primary_target,
                dr_target=s.dr_target,
                db_source_identifier=s.db_instance,
                dr_db_instance=f"{s.db_instance}-dr",
                dr_ecs_cluster=s.dr_cluster,
                dr_ecs_service=s.dr_service,
                dr_desired_count=2,
                dr_smoke_url=health,
                primary_smoke_url=health,
                rpo_minutes=24 * 60,
                rto_minutes=15,
                rollout_timeout_seconds=120,
                restore_timeout_seconds=300,
            ),
        )
        # The sandbox starts afresh: the primary region serves.
        DRPlan.objects.filter(environment__name=name).update(active_site="primary")
