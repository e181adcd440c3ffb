"""The sandbox's load balancer (sandbox.strict.elbv2) is as strict as ELBv2: target health follows
the ECS tasks, an empty target group's share answers 503, and listener actions AWS refuses are
refused (each rule cites the API reference in the module)."""

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from sandbox.bootstrap import clients

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OIDC = {
    "Issuer": "https://idp.example.com",
    "AuthorizationEndpoint": "https://idp.example.com/authorize",
    "TokenEndpoint": "https://idp.example.com/token",
    "UserInfoEndpoint": "https://idp.example.com/userinfo",
    "ClientId": "sentinel",
}


def statuses(url: str, count: int) -> list[int]:
    found = []
    for _ in range(count):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                found.append(response.status)
        except urllib.error.HTTPError as exc:
            found.append(exc.code)
    return found


def healthy(elbv2, target_group_arn: str) -> int:
    found = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return sum(1 for t in found if t["TargetHealth"]["State"] == "healthy")


def test_target_health_follows_the_tasks_and_an_empty_colour_answers_503(stack):
    s = stack.environments["staging"]
    elbv2, ecs = clients(stack.endpoint)("elbv2"), clients(stack.endpoint)("ecs")
    assert healthy(elbv2, s.blue_target_group_arn) == 2
    assert healthy(elbv2, s.green_target_group_arn) == 0  # green is at 0 tasks, as terraform has it
    groups = [{"TargetGroupArn": s.blue_target_group_arn, "Weight": 50}]
    groups.append({"TargetGroupArn": s.green_target_group_arn, "Weight": 50})
    elbv2.modify_listener(
        ListenerArn=s.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
    )
    answers = statuses(s.live_url, 20)
    assert 8 <= answers.count(503) <= 12 and answers.count(503) + answers.count(200) == 20, answers

    ecs.update_service(cluster=s.cluster, service=s.green_service, desiredCount=2)
    deadline = time.monotonic() + 10
    while healthy(elbv2, s.green_target_group_arn) < 2:
        assert time.monotonic() < deadline, "green's tasks never became healthy targets"
        time.sleep(0.1)
    assert statuses(s.live_url, 20) == [200] * 20

    ecs.update_service(cluster=s.cluster, service=s.service, desiredCount=0)
    assert healthy(elbv2, s.blue_target_group_arn) == 0


def test_listener_actions_aws_refuses_are_refused(stack):
    s = stack.environments["staging"]
    elbv2 = clients(stack.endpoint)("elbv2")
    blue = {"Type": "forward", "Order": 2, "TargetGroupArn": s.blue_target_group_arn}
    oidc = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {**OIDC, "ClientSecret": "s"}}
    http = elbv2.describe_listeners(
        LoadBalancerArn=elbv2.describe_load_balancers(Names=["sentinel-staging"])["LoadBalancers"][0]["LoadBalancerArn"]
    )
    port_80 = next(lis["ListenerArn"] for lis in http["Listeners"] if lis["Port"] == 80)
    refused = [
        (s.listener_arn, [{**blue, "TargetGroupArn": s.blue_target_group_arn[:-4] + "0000"}], "TargetGroupNotFound"),
        (port_80, [oidc, blue], "InvalidLoadBalancerAction"),  # authenticate on HTTP
        (s.listener_arn, [{**oidc, "Order": 3}, blue], "InvalidLoadBalancerAction"),  # forward before it
        (s.listener_arn, [{k: v for k, v in oidc.items() if k != "Order"}, blue], "ValidationError"),
        (s.listener_arn, [{**oidc, "AuthenticateOidcConfig": OIDC}, blue], "ValidationError"),  # no secret
    ]
    for listener, actions, code in refused:
        with pytest.raises(ClientError) as refusal:
            elbv2.modify_listener(ListenerArn=listener, DefaultActions=actions)
        assert refusal.value.response["Error"]["Code"] == code, actions

    elbv2.modify_listener(ListenerArn=s.listener_arn, DefaultActions=[oidc, blue])
    described = elbv2.describe_listeners(ListenerArns=[s.listener_arn])["Listeners"][0]["DefaultActions"]
    assert described[0]["AuthenticateOidcConfig"] == OIDC  # the secret is never returned
    kept = {**oidc, "AuthenticateOidcConfig": {**OIDC, "UseExistingClientSecret": True}}
    elbv2.modify_listener(ListenerArn=s.listener_arn, DefaultActions=[kept, blue])
