"""The bake's CloudWatch alarms against the strict sandbox: composite alarms are watched, a name
CloudWatch does not know refuses the deploy before anything changes, INSUFFICIENT_DATA at the end
of the bake fails unless the environment says it passes, and the run log names what was watched."""

from pathlib import Path

import hcl2
import pytest
from botocore.stub import Stubber
from django.conf import settings

from deployments import ecs
from deployments.services import request_deploy
from infrastructure.policy import OPTIONS
from opsconsole.aws import Poller
from opsconsole.environments.models import InsufficientData
from opsconsole.runs.models import EnvironmentLock, Status
from sandbox.bootstrap import clients
from tests.deployments.conftest import wire

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UNHEALTHY = "sentinel-staging-api-unhealthy-hosts"


def messages(run) -> list[str]:
    return list(run.events.order_by("seq").values_list("message", flat=True))


def task_definition(stack, environment) -> str:
    ecs_client = clients(stack.endpoint)("ecs")
    found = ecs_client.describe_services(cluster=environment.ecs_cluster, services=[environment.ecs_service])
    return found["services"][0]["taskDefinition"]


def registered_revisions(stack, environment) -> list[str]:
    return clients(stack.endpoint)("ecs").list_task_definitions(familyPrefix=environment.task_family)[
        "taskDefinitionArns"
    ]


def deploy(environment, release, users):
    run = request_deploy(environment, release, users["deployer"])
    run.refresh_from_db()
    return run


def test_the_sandbox_stack_watches_a_composite_alarm_over_both_colours(stack):
    names = stack.environments["staging"].alarm_names
    assert UNHEALTHY in names
    cloudwatch = clients(stack.endpoint)("cloudwatch")
    # As on AWS, DescribeAlarms without AlarmTypes does not return composite alarms at all.
    assert cloudwatch.describe_alarms(AlarmNames=names)["CompositeAlarms"] == []
    (composite,) = cloudwatch.describe_alarms(AlarmNames=[UNHEALTHY], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert composite["AlarmRule"] == f'ALARM("{UNHEALTHY}-blue") OR ALARM("{UNHEALTHY}-green")'
    assert composite["StateValue"] == "OK"


def test_a_composite_alarm_in_alarm_fails_the_bake_and_rolls_back(users, staging_aws, releases, stack):
    before = task_definition(stack, staging_aws)
    # Green's target group: what the old blue-only alarm never watched.
    clients(stack.endpoint)("cloudwatch").set_alarm_state(
        AlarmName=f"{UNHEALTHY}-green", StateValue="ALARM", StateReason="1 unhealthy host"
    )

    run = deploy(staging_aws, releases["v1.1.0"], users)

    assert run.status == Status.ROLLED_BACK, (run.error, messages(run))
    assert run.error.startswith(f"Alarm in ALARM during bake: {UNHEALTHY} (Composite alarm rule evaluated to ALARM")
    assert task_definition(stack, staging_aws) == before
    assert EnvironmentLock.objects.filter(environment=staging_aws, run=None).exists()
    (watched,) = [m for m in messages(run) if m.startswith("Alarms watched: ")]
    assert watched.endswith(f"{UNHEALTHY} (composite): ALARM.")


def test_a_misspelled_alarm_name_refuses_the_deploy_before_anything_changes(users, staging, releases, stack):
    names = stack.environments["staging"].alarm_names
    environment = wire(staging, stack, "staging", alarm_names=[*names, "sentinel-staging-api-5xxx"])
    before, revisions = task_definition(stack, environment), registered_revisions(stack, environment)

    run = deploy(environment, releases["v1.1.0"], users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    assert run.error == (
        "CloudWatch has no alarm named sentinel-staging-api-5xxx: the bake cannot watch it. Fix the "
        "environment's alarm names (or create the alarms). Nothing was changed on the service."
    )
    assert [(step["name"], step["state"]) for step in run.steps][:2] == [
        ("Read the service", "failed"),
        ("Register the task definition", "pending"),
    ]
    assert task_definition(stack, environment) == before
    assert registered_revisions(stack, environment) == revisions  # nothing registered
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


def test_insufficient_data_at_the_end_of_the_bake_fails_by_default(users, staging, releases, stack):
    quiet = new_alarm_without_data(stack)
    environment = wire(staging, stack, "staging", alarm_names=[*stack.environments["staging"].alarm_names, quiet])
    assert environment.insufficient_data == InsufficientData.FAIL
    before = task_definition(stack, environment)

    run = deploy(environment, releases["v1.1.0"], users)

    assert run.status == Status.ROLLED_BACK, (run.error, messages(run))
    assert run.error == (
        f"Alarm in INSUFFICIENT_DATA at the end of the bake: {quiet}; the deploy could not be verified "
        "(the environment counts INSUFFICIENT_DATA as a failure)"
    )
    assert task_definition(stack, environment) == before


def test_insufficient_data_passes_when_the_environment_says_so(users, staging, releases, stack):
    quiet = new_alarm_without_data(stack)
    environment = wire(
        staging,
        stack,
        "staging",
        alarm_names=[*stack.environments["staging"].alarm_names, quiet],
        insufficient_data=InsufficientData.PASS,
    )

    run = deploy(environment, releases["v1.1.0"], users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    assert f"{quiet}: INSUFFICIENT_DATA, counted as a pass (the environment's policy)." in messages(run)


def test_the_run_log_names_the_watched_alarms_and_their_states(users, staging_aws, releases, stack):
    run = deploy(staging_aws, releases["v1.1.0"], users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    watched = (
        "sentinel-staging-api-5xx: OK; sentinel-staging-api-latency-p99: OK; sentinel-staging-db-cpu: OK; "
        f"{UNHEALTHY} (composite): OK"
    )
    log = messages(run)
    assert (
        f"The bake watches 4 alarm(s): {watched}. INSUFFICIENT_DATA at the end of the bake counts as a failure."
    ) in log
    assert f"Alarms watched: {watched}." in log


def new_alarm_without_data(stack) -> str:
    """A metric alarm with no datapoints and the default TreatMissingData: INSUFFICIENT_DATA."""
    name = "sentinel-staging-api-requests"
    cloudwatch = clients(stack.endpoint)("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="RequestCount",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    return name


# --- Reading alarms: pages of 100 names, every page of each answer ----------------------------------


def test_alarms_are_read_100_names_a_call_following_next_tokens():
    cloudwatch = clients("http://127.0.0.1:9")("cloudwatch")  # never reached: the Stubber answers
    names = [f"alarm-{i:03}" for i in range(150)]
    types = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}

    def metric(name: str, state: str = "OK") -> dict:
        return {"AlarmName": name, "StateValue": state, "StateReason": "r"}

    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [metric(n) for n in names[:50]], "NextToken": "page-2"},
            {"AlarmNames": names[:100], **types},
        )
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [metric(n) for n in names[50:99]], "CompositeAlarms": [metric(names[99], "ALARM")]},
            {"AlarmNames": names[:100], **types, "NextToken": "page-2"},
        )
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [metric(n) for n in names[100:149]]},  # alarm-149 does not exist
            {"AlarmNames": names[100:], **types},
        )
        alarms = ecs.read_alarms(cloudwatch, Poller(log=lambda message: None, interval=0), names)
        stub.assert_no_pending_responses()

    assert alarms.missing == ["alarm-149"]
    assert [a.name for a in alarms.found] == names[:149]
    assert [(a.name, a.composite) for a in alarms.in_state("ALARM")] == [("alarm-099", True)]


