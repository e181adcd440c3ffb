"""DR against the sandbox AWS: a DR plan wired to the stack's DR resources, a snapshot copied to
the DR region, a local HTTP server standing in for the DR endpoint, and two DR operators."""

from __future__ import annotations

import http.server
import threading

import pytest

from deployments.models import Release
from dr.models import DRPlan
from opsconsole.access.models import Role
from sandbox.bootstrap import DR_REGION, REGION, clients
from tests.conftest import make_user
from tests.deployments.conftest import releases, sandbox_endpoint, stack, wire  # noqa: F401


class Endpoint(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def dr_endpoint():
    """An HTTP server answering 200 (set `.status` on the handler class to make it fail)."""
    handler = type("DREndpoint", (Endpoint,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/health"
    server.handler = handler
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def dr_snapshot(stack):  # noqa: F811
    """A snapshot of staging's database copied to the DR region, as the backups app makes them."""
    name = stack.environments["staging"].db_instance
    east, west = clients(stack.endpoint, REGION)("rds"), clients(stack.endpoint, DR_REGION)("rds")
    arn = east.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier="opsconsole-staging-1")["DBSnapshot"][
        "DBSnapshotArn"
    ]
    west.copy_db_snapshot(
        SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="opsconsole-staging-1", SourceRegion=REGION
    )
    return "opsconsole-staging-1"


@pytest.fixture
def operators(users, staging):
    """dora (a DR operator in staging) and a second DR operator, dave."""
    return {"dora": users["dr_operator"], "dave": make_user("dave", Role.DR_OPERATOR, staging)}


@pytest.fixture
def plan(staging, stack, releases, dr_endpoint, settings):  # noqa: F811
    settings.DEPLOY_POLL_MS = 20
    wire(staging, stack, "staging")
    staging.live_release = releases["v1.1.0"]
    staging.save()
    s = stack.environments["staging"]
    return DRPlan.objects.create(
        environment=staging,
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
        dr_smoke_url=dr_endpoint.url,
        primary_smoke_url=dr_endpoint.url,
        rollout_timeout_seconds=20,
        restore_timeout_seconds=20,
    )


def offline_plan(environment, **fields) -> DRPlan:
    """A DR plan with made-up names and an endpoint nothing answers: for the rules, pages and API
    that never reach AWS. `fields` override or add to the defaults."""
    defaults = {
        "hosted_zone_id": "Z1",
        "record_name": "api.example.com.",
        "primary_target": "primary.elb",
        "dr_target": "dr.elb",
        "db_source_identifier": "db",
        "dr_db_instance": "db-dr",
        "dr_ecs_cluster": "c-dr",
        "dr_ecs_service": "s-dr",
        "dr_smoke_url": "http://127.0.0.1:9/health",
    }
    return DRPlan.objects.create(environment=environment, **{**defaults, **fields})


def record_target(stack, plan, name=None) -> str | None:  # noqa: F811
    route53 = clients(stack.endpoint)("route53")
    found = route53.list_resource_record_sets(HostedZoneId=plan.hosted_zone_id)["ResourceRecordSets"]
    wanted = (name or plan.record_name).rstrip(".") + "."
    for record in found:
        if record["Name"] == wanted and record["Type"] == "CNAME":
            return record["ResourceRecords"][0]["Value"]
    return None


__all__ = ["DRPlan", "Release", "record_target"]
