"""Made-up past history for the sandbox, so the Delivery page has something to show on a first
start: six months of releases, deploys (some rolled back, a few restored by a rollback) and
backups (all marked deleted, as retention would have: nothing stands behind them in the sandbox
AWS; one outage breaks the RPO).

Every run it creates says in its log that it is demo history; the releases carry `demo` tags and
digests that no registry holds. Deterministic: the same dates and numbers on every machine.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from django.utils import timezone

from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from deployments.models import Deployment, DeploymentKind, Release
from opsconsole.environments.models import Environment
from opsconsole.runs.models import Run, RunEvent, Status

DAYS = 180
NOTE = "Demo history: a past run made up by the sandbox so the Delivery page has something to show."


def _hour(now: datetime | None) -> datetime:
    return (now or timezone.now()).replace(minute=0, second=0, microsecond=0)


def seed_deploy_history(repository: str, now: datetime | None = None) -> None:
    """Releases and deploys, if there are none yet. Call it before the real releases are
    registered, so that those stay the newest."""
    environments = {env.name: env for env in Environment.objects.filter(name__in=("staging", "production"))}
    if len(environments) < 2 or Deployment.objects.exists():
        return
    _seed_deploys(random.Random(2026), repository, environments, _hour(now))


def seed_backup_history(now: datetime | None = None) -> None:
    """Backups for the existing policies, if there are no backups yet."""
    if Backup.objects.exists():
        return
    _seed_backups(random.Random(2027), _hour(now))


def record_sandbox_start(environment: Environment, release: Release, now: datetime | None = None) -> None:
    """The sandbox AWS starts afresh on every start, running `release`: say so in the environment's
    history when its newest successful deploy is another release, so that history and "Live" agree."""
    newest = (
        Deployment.objects.filter(environment=environment, run__status=Status.SUCCEEDED)
        .order_by("-run__finished_at")
        .values_list("release_id", flat=True)
        .first()
    )
    if newest in (None, release.pk):
        return
    at = now or timezone.now()
    run = Run.objects.create(
        kind=f"deployments.{DeploymentKind.DEPLOY}",
        environment=environment,
        status=Status.SUCCEEDED,
        params={"environment": environment.name, "release": {"id": release.pk, "tag": release.tag}, "sandbox": True},
        requested_by_name="sandbox",
        created_at=at,
        started_at=at,
        finished_at=at,
    )
    message = f"The sandbox started: its AWS starts afresh on every start, running {release.tag} here."
    RunEvent.objects.create(run=run, seq=1, at=at, message=message)
    Deployment.objects.create(run=run, environment=environment, release=release, kind=DeploymentKind.DEPLOY)


def _release(repository: str, number: int, registered: datetime) -> Release:
    digest = "sha256:" + hashlib.sha256(f"demo-history-{number}".encode()).hexdigest()
    return Release.objects.create(
        repository=repository,
        tag=f"v0.{number}.0-demo",
        digest=digest,
        git_sha=hashlib.sha1(f"demo-{number}".encode()).hexdigest(),
        commit_message=f"Demo history change #{number}",
        registered_by_name="ci",
        created_at=registered,
    )


def _deploy(environment, release, finished: datetime, status: str, kind: str = DeploymentKind.DEPLOY) -> None:
    started = finished - timedelta(minutes=12)
    run = Run.objects.create(
        kind=f"deployments.{kind}",
        environment=environment,
        status=status,
        params={"environment": environment.name, "release": {"id": release.pk, "tag": release.tag}, "demo": True},
        error="" if status == Status.SUCCEEDED else "Alarm in ALARM during bake: sentinel-5xx-rate (demo history)",
        requested_by_name="dana",
        created_at=started,
        started_at=started,
        finished_at=finished,
    )
    RunEvent.objects.create(run=run, seq=1, at=finished, message=NOTE)
    Deployment.objects.create(run=run, environment=environment, release=release, kind=kind, created_at=started)


def _seed_deploys(rng: random.Random, repository: str, environments: dict, now: datetime) -> None:
    staging, production = environments["staging"], environments["production"]
    good_in_production = None
    at = now - timedelta(days=DAYS)
    number = 0
    while True:
        # Releases come more often as the team speeds up over the months.
        progress = 1 - (now - at) / timedelta(days=DAYS)
        at += timedelta(hours=rng.uniform(20, 60) * (1.3 - 0.6 * progress))
        if at > now - timedelta(days=1):
            return
        number += 1
        release = _release(repository, number, at)
        staged = at + timedelta(minutes=rng.uniform(25, 240))
        if rng.random() < 0.16 - 0.08 * progress:
            _deploy(staging, release, staged, Status.ROLLED_BACK)
            continue  # the fix comes with the next release
        _deploy(staging, release, staged, Status.SUCCEEDED)
        if rng.random() < 0.45:
            continue  # not every staged release is promoted
        promoted = staged + timedelta(hours=rng.uniform(4, 96) * (1.2 - 0.7 * progress))
        if promoted > now - timedelta(hours=2):
            continue
        if rng.random() < 0.10 and good_in_production is not None:
            _deploy(production, release, promoted, Status.ROLLED_BACK)
            restored = promoted + timedelta(minutes=rng.uniform(30, 600))
            _deploy(production, good_in_production, restored, Status.SUCCEEDED, DeploymentKind.ROLLBACK)
            continue
        _deploy(production, release, promoted, Status.SUCCEEDED)
        good_in_production = release


def _seed_backups(rng: random.Random, now: datetime) -> None:
    every = {
        Kind.RDS_SNAPSHOT: timedelta(days=1),
        Kind.REDIS_SNAPSHOT: timedelta(hours=2),
        Kind.PG_DUMP: timedelta(hours=2),
    }
    base_size = {Kind.RDS_SNAPSHOT: 38 * 2**30, Kind.REDIS_SNAPSHOT: 180 * 2**20, Kind.PG_DUMP: 2 * 2**30}
    outage = (now - timedelta(days=74), now - timedelta(days=71))  # the backup role lost a permission
    rows = []
    for policy in BackupPolicy.objects.select_related("environment"):
        at = (now - timedelta(days=DAYS)).replace(hour=3)
        size = base_size[policy.kind] * (1.6 if policy.environment.name == "production" else 0.4)
        while at < now - timedelta(hours=3):
            at += every[policy.kind]
            size *= 1 + rng.uniform(-0.002, 0.006) * every[policy.kind] / timedelta(days=1)
            if outage[0] <= at < outage[1]:
                continue
            rows.append(
                Backup(
                    policy=policy,
                    policy_name=policy.name,
                    environment=policy.environment,
                    kind=policy.kind,
                    # Deleted, as retention would have: no snapshot or object stands behind them.
                    status=BackupStatus.DELETED,
                    region=policy.environment.aws_region,
                    identifier=f"demo-history-{policy.pk}-{at:%Y%m%d%H%M}",
                    size_bytes=int(size),
                    started_at=at - timedelta(minutes=rng.uniform(3, 25)),
                    finished_at=at,
                    deleted_at=min(at + timedelta(days=policy.retention_days), now),
                )
            )
    Backup.objects.bulk_create(rows, batch_size=500)
