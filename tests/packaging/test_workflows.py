"""The GitHub Actions workflows users adopt parse, and have the jobs and steps the docs describe."""

import re
from pathlib import Path

import yaml

from opsconsole.ci import parser

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return workflow


def runs(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_the_console_workflow_lints_and_tests_against_postgres_and_redis():
    workflow = load("console.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    lint, test = workflow["jobs"]["lint"], workflow["jobs"]["test"]
    assert "ruff check ." in runs(lint) and "ruff format --check ." in runs(lint)
    assert set(test["services"]) == {"postgres", "redis"}
    assert test["env"]["DATABASE_URL"].startswith("postgres://") and test["env"]["REDIS_URL"].startswith("redis://")
    assert "make test" in runs(test)


def test_the_example_pipeline_builds_pushes_registers_and_deploys_with_the_cli():
    workflow = load("example-app-deploy.yml")
    assert workflow["permissions"]["id-token"] == "write"
    (job,) = workflow["jobs"].values()
    assert uses(job)[:3] == [
        "actions/checkout",
        "aws-actions/configure-aws-credentials",
        "aws-actions/amazon-ecr-login",
    ]
    assert "docker/build-push-action" in uses(job)
    assert job["env"] == {
        "OPSCONSOLE_URL": "${{ vars.OPSCONSOLE_URL }}",
        "OPSCONSOLE_TOKEN": "${{ secrets.OPSCONSOLE_TOKEN }}",
    }
    commands = [run for run in runs(job) if "opsconsole-ci.py" in run and run.startswith("python")]
    assert [command.split()[2] for command in commands] == ["register-release", "deploy"]
    assert "--wait" in commands[1] and "staging" in commands[1]
    assert not any("--token" in run for run in runs(job))
    # The commands in the workflow are ones the CLI accepts, once GitHub fills in the expressions.
    for command in commands:
        argv = [part.strip('"') for part in re.sub(r"\$\{\{[^}]*\}\}", example_value, command).split()[2:]]
        parser().parse_args(argv)


def example_value(match: re.Match) -> str:
    expression = match.group(0)
    if "digest" in expression:
        return "sha256:" + "0" * 64
    if "release_id" in expression:
        return "1"
    return "x"
