"""Blue/green as the load balancer sees it, through the sandbox's model of the listeners answering
(sandbox.strict.elbv2): the idle colour is scaled up and tested before it gets traffic, no request
to the production listener ever meets an empty colour, and the listener keeps what a deploy does
not own (authenticate actions, stickiness, rules)."""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

from deployments.models import Deployment
from deployments.services import request_deploy
from opsconsole.environments.models import Color, Strategy
from opsconsole.runs.models import Status
from sandbox.bootstrap import clients, listener_url
from tests.deployments.conftest import wire

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OIDC = {
    "Issuer": "https://idp.example.com",
    "AuthorizationEndpoint": "https://idp.example.com/authorize",
    "TokenEndpoint": "https://idp.example.com/token",
    "UserInfoEndpoint": "https://idp.example.com/userinfo",
    "ClientId": "sentinel",
}


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


class Probe(threading.Thread):
    """A client of the production listener, counting the answers until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.statuses, self.revisions = url, Counter(), Counter()
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            status, body = get(self.url)
            self.statuses[status] += 1
            if status == 200:
                self.revisions[body["task_definition"].rsplit("/", 1)[1]] += 1
            self.done.wait(0.005)

    def stop(self) -> Counter:
        self.done.set()
        self.join(timeout=10)
        return self.statuses


def access_log(stack, environment_name: str, port: int) -> list[dict]:
    with urllib.request.urlopen(f"{stack.endpoint}/moto-api/sandbox/alb-access-log/sentinel-{environment_name}") as r:
        return [entry for entry in json.loads(r.read()) if entry["port"] == port]


def service(stack, environment, color: str) -> dict:
    ecs = clients(stack.endpoint)("ecs")
    name = environment.service_for(color)
    return ecs.describe_services(cluster=environment.ecs_cluster, services=[name])["services"][0]


def default_actions(stack, environment) -> list[dict]:
    elbv2 = clients(stack.endpoint)("elbv2")
    return elbv2.describe_listeners(ListenerArns=[environment.listener_arn])["Listeners"][0]["DefaultActions"]


def deploy(environment, release, user):
    run = request_deploy(environment, release, user)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    return run, Deployment.objects.get(run=run)


@pytest.fixture
def bluegreen(staging, stack):
    s = stack.environments["staging"]
    # One second of bake per step: long enough for the probe to meet every weight many times.
    return wire(
        staging,
        stack,
        "staging",
        strategy=Strategy.BLUE_GREEN,
        test_url=s.test_url,
        migration_command=[],
        bake_seconds=1,
    )


def test_two_deploys_in_a_row_each_test_the_new_revision_and_production_never_answers_503(
    users, bluegreen, releases, stack
):
    s = stack.environments["staging"]
    assert service(stack, bluegreen, Color.GREEN)["desiredCount"] == 0  # terraform's standby
    probe = Probe(s.live_url)
    probe.start()
    try:
        _, first_deployment = deploy(bluegreen, releases["v1.1.0"], users["deployer"])
        tested_first = access_log(stack, "staging", 8443)
        bluegreen.refresh_from_db()
        assert bluegreen.live_color == Color.GREEN
        assert service(stack, bluegreen, Color.GREEN)["desiredCount"] == 2  # blue's size
        assert service(stack, bluegreen, Color.BLUE)["desiredCount"] == 0  # scaled down after the bake

        _, second_deployment = deploy(bluegreen, releases["v1.2.0"], users["deployer"])
        tested_second = access_log(stack, "staging", 8443)[len(tested_first) :]
    finally:
        statuses = probe.stop()

    # Each smoke test went through the test listener to the idle colour's new revision.
    assert tested_first and {(e["service"], e["task_definition"]) for e in tested_first} == {
        (bluegreen.green_service, first_deployment.task_definition_arn)
    }
    assert second_deployment.color == Color.BLUE
    assert tested_second and {(e["service"], e["task_definition"]) for e in tested_second} == {
        (bluegreen.ecs_service, second_deployment.task_definition_arn)
    }
    # Production answered every request, from each revision in turn.
    assert statuses[503] == 0 and statuses[200] > 100, statuses
    assert {f"{bluegreen.task_family}:{n}" for n in (1, 2, 3)} <= set(probe.revisions), probe.revisions
    bluegreen.refresh_from_db()
    assert bluegreen.live_color == Color.BLUE
    assert service(stack, bluegreen, Color.BLUE)["desiredCount"] == 2
    assert service(stack, bluegreen, Color.GREEN)["desiredCount"] == 0


def test_the_old_colour_keeps_running_when_scaling_down_is_off(users, bluegreen, releases, stack, settings):
    settings.BLUE_GREEN_SCALE_DOWN = False
    deploy(bluegreen, releases["v1.1.0"], users["deployer"])
    assert service(stack, bluegreen, Color.BLUE)["desiredCount"] == 2
    assert service(stack, bluegreen, Color.GREEN)["desiredCount"] == 2


def test_stickiness_and_an_authenticate_action_survive_a_deploy(users, bluegreen, releases, stack):
    elbv2 = clients(stack.endpoint)("elbv2")
    forward = {
        "Type": "forward",
        "Order": 2,
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": bluegreen.blue_target_group_arn, "Weight": 100},
                {"TargetGroupArn": bluegreen.green_target_group_arn, "Weight": 0},
            ],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 600},
        },
    }
    authenticate = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {**OIDC, "ClientSecret": "s"}}
    elbv2.modify_listener(ListenerArn=bluegreen.listener_arn, DefaultActions=[authenticate, forward])

    deploy(bluegreen, releases["v1.1.0"], users["deployer"])

    actions = default_actions(stack, bluegreen)
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    assert actions[0]["AuthenticateOidcConfig"] == OIDC  # the secret is kept, never shown
    assert actions[1]["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 600}
    weights = {g["TargetGroupArn"]: g["Weight"] for g in actions[1]["ForwardConfig"]["TargetGroups"]}
    assert weights == {bluegreen.blue_target_group_arn: 0, bluegreen.green_target_group_arn: 100}
    status, body = get(stack.environments["staging"].live_url)
    assert status == 200 and body["service"] == bluegreen.green_service


def test_a_listener_rule_forwarding_to_the_old_colour_is_shifted(users, bluegreen, releases, stack):
    elbv2 = clients(stack.endpoint)("elbv2")
    rule = elbv2.create_rule(
        ListenerArn=bluegreen.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": bluegreen.blue_target_group_arn}],
    )["Rules"][0]

    _, deployment = deploy(bluegreen, releases["v1.1.0"], users["deployer"])

    shifted = elbv2.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"][0]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in shifted["ForwardConfig"]["TargetGroups"]}
    assert weights == {bluegreen.blue_target_group_arn: 0, bluegreen.green_target_group_arn: 100}
    # Blue is scaled down: /admin/ would answer 503 had the rule stayed on it.
    status, body = get(listener_url(stack.endpoint, "sentinel-staging", 443, "/admin/users"))
    assert status == 200 and body["rule"] == "10"
    assert body["task_definition"] == deployment.task_definition_arn
