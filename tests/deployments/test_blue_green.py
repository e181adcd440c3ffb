"""Blue/green deploys against the sandbox AWS: deploy to the idle colour, shift weights, keep the
old colour for an instant shift back."""

import http.server
import threading

import pytest

from deployments.models import Deployment
from deployments.services import request_deploy
from opsconsole.environments.models import Color, Strategy
from opsconsole.runs.models import EnvironmentLock, Status
from sandbox.bootstrap import clients
from tests.deployments.conftest import wire

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def listener_weights(stack, environment) -> dict[str, int]:
    elbv2 = clients(stack.endpoint)("elbv2")
    listener = elbv2.describe_listeners(ListenerArns=[environment.listener_arn])["Listeners"][0]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    names = {environment.blue_target_group_arn: "blue", environment.green_target_group_arn: "green"}
    return {names[g["TargetGroupArn"]]: g["Weight"] for g in groups}


@pytest.fixture
def health_server():
    """The idle colour's test listener, answering 200 (or 503 when told to)."""
    state = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(state["status"])
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()


@pytest.fixture
def bluegreen(staging, stack, health_server):
    return wire(
        staging, stack, "staging", strategy=Strategy.BLUE_GREEN, test_url=health_server["url"], migration_command=[]
    )


def test_a_blue_green_deploy_shifts_all_traffic_to_the_idle_colour(users, bluegreen, releases, stack):
    assert listener_weights(stack, bluegreen) == {"blue": 100, "green": 0}
    run = request_deploy(bluegreen, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    bluegreen.refresh_from_db()
    assert bluegreen.live_color == Color.GREEN
    assert bluegreen.live_release == releases["v1.1.0"]
    assert listener_weights(stack, bluegreen) == {"blue": 0, "green": 100}
    assert Deployment.objects.get(run=run).color == Color.GREEN
    messages = list(run.events.values_list("message", flat=True))
    assert "10% of traffic to green." in messages and "100% of traffic to green." in messages
    # Green got blue's size with the new revision; after the bake blue, still on the old
    # release, is scaled down (BLUE_GREEN_SCALE_DOWN, on by default).
    ecs = clients(stack.endpoint)("ecs")
    found = ecs.describe_services(
        cluster=bluegreen.ecs_cluster, services=[bluegreen.ecs_service, bluegreen.green_service]
    )
    blue, green = found["services"]
    assert blue["taskDefinition"].endswith(":1") and blue["desiredCount"] == 0
    assert green["taskDefinition"].endswith(":2") and green["desiredCount"] == 2


def test_a_failing_idle_colour_never_gets_traffic(users, bluegreen, releases, stack, health_server):
    health_server["status"] = 503
    run = request_deploy(bluegreen, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "Smoke test of the idle colour failed" in run.error and "nothing was shifted" in run.error
    assert listener_weights(stack, bluegreen) == {"blue": 100, "green": 0}
    bluegreen.refresh_from_db()
    assert bluegreen.live_color == Color.BLUE


def test_an_alarm_during_the_shift_sends_all_traffic_back(users, bluegreen, releases, stack):
    cloudwatch = clients(stack.endpoint)("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=bluegreen.alarm_names[0], StateValue="ALARM", StateReason="5xx spike")
    run = request_deploy(bluegreen, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert "Alarm in ALARM during bake" in run.error and "5xx spike" in run.error
    assert listener_weights(stack, bluegreen) == {"blue": 100, "green": 0}
    bluegreen.refresh_from_db()
    assert bluegreen.live_color == Color.BLUE
    assert EnvironmentLock.objects.filter(environment=bluegreen, run=None).exists()
