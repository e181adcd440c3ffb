"""Orchestration overhead (item 4): a rolling deploy through the console against the sandbox AWS
(moto server, sandbox/server.py, over HTTP) versus a bare boto3 script making the same calls to
the same service, alternating, in the same run.

The console's deploy is `deployments.services.request_deploy` executed in this process (queue
`inline`: the whole runner — claim, steps, live-log events, deployment record, audit — without a
worker's queue latency, which click_to_running measures). The script: describe the service and
its task definition, register a revision with the new image, run the migration task and poll it
until it stops, update the service, poll until the rollout completes, read the alarms once; the
same poll interval as the console's DEPLOY_POLL_MS. Both create their AWS clients inside the
timed section, as a script would. AWS calls are counted for both by wrapping botocore's
BaseClient._make_api_call. Best of `rounds` for each (the machine is shared).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter

from bench.common import Row
from bench.data import log

POLL_MS = 100
ROLLOUT_SECONDS = "1.0"
ROUNDS = 3
CLUSTER_REGION = "us-east-1"


@contextlib.contextmanager
def counting_aws_calls():
    """Count every AWS API call made in this process, by operation name."""
    from botocore.client import BaseClient

    calls: Counter = Counter()
    original = BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        calls[operation_name] += 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original


@contextlib.contextmanager
def sandbox():
    from sandbox.process import free_port, start_aws

    env = {"SANDBOX_ROLLOUT_SECONDS": ROLLOUT_SECONDS, "SANDBOX_FAIL_SECONDS": "0.4", "PATH": "/usr/bin:/bin"}
    process, endpoint = start_aws(free_port(), env=env, quiet=True)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def script_deploy(cluster: str, service: str, container: str, image: str, command: list[str], alarms: list[str]):
    """The bare boto3 deploy: the calls the console makes, no database, no log, no checks."""
    import boto3

    session = boto3.Session(region_name=CLUSTER_REGION)
    ecs, cloudwatch = session.client("ecs"), session.client("cloudwatch")
    interval = POLL_MS / 1000
    current = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    found = ecs.describe_task_definition(taskDefinition=current["taskDefinition"], include=["TAGS"])
    accepted = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members
    definition = {k: v for k, v in found["taskDefinition"].items() if k in accepted}
    definition["containerDefinitions"] = [
        {**c, "image": image} if c["name"] == container else c for c in definition["containerDefinitions"]
    ]
    if found.get("tags"):
        definition["tags"] = found["tags"]
    new = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    launch = {
        "cluster": cluster,
        "taskDefinition": new,
        "count": 1,
        "startedBy": "script-migrate",
        "overrides": {"containerOverrides": [{"name": container, "command": command}]},
    }
    if current.get("networkConfiguration"):
        launch["networkConfiguration"] = current["networkConfiguration"]
    if current.get("launchType"):
        launch["launchType"] = current["launchType"]
    task_arn = ecs.run_task(**launch)["tasks"][0]["taskArn"]
    while ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]["lastStatus"] != "STOPPED":
        time.sleep(interval)
    updated = ecs.update_service(
        cluster=cluster,
        service=service,
        taskDefinition=new,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )["service"]
    deployment_id = next(d["id"] for d in updated["deployments"] if d["status"] == "PRIMARY")
    while True:
        desc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        ours = next(d for d in desc["deployments"] if d["id"] == deployment_id)
        if ours.get("rolloutState") == "COMPLETED":
            break
        if ours.get("rolloutState") == "FAILED":
            raise RuntimeError("the script's rollout failed")
        time.sleep(interval)
    cloudwatch.describe_alarms(AlarmNames=alarms)


def run(args) -> list[Row]:
    from django.test import override_settings

    from bench.data import admin_user, ensure_history
    from deployments.models import Release
    from deployments.services import request_deploy
    from opsconsole.environments.models import Environment, Tier
    from opsconsole.runs.models import Status
    from sandbox.bootstrap import create_stack

    ensure_history(0, 0)
    rounds = 1 if args.quick else ROUNDS
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    with sandbox() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox")
        try:
            stack = create_stack(endpoint)
            s = stack.environments["staging"]
            environment, _ = Environment.objects.update_or_create(
                name="bench-rolling",
                defaults=dict(
                    tier=Tier.STAGING,
                    ecs_cluster=s.cluster,
                    ecs_service=s.service,
                    task_family=s.family,
                    container_name=s.container,
                    alarm_names=s.alarm_names,
                    bake_seconds=0,
                    rollout_timeout_seconds=60,
                    migration_timeout_seconds=60,
                    migration_command=["python", "manage.py", "migrate"],
                ),
            )
            releases = [
                Release.objects.get_or_create(
                    digest=stack.images[tag],
                    defaults=dict(repository=stack.repository_uri, tag=tag, registered_by_name="ci"),
                )[0]
                for tag in ("v1.1.0", "v1.2.0")
            ]
            console_times, script_times, console_calls, script_calls = [], [], Counter(), Counter()
            with override_settings(OPSCONSOLE_QUEUE="inline", DEPLOY_POLL_MS=POLL_MS):
                for n in range(rounds):
                    release = releases[n % 2]
                    with counting_aws_calls() as calls:
                        started = time.perf_counter()
                        deploy = request_deploy(environment, release, admin_user())
                        console_times.append(time.perf_counter() - started)
                    deploy.refresh_from_db()
                    if deploy.status != Status.SUCCEEDED:
                        raise RuntimeError(f"the console's deploy ended {deploy.status}: {deploy.error}")
                    console_calls = calls if not console_calls else console_calls
                    other = releases[(n + 1) % 2]
                    with counting_aws_calls() as calls:
                        started = time.perf_counter()
                        script_deploy(s.cluster, s.service, s.container, other.image, ["python", "manage.py",
                                      "migrate"], s.alarm_names)  # fmt: skip
                        script_times.append(time.perf_counter() - started)
                    script_calls = calls if not script_calls else script_calls
                    # Put the console's idea of what is live back in step with the service.
                    Environment.objects.filter(pk=environment.pk).update(live_release=other)
                    environment.refresh_from_db()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    console, script = min(console_times), min(script_times)
    ratio = console / script
    n_console, n_script = sum(console_calls.values()), sum(script_calls.values())
    log(f"orchestration: console {console:.2f} s {dict(console_calls)}; script {script:.2f} s {dict(script_calls)}")
    return [
        Row(
            "orchestration: rolling deploy, console vs bare boto3 (moto server)",
            f"{ratio:.2f}x ({console:.2f} s vs {script:.2f} s)",
            "<= 1.3x",
            ratio <= 1.3,
            f"best of {rounds}; poll every {POLL_MS} ms; sandbox rollout {ROLLOUT_SECONDS} s",
        ),
        Row(
            "orchestration: AWS calls per deploy, console vs script",
            f"{n_console} vs {n_script}",
            "no more than the script",
            n_console <= n_script,
            ", ".join(f"{op} {console_calls[op]}/{script_calls[op]}" for op in sorted(console_calls | script_calls)),
        ),
    ]
