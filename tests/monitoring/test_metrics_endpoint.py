"""/metrics: who may read it, and that what it says matches the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backups.models import Backup, BackupPolicy, BackupStatus, Kind, Verification
from deployments.models import Deployment, DeploymentKind, Release
from infrastructure.models import Drift, Workspace
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = ["10.1.2.0/24"]


def scrape(client: Client | None = None, **headers) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_it_refuses_a_request_without_a_token_with_401():
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"opsconsole_" not in response.content


def test_it_refuses_a_wrong_token_even_from_an_allowed_address():
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 401


def test_it_answers_an_allowed_address_without_a_token():
    assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="10.1.3.3").status_code == 401


def test_it_refuses_everyone_with_403_when_neither_token_nor_allowlist_is_set(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_a_signed_in_admin_session_is_not_enough(users):
    assert client_for(users["admin"]).get("/metrics").status_code == 401


def test_it_refuses_post():
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_runs_are_counted_by_kind_and_status(staging):
    now = timezone.now()
    for status in (Status.SUCCEEDED, Status.SUCCEEDED, Status.FAILED):
        Run.objects.create(
            kind="selftest", status=status, started_at=now - timedelta(seconds=40), finished_at=now, environment=staging
        )
    Run.objects.create(
        kind="selftest", status=Status.SUCCEEDED, started_at=now - timedelta(seconds=400), finished_at=now
    )
    Run.objects.create(kind="backups.pg_dump", status=Status.QUEUED, created_at=now - timedelta(minutes=7))
    samples = scrape()
    assert value(samples, "opsconsole_runs", kind="selftest", status="succeeded") == 3
    assert value(samples, "opsconsole_runs", kind="selftest", status="failed") == 1
    assert value(samples, "opsconsole_runs", kind="backups.pg_dump", status="queued") == 1
    assert value(samples, "opsconsole_run_active_oldest_timestamp_seconds", status="queued") == pytest.approx(
        (now - timedelta(minutes=7)).timestamp()
    )
    # The duration histogram is cumulative over every finished run.
    assert value(samples, "opsconsole_run_duration_seconds_count", kind="selftest") == 4
    assert value(samples, "opsconsole_run_duration_seconds_bucket", kind="selftest", le="30.0") == 0
    assert value(samples, "opsconsole_run_duration_seconds_bucket", kind="selftest", le="60.0") == 3
    assert value(samples, "opsconsole_run_duration_seconds_bucket", kind="selftest", le="600.0") == 4
    assert value(samples, "opsconsole_run_duration_seconds_sum", kind="selftest") == pytest.approx(520)


def test_worker_heartbeats_come_from_executing_runs():
    now = timezone.now()
    Run.objects.create(kind="selftest", status=Status.RUNNING, started_at=now, heartbeat_at=now - timedelta(seconds=3))
    Run.objects.create(kind="selftest", status=Status.RUNNING, started_at=now, heartbeat_at=now - timedelta(minutes=9))
    samples = scrape()
    assert value(samples, "opsconsole_run_heartbeat_newest_timestamp_seconds") == pytest.approx(
        (now - timedelta(seconds=3)).timestamp()
    )
    assert value(samples, "opsconsole_run_heartbeat_oldest_timestamp_seconds") == pytest.approx(
        (now - timedelta(minutes=9)).timestamp()
    )


def test_no_heartbeat_is_reported_when_nothing_executes():
    samples = scrape()
    assert not [key for key in samples if key[0].startswith("opsconsole_run_heartbeat")]


def test_deploys_and_rollbacks_are_counted_per_environment(staging, production):
    release = Release.objects.create(repository="r", tag="v1", digest="sha256:" + "a" * 64, registered_by_name="ci")
    finished = timezone.now() - timedelta(minutes=2)
    for environment, kind, status in (
        (staging, DeploymentKind.DEPLOY, Status.SUCCEEDED),
        (staging, DeploymentKind.DEPLOY, Status.SUCCEEDED),
        (production, DeploymentKind.DEPLOY, Status.ROLLED_BACK),
        (production, DeploymentKind.ROLLBACK, Status.SUCCEEDED),
        (production, DeploymentKind.DEPLOY, Status.RUNNING),
    ):
        run = Run.objects.create(kind=f"deployments.{kind}", status=status, environment=environment)
        if status != Status.RUNNING:
            Run.objects.filter(pk=run.pk).update(finished_at=finished)
        Deployment.objects.create(run=run, environment=environment, release=release, kind=kind)
    samples = scrape()
    total = "opsconsole_deployments_finished_total"
    assert value(samples, total, environment="staging", kind="deploy", status="succeeded") == 2
    assert value(samples, total, environment="production", kind="deploy", status="rolled_back") == 1
    assert value(samples, total, environment="production", kind="rollback", status="succeeded") == 1
    assert (total, (("environment", "production"), ("kind", "deploy"), ("status", "running"))) not in samples
    assert value(
        samples,
        "opsconsole_deployment_last_finished_timestamp_seconds",
        environment="production",
        kind="rollback",
        status="succeeded",
    ) == pytest.approx(finished.timestamp())


def make_backup(environment, policy, finished_at, **fields) -> Backup:
    fields.setdefault("status", BackupStatus.AVAILABLE)
    return Backup.objects.create(
        environment=environment,
        policy=policy,
        policy_name=policy.name,
        kind=policy.kind,
        region="us-east-1",
        started_at=finished_at - timedelta(minutes=1),
        finished_at=finished_at,
        **fields,
    )


def test_a_stale_backup_exports_its_timestamp_and_the_policys_rpo(staging):
    policy = BackupPolicy.objects.create(environment=staging, kind=Kind.PG_DUMP, name="nightly", rpo_minutes=60)
    BackupPolicy.objects.create(environment=staging, kind=Kind.RDS_SNAPSHOT, name="never-ran", rpo_minutes=30)
    stale = timezone.now() - timedelta(hours=5)
    make_backup(staging, policy, stale)
    make_backup(staging, policy, timezone.now() - timedelta(hours=1), status=BackupStatus.FAILED)
    make_backup(
        staging,
        policy,
        timezone.now() - timedelta(hours=2),
        verification=Verification.FAILED,
        verified_at=timezone.now(),
    )
    samples = scrape()
    labels = {"environment": "staging", "kind": "pg_dump"}
    assert value(samples, "opsconsole_backup_newest_success_timestamp_seconds", **labels) == pytest.approx(
        stale.timestamp()
    )
    assert value(samples, "opsconsole_backup_policy_newest_success_timestamp_seconds", policy="nightly", **labels) == (
        pytest.approx(stale.timestamp())
    )
    assert value(samples, "opsconsole_backup_policy_rpo_seconds", policy="nightly", **labels) == 3600
    never = {"environment": "staging", "kind": "rds_snapshot", "policy": "never-ran"}
    assert value(samples, "opsconsole_backup_policy_newest_success_timestamp_seconds", **never) == 0
    assert value(samples, "opsconsole_backup_policy_rpo_seconds", **never) == 1800


def test_the_newest_restore_test_decides_whether_verification_is_failing(staging):
    policy = BackupPolicy.objects.create(environment=staging, kind=Kind.PG_DUMP, name="nightly")
    now = timezone.now()
    make_backup(staging, policy, now, verification=Verification.PASSED, verified_at=now - timedelta(hours=3))
    make_backup(staging, policy, now, verification=Verification.FAILED, verified_at=now - timedelta(hours=1))
    samples = scrape()
    labels = {"environment": "staging", "kind": "pg_dump"}
    assert value(samples, "opsconsole_backup_verification_failing", **labels) == 1
    assert value(samples, "opsconsole_backup_last_verified_timestamp_seconds", result="passed", **labels) == (
        pytest.approx((now - timedelta(hours=3)).timestamp())
    )
    make_backup(staging, policy, now, verification=Verification.PASSED, verified_at=now)
    assert value(scrape(), "opsconsole_backup_verification_failing", **labels) == 0


def test_drift_status_is_one_hot_per_workspace(staging):
    workspace = Workspace.objects.create(environment=staging, name="staging")
    workspace.mark_drift(Drift.DRIFTED, ["aws_s3_bucket.logs"])
    samples = scrape()
    labels = {"environment": "staging", "workspace": "staging"}
    assert value(samples, "opsconsole_terraform_drift", status="drifted", **labels) == 1
    assert value(samples, "opsconsole_terraform_drift", status="in_sync", **labels) == 0
    assert value(samples, "opsconsole_terraform_drift_checked_timestamp_seconds", **labels) == pytest.approx(
        workspace.drift_checked_at.timestamp()
    )


def test_queue_depth_is_zero_for_the_inline_queue(settings):
    settings.OPSCONSOLE_QUEUE = "inline"
    samples = scrape()
    assert value(samples, "opsconsole_queue_depth", backend="inline") == 0
    assert value(samples, "opsconsole_queue_up", backend="inline") == 1


def test_queue_depth_reads_celerys_redis_list(settings):
    import redis

    settings.OPSCONSOLE_QUEUE = "celery"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("celery")
    try:
        client.rpush("celery", "one", "two", "three")
        assert value(scrape(), "opsconsole_queue_depth", backend="celery") == 3
    finally:
        client.delete("celery")


def test_an_unreachable_broker_is_reported_as_down_not_as_an_error(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    samples = scrape()
    assert value(samples, "opsconsole_queue_up", backend="celery") == 0
    assert ("opsconsole_queue_depth", (("backend", "celery"),)) not in samples


def test_request_metrics_move_with_the_consoles_traffic():
    key = {"method": "GET", "view": "healthz", "status": "200"}
    before = scrape().get(("opsconsole_http_requests_total", tuple(sorted(key.items()))), 0)
    for _ in range(3):
        assert Client().get("/healthz").status_code == 200
    samples = scrape()
    assert value(samples, "opsconsole_http_requests_total", **key) == before + 3
    assert value(samples, "opsconsole_http_request_duration_seconds_count", method="GET", view="healthz") >= 3
    assert not [name for name, _ in samples if name.endswith("_created")]


def make_drill(plan, *, rto: float | None, rpo: float | None, status: str, finished_at) -> None:
    from dr.models import DROperation

    run = Run.objects.create(kind="dr.drill", status=status, environment=plan.environment, finished_at=finished_at)
    DROperation.objects.create(
        plan=plan, run=run, operation="drill", reason="quarterly", rto_seconds=rto, rpo_seconds=rpo
    )


def test_dr_readiness_and_the_last_drill_come_from_the_dr_plan(staging, production):
    from dr.models import DRPlan, ReadinessCheck

    fields = {
        "hosted_zone_id": "Z1",
        "record_name": "api.example.com.",
        "primary_target": "primary.example.com",
        "dr_target": "dr.example.com",
        "dr_db_instance": "db-dr",
        "dr_ecs_cluster": "dr",
        "dr_ecs_service": "api-dr",
        "dr_smoke_url": "https://dr.example.com/health",
    }
    plan = DRPlan.objects.create(environment=production, rpo_minutes=15, rto_minutes=30, **fields)
    DRPlan.objects.create(environment=staging, **fields)  # never checked, never drilled
    ReadinessCheck.objects.create(plan=plan, ok=True)
    ReadinessCheck.objects.create(plan=plan, ok=False)
    drilled = timezone.now() - timedelta(days=3)
    make_drill(plan, rto=1250.5, rpo=300, status=Status.SUCCEEDED, finished_at=drilled)
    make_drill(plan, rto=None, rpo=None, status=Status.FAILED, finished_at=timezone.now())

    samples = scrape()
    assert value(samples, "opsconsole_dr_ready", environment="production") == 0
    assert value(samples, "opsconsole_dr_ready", environment="staging") == 0
    assert value(samples, "opsconsole_dr_readiness_checked_timestamp_seconds", environment="staging") == 0
    assert value(samples, "opsconsole_dr_target_seconds", environment="production", objective="rto") == 1800
    assert value(samples, "opsconsole_dr_last_drill_rto_seconds", environment="production") == 1250.5
    assert value(samples, "opsconsole_dr_last_drill_rpo_seconds", environment="production") == 300
    assert value(samples, "opsconsole_dr_last_drill_timestamp_seconds", environment="production") == pytest.approx(
        drilled.timestamp()
    )
    assert ("opsconsole_dr_last_drill_rto_seconds", (("environment", "staging"),)) not in samples

    ReadinessCheck.objects.create(plan=plan, ok=True)
    assert value(scrape(), "opsconsole_dr_ready", environment="production") == 1


def test_a_scrape_costs_the_same_few_queries_however_much_history_there_is(staging, production):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape()
        return len(captured)

    few = queries()
    for environment in (staging, production):
        policy = BackupPolicy.objects.create(environment=environment, kind=Kind.PG_DUMP, name="nightly")
        Workspace.objects.create(environment=environment, name=environment.name)
        for _ in range(5):
            make_backup(
                environment, policy, timezone.now(), verification=Verification.PASSED, verified_at=timezone.now()
            )
            Run.objects.create(
                kind="selftest", status=Status.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now()
            )
    assert queries() == few <= 12
