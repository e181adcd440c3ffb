"""Secrets never leave the places meant for them.

One test runs a real deploy (the sandbox AWS), a real backup (pg_dump of a real PostgreSQL
database into the sandbox S3) and a real Terraform plan, each configured with a known secret the
way an operator configures it:

- the deploy: a plain environment variable in the service's task definition, which the deploy
  copies into the new revision (a secret there is the team's choice; the console must not spread it);
- the backup: the database password, from `password_source = env:BACKUP_DB_PASSWORD_...`, which
  the database (the test PostgreSQL behind a front that checks it with SCRAM over TLS) verifies;
- Terraform: a sensitive variable, from the workspace's `secret_variables`.

Then it looks for the three values everywhere the console writes: every text and JSON column of
every table (found through information_schema), a pg_dump of the whole test database, the run
events and the audit log, every log record and everything printed, and the command line of every
child process (each Popen's argv, and /proc/*/cmdline sampled while the runs ran).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from django.db import connection

from backups.models import Backup
from backups.services import request_backup
from deployments.services import request_deploy
from infrastructure.models import Plan
from infrastructure.services import request_plan
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, RunEvent, Status
from sandbox.bootstrap import REGION
from tests.backups.conftest import password_protected, server  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


class ChildProcesses:
    """Every child's argv (through subprocess.Popen) and, independently, the cmdline of every
    process on the machine sampled every few milliseconds while the runs go."""

    def __init__(self):
        self.argv: list[list[str]] = []
        self.env: list[dict] = []
        self.sampled: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        self.sampled.add((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            self._stop.wait(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture
def children(monkeypatch):
    recorder = ChildProcesses()
    original = subprocess.Popen.__init__

    def recording_init(self, args, *rest, **kwargs):
        recorder.argv.append([str(arg) for arg in (args if isinstance(args, list | tuple) else [args])])
        recorder.env.append(dict(kwargs.get("env") or os.environ))
        return original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    with recorder:
        yield recorder


def columns_holding(secret: str) -> list[str]:
    """Every text or JSON column of every table in which the secret appears."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) ORDER BY table_name, column_name",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        assert len(columns) > 100, "information_schema lists too few text columns: wrong schema?"
        for table, column in columns:
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{secret}%"])
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def dump_of_the_test_database() -> str:
    settings = connection.settings_dict
    db = server()
    result = subprocess.run(
        ["pg_dump", "--data-only", "--no-password", "-h", db["host"], "-p", str(db["port"]), "-U", db["user"]]
        + [settings["NAME"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "COPY public.runs_run" in result.stdout or "COPY public.runs_run " in result.stdout
    return result.stdout


def add_a_secret_to_the_task_definition(environment, secret: str) -> None:
    """What an operator did before the console: API_TOKEN in the service's task definition."""
    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster=environment.ecs_cluster, services=[environment.ecs_service])["services"][0]
    current = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    containers = current["containerDefinitions"]
    containers[0]["environment"] = [{"name": "API_TOKEN", "value": secret}]
    kept = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities", "executionRoleArn", "taskRoleArn")
    arn = ecs.register_task_definition(
        **{key: current[key] for key in kept if key in current}, containerDefinitions=containers
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=environment.ecs_cluster, service=environment.ecs_service, taskDefinition=arn)


def live_task_definition(environment) -> dict:
    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster=environment.ecs_cluster, services=[environment.ecs_service])["services"][0]
    return ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]


def test_secrets_reach_no_database_row_log_event_or_command_line(
    users,
    staging_aws,
    releases,
    pg_policy,
    password_protected,  # noqa: F811
    workspace,
    terraform_root,
    children,
    caplog,
    capfd,
    monkeypatch,
    settings,
):
    secrets = {
        "deploy": f"deploy-secret-{uuid.uuid4().hex}",
        "backup": f"backup-secret-{uuid.uuid4().hex}",
        "terraform": f"terraform-secret-{uuid.uuid4().hex}",
    }
    caplog.set_level(logging.DEBUG)
    settings.BACKUP_POLL_SECONDS = 0.02
    add_a_secret_to_the_task_definition(staging_aws, secrets["deploy"])
    database = password_protected(pg_policy, secrets["backup"])
    monkeypatch.setenv("OPSCONSOLE_TEST_API_KEY", secrets["terraform"])  # workspace.secret_variables reads it

    deploy = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    backup = request_backup(pg_policy, users["backup_operator"])
    plan = request_plan(workspace.environment, users["deployer"])

    for run in (deploy, backup, plan):
        run.refresh_from_db()
        assert run.status == Status.SUCCEEDED, (run.kind, run.error)
    # Each secret really went where it belongs, so its absence below means something.
    assert {"name": "API_TOKEN", "value": secrets["deploy"]} in live_task_definition(staging_aws)[
        "containerDefinitions"
    ][0]["environment"]
    assert Backup.objects.get(run=backup).status == "available"
    pg_dumps = [
        env
        for argv, env in zip(children.argv, children.env, strict=True)
        if argv[0] == "pg_dump" and "--version" not in argv
    ]
    assert pg_dumps and all(env.get("PGPASSWORD") == secrets["backup"] for env in pg_dumps)
    assert database.seen and all(seen.authenticated for seen in database.seen)  # the right password
    terraform_envs = [env for argv, env in zip(children.argv, children.env, strict=True) if "plan" in argv]
    assert terraform_envs and all(env.get("TF_VAR_api_key") == secrets["terraform"] for env in terraform_envs)
    assert Plan.objects.filter(run=plan).exists()
    assert len(children.argv) >= 3
    # The sampler saw the children running (Terraform runs long enough to be caught every time).
    assert any("infrastructure.embedded" in cmdline for cmdline in children.sampled)

    printed = capfd.readouterr()
    dump = dump_of_the_test_database()
    for name, secret in secrets.items():
        assert not columns_holding(secret), f"the {name} secret is stored in {columns_holding(secret)}"
        assert secret not in dump, f"the {name} secret is in a dump of the database"
        assert not RunEvent.objects.filter(message__contains=secret).exists()
        assert not any(secret in str(data) for data in RunEvent.objects.values_list("data", flat=True))
        assert not any(secret in str(row) for row in AuditEvent.objects.values_list("target", "details"))
        assert not any(secret in str(row) for row in Run.objects.values_list("params", "result", "error", "steps"))
        assert not any(secret in record.getMessage() or secret in str(record.__dict__) for record in caplog.records)
        assert secret not in printed.out and secret not in printed.err, f"the {name} secret was printed"
        assert not any(secret in " ".join(argv) for argv in children.argv), f"the {name} secret is in an argv"
        assert not any(secret in cmdline for cmdline in children.sampled), f"the {name} secret is in a cmdline"
    # Log files, wherever the console or Terraform might write one.
    for directory in (Path(settings.VAR_DIR), Path(os.environ["OPSCONSOLE_VAR_DIR"]), terraform_root):
        for log_file in directory.rglob("*.log"):
            text = log_file.read_text(errors="replace")
            assert not any(secret in text for secret in secrets.values()), f"a secret is in {log_file}"
