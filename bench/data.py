"""History at scale, generated fast: deployments (each with its run) by INSERT ... SELECT over
generate_series, audit events by COPY with the hash chain computed in Python as the rows stream
(so the chain verifies, exactly as `opsconsole.audit.log.record()` would have written it).

`ensure_history(deployments, audit_events)` grows the bench database to at least those counts;
the modules that need history call it, so each can run alone (`--only audit`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time

ENVIRONMENTS = ["production", "staging", "qa", "perf"]
USERS = ["ada", "dana", "arthur", "bob", "ci"]
ACTIONS = [
    "deployments.deploy.requested",
    "runs.run.succeeded",
    "deployments.deploy.approved",
    "backups.backup.succeeded",
    "auth.login.succeeded",
    "runs.run.failed",
    "deployments.rollback.requested",
    "admin.deployments.environment.changed",
]
IPS = ["10.0.0.7", "10.0.3.21", None, "2001:db8::5"]
RELEASES = 50


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _users():
    from django.contrib.auth import get_user_model

    from opsconsole.access.models import Role, RoleBinding

    User = get_user_model()
    if not User.objects.filter(username="bench-admin").exists():
        admin = User.objects.create_user("bench-admin", "bench@example.com", "bench", is_staff=True, is_superuser=True)
        RoleBinding.objects.create(user=admin, role=Role.ADMIN)
    return User.objects.get(username="bench-admin")


def admin_user():
    return _users()


def _base():
    from deployments.models import Release
    from opsconsole.environments.models import Environment, Tier

    for name in ENVIRONMENTS:
        tier = Tier.PRODUCTION if name == "production" else Tier.STAGING
        Environment.objects.get_or_create(name=name, defaults={"tier": tier})
    for n in range(Release.objects.count(), RELEASES):
        Release.objects.create(
            repository="123456789012.dkr.ecr.us-east-1.amazonaws.com/api",
            tag=f"v1.{n}.0",
            digest="sha256:" + hashlib.sha256(str(n).encode()).hexdigest(),
            git_sha=hashlib.sha1(str(n).encode()).hexdigest(),
            registered_by_name="ci",
        )


def deployment_count() -> int:
    from deployments.models import Deployment

    return Deployment.objects.count()


def audit_count() -> int:
    from opsconsole.audit.models import AuditEvent

    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def add_deployments(count: int) -> None:
    """Append `count` finished deploy/rollback runs with their deployment rows, spread over the
    environments, releases and users, newest last."""
    from django.db import connection

    from deployments.models import Deployment, Release
    from opsconsole.environments.models import Environment
    from opsconsole.runs.models import Run

    env_ids = list(Environment.objects.order_by("pk").values_list("pk", flat=True))
    release_ids = list(Release.objects.order_by("pk").values_list("pk", flat=True))
    run_table, dep_table = Run._meta.db_table, Deployment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {run_table}")
        before = cursor.fetchone()[0]
        cursor.execute(
            f"""
            INSERT INTO {run_table} (kind, status, environment_id, params, result, error, requested_by_name,
                created_at, started_at, finished_at, worker, cancel_requested, steps, identity)
            SELECT CASE WHEN g %% 10 = 0 THEN 'deployments.rollback' ELSE 'deployments.deploy' END,
                (ARRAY['succeeded','succeeded','succeeded','failed','rolled_back','canceled'])[1 + g %% 6],
                (%s::bigint[])[1 + g %% %s], '{{}}'::jsonb, '{{}}'::jsonb, '',
                (%s::text[])[1 + g %% %s],
                now() - (%s - g) * interval '1 minute', now() - (%s - g) * interval '1 minute',
                now() - (%s - g) * interval '1 minute' + interval '40 seconds', 'bench', false, '[]'::jsonb, ''
            FROM generate_series(1, %s) g ORDER BY g
            """,
            [env_ids, len(env_ids), USERS, len(USERS), count, count, count, count],
        )
        cursor.execute(
            f"""
            INSERT INTO {dep_table} (run_id, environment_id, release_id, kind, previous_release_id,
                task_definition_arn, previous_task_definition_arn, color, freeze_override_reason, created_at)
            SELECT r.id, r.environment_id, (%s::bigint[])[1 + r.id %% %s],
                CASE WHEN r.kind = 'deployments.rollback' THEN 'rollback' ELSE 'deploy' END,
                (%s::bigint[])[1 + (r.id + 1) %% %s],
                'arn:aws:ecs:us-east-1:123456789012:task-definition/api:' || r.id,
                'arn:aws:ecs:us-east-1:123456789012:task-definition/api:' || (r.id - 1), '', '', r.created_at
            FROM {run_table} r WHERE r.id > %s ORDER BY r.id
            """,
            [release_ids, len(release_ids), release_ids, len(release_ids), before],
        )
        cursor.execute(f"ANALYZE {run_table}")
        cursor.execute(f"ANALYZE {dep_table}")


def _event_rows(first_seq: int, count: int, prev_hash: str, start: dt.datetime):
    """Rows for COPY, chained: each hash covers the canonical JSON of AuditEvent.canonical()."""
    for seq in range(first_seq, first_seq + count):
        at = start + dt.timedelta(milliseconds=250 * (seq - first_seq))
        action = ACTIONS[seq % len(ACTIONS)]
        actor = USERS[seq % len(USERS)]
        environment = ENVIRONMENTS[seq % len(ENVIRONMENTS)] if seq % 5 else ""
        ip = IPS[seq % len(IPS)]
        target = f"runs.run:{seq // 3}"
        request_id = f"{seq:032x}"
        user_agent = "Mozilla/5.0 (bench)" if ip else "celery"
        details = {"run": seq // 3, "release": f"v1.{seq % RELEASES}.0"}
        outcome = "failure" if seq % 17 == 0 else ("denied" if seq % 101 == 0 else "success")
        body = {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor_id": None,
            "actor_name": actor,
            "action": action,
            "target": target,
            "environment": environment,
            "ip": ip,
            "user_agent": user_agent,
            "request_id": request_id,
            "details": details,
            "outcome": outcome,
            "prev_hash": prev_hash,
        }
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        yield (seq, at, actor, action, target, environment, ip, user_agent, request_id,
               json.dumps(details), outcome, prev_hash, digest)  # fmt: skip
        prev_hash = digest


def add_audit_events(count: int) -> None:
    """Append `count` events to the chain by COPY, continuing from the last stored event."""
    from django.db import connection

    from opsconsole.audit.models import GENESIS_HASH, AuditEvent

    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "at").first()
    first_seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = max(last[2] + dt.timedelta(seconds=1), now - dt.timedelta(days=30)) if last else now - dt.timedelta(days=30)
    table = AuditEvent._meta.db_table
    columns = "seq, at, actor_name, action, target, environment, ip, user_agent, request_id, details, outcome, "
    columns += "prev_hash, hash"
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in _event_rows(first_seq, count, prev_hash, start):
                copy.write_row(row)
        cursor.execute(f"ANALYZE {table}")


def ensure_history(deployments: int, audit_events: int) -> None:
    """Grow the bench database to at least this many deployments and audit events."""
    _base()
    _users()
    have = deployment_count()
    if have < deployments:
        started = time.monotonic()
        add_deployments(deployments - have)
        log(f"{deployments - have:,} deployments generated in {time.monotonic() - started:.0f} s")
    have = audit_count()
    if have < audit_events:
        started = time.monotonic()
        add_audit_events(audit_events - have)
        log(f"{audit_events - have:,} audit events generated in {time.monotonic() - started:.0f} s")
