"""What moto cannot produce, with botocore's Stubber: throttling while waiting for the DR restore
(retried), a restore that ends `incompatible-restore`, a Route53 change that stays PENDING."""

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from dr import aws as draws
from opsconsole.aws import Poller, StepFailed


def poller(clock=None) -> Poller:
    ticks = iter(range(0, 10_000, 10))
    return Poller(log=lambda _: None, interval=0, sleep=lambda _: None, clock=clock or (lambda: next(ticks)))


def instance(status: str) -> dict:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "sentinel-production-dr",
                "DBInstanceStatus": status,
                "Endpoint": {"Address": "sentinel-production-dr.abc.us-west-2.rds.amazonaws.com", "Port": 5432},
            }
        ]
    }


def test_throttling_while_waiting_for_the_restore_is_retried():
    rds = boto3.client("rds", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", instance("creating"))
        stub.add_client_error("describe_db_instances", "Throttling", "Rate exceeded", 400)
        stub.add_response("describe_db_instances", instance("available"))
        found = draws.wait_for_instance(rds, poller(), "sentinel-production-dr", timeout=100)
    assert found["DBInstanceStatus"] == "available"


def test_an_incompatible_restore_fails_the_step_with_the_status():
    rds = boto3.client("rds", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", instance("creating"))
        stub.add_response("describe_db_instances", instance("incompatible-restore"))
        with pytest.raises(StepFailed, match="incompatible-restore"):
            draws.wait_for_instance(rds, poller(), "sentinel-production-dr", timeout=100)


def test_a_dns_change_that_never_syncs_times_out():
    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    pending = {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": datetime.now(UTC)}}
    with Stubber(route53) as stub:
        for _ in range(3):
            stub.add_response("get_change", pending, {"Id": "/change/C1"})
        with pytest.raises(StepFailed, match="not INSYNC within 15s"):
            draws.wait_insync(route53, poller(), "/change/C1", timeout=15)