# --- terraform/alarms.tf and the sandbox stack --------------------------------------------------------


def test_terraform_watches_unhealthy_hosts_in_both_colours_under_the_names_the_sandbox_uses(stack):
    code = hcl2.loads((Path(settings.BASE_DIR) / "terraform" / "alarms.tf").read_text(), serialization_options=OPTIONS)
    (alarms,) = [entry["bake_alarms"] for entry in code["locals"]]
    groups = {key: alarm["dimensions"].get("TargetGroup") for key, alarm in alarms.items()}
    assert groups["api-unhealthy-hosts-blue"] == "${aws_lb_target_group.blue.arn_suffix}"
    assert groups["api-unhealthy-hosts-green"] == "${aws_lb_target_group.green.arn_suffix}"
    (composite,) = [
        entry["aws_cloudwatch_composite_alarm"]["unhealthy_hosts"]
        for entry in code["resource"]
        if "aws_cloudwatch_composite_alarm" in entry
    ]
    assert composite["alarm_name"] == "${local.name}-api-unhealthy-hosts"
    assert "api-unhealthy-hosts-${colour}" in composite["alarm_rule"] and '["blue", "green"]' in composite["alarm_rule"]

    # The output alarm_names: the metric alarms but the per-colour ones, and the composite.
    watched = [f"sentinel-staging-{key}" for key in alarms if not key.startswith("api-unhealthy-hosts-")]
    assert sorted(stack.environments["staging"].alarm_names) == sorted([*watched, UNHEALTHY])
    created = clients(stack.endpoint)("cloudwatch").describe_alarms(
        AlarmNamePrefix="sentinel-staging-", AlarmTypes=["MetricAlarm", "CompositeAlarm"], MaxRecords=100
    )
    assert sorted(a["AlarmName"] for a in created["MetricAlarms"]) == sorted(f"sentinel-staging-{k}" for k in alarms)
