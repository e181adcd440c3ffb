"""What a lost blue/green deploy left behind, read from the listener on the sandbox AWS: forward
weights are relative, and a listener may forward to one target group with no ForwardConfig."""

import pytest

from deployments.lost import service_left_behind
from opsconsole.environments.models import Strategy
from opsconsole.runs.models import Run, Status
from sandbox.bootstrap import clients
from tests.deployments.conftest import wire

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bluegreen(staging, stack):
    return wire(staging, stack, "staging", strategy=Strategy.BLUE_GREEN, migration_command=[])


def lost_run(environment) -> Run:
    fields = ("aws_region", "role_arn", "strategy", "listener_arn", "blue_target_group_arn", "green_target_group_arn")
    params = {name: getattr(environment, name) for name in fields}
    params["live_color"] = "blue"
    return Run.objects.create(kind="deployments.deploy", status=Status.ERRORED, environment=environment, params=params)


def forward(stack, environment, action: dict) -> None:
    elbv2 = clients(stack.endpoint)("elbv2")
    elbv2.modify_listener(ListenerArn=environment.listener_arn, DefaultActions=[{"Type": "forward", **action}])


def test_a_single_target_group_weighted_1_is_all_of_the_traffic(bluegreen, stack):
    forward(
        stack,
        bluegreen,
        {"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": bluegreen.blue_target_group_arn, "Weight": 1}]}},
    )
    message, facts = service_left_behind(lost_run(bluegreen))
    assert facts["on"] == "kept", message
    assert "all traffic still goes to blue" in message


def test_relative_weights_are_shown_as_shares(bluegreen, stack):
    groups = [
        {"TargetGroupArn": bluegreen.blue_target_group_arn, "Weight": 3},
        {"TargetGroupArn": bluegreen.green_target_group_arn, "Weight": 1},
    ]
    forward(stack, bluegreen, {"ForwardConfig": {"TargetGroups": groups}})
    message, facts = service_left_behind(lost_run(bluegreen))
    assert facts["on"] == "split"
    assert "traffic is SPLIT: blue 75%, green 25%" in message


def test_a_plain_target_group_action_is_read_as_all_traffic_to_that_group(bluegreen, stack):
    forward(stack, bluegreen, {"TargetGroupArn": bluegreen.blue_target_group_arn})
    message, facts = service_left_behind(lost_run(bluegreen))
    assert facts["on"] == "kept", message
    forward(stack, bluegreen, {"TargetGroupArn": bluegreen.green_target_group_arn})
    message, facts = service_left_behind(lost_run(bluegreen))
    assert facts["on"] == "new", message
    assert "all traffic goes to green" in message


def test_the_forward_is_read_behind_an_authenticate_action(bluegreen, stack):
    elbv2 = clients(stack.endpoint)("elbv2")
    groups = [
        {"TargetGroupArn": bluegreen.blue_target_group_arn, "Weight": 3},
        {"TargetGroupArn": bluegreen.green_target_group_arn, "Weight": 1},
    ]
    elbv2.modify_listener(
        ListenerArn=bluegreen.listener_arn,
        DefaultActions=[
            {
                "Type": "authenticate-oidc",
                "Order": 1,
                "AuthenticateOidcConfig": {
                    "Issuer": "https://idp.example.com",
                    "AuthorizationEndpoint": "https://idp.example.com/authorize",
                    "TokenEndpoint": "https://idp.example.com/token",
                    "UserInfoEndpoint": "https://idp.example.com/userinfo",
                    "ClientId": "sentinel",
                    "ClientSecret": "secret",
                },
            },
            {"Type": "forward", "Order": 2, "ForwardConfig": {"TargetGroups": groups}},
        ],
    )
    message, facts = service_left_behind(lost_run(bluegreen))
    assert facts["on"] == "split", message
    assert "traffic is SPLIT: blue 75%, green 25%" in message
