"""`opsconsole-ci` against a live console: register a release, deploy it and wait, and every
refusal answered with one clear line and a non-zero exit code."""

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from deployments.models import Release
from opsconsole.access.models import ApiToken
from opsconsole.runs.models import Run, Status

pytestmark = pytest.mark.django_db(transaction=True)

CLI = str(Path(sys.executable).parent / "opsconsole-ci")
DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def ci_token(users, staging):
    _, raw = ApiToken.issue("ci", ["view", "deploy"], [staging], created_by=users["admin"])
    return raw


def ci(live_server, token: str | None, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCONSOLE_")}
    env["OPSCONSOLE_URL"] = live_server.url
    if token is not None:
        env["OPSCONSOLE_TOKEN"] = token
    return subprocess.run([CLI, *argv], env=env, capture_output=True, text=True, timeout=timeout)


def test_register_release_creates_the_release_and_writes_its_id_for_later_steps(live_server, ci_token, tmp_path):
    outputs = tmp_path / "github_output"
    argv = ["register-release", "--repository", "123.dkr.ecr.us-east-1.amazonaws.com/api", "--tag", "v2.0.0"]
    result = ci(live_server, ci_token, *argv, "--digest", DIGEST, "--git-sha", "abc123", "--output-id", str(outputs))
    assert result.returncode == 0, result.stderr
    release = Release.objects.get(digest=DIGEST)
    assert (release.tag, release.git_sha, release.registered_by_name) == ("v2.0.0", "abc123", "token:ci")
    assert result.stdout.startswith(f"release {release.pk}: ")
    assert outputs.read_text() == f"release_id={release.pk}\n"

    again = ci(live_server, ci_token, *argv, "--digest", DIGEST)
    assert again.returncode == 0, again.stderr
    assert Release.objects.count() == 1


def test_deploy_wait_prints_the_events_and_exits_zero_when_the_deploy_succeeds(
    live_server, ci_token, staging_aws, releases
):
    release = releases["v1.1.0"]
    result = ci(live_server, ci_token, "deploy", "--environment", "staging", "--release-id", str(release.pk), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    run = Run.objects.get(kind="deployments.deploy")
    assert run.status == Status.SUCCEEDED
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {run.pk}: deployments.deploy on staging is ")
    assert lines[-1] == f"run {run.pk}: succeeded"
    # Every event of the run was printed, in order.
    printed, position = "\n".join(lines[1:-1]), 0
    for message in run.events.order_by("seq").values_list("message", flat=True):
        position = printed.index(message, position) + len(message)
    assert position > 0
    staging_aws.refresh_from_db()
    assert staging_aws.live_release_id == release.pk


def test_deploy_wait_exits_non_zero_when_the_deploy_is_rolled_back(live_server, ci_token, staging_aws, releases):
    digest = releases["v1.3.0-broken"].digest
    result = ci(live_server, ci_token, "deploy", "--environment", "staging", "--digest", digest, "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    run = Run.objects.get(kind="deployments.deploy")
    assert run.status == Status.ROLLED_BACK
    assert result.stdout.splitlines()[-1].startswith(f"run {run.pk}: rolled_back")


@pytest.fixture
def queued_only(staging, settings):
    """Deploys are queued but no worker ever picks them up."""
    settings.OPSCONSOLE_QUEUE = "celery"
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield Release.objects.create(repository="r", tag="v9", digest=DIGEST, registered_by_name="ci")


def test_deploy_without_wait_returns_as_soon_as_the_run_is_requested(live_server, ci_token, queued_only):
    result = ci(live_server, ci_token, "deploy", "--environment", "staging", "--release-id", str(queued_only.pk))
    assert result.returncode == 0, result.stderr
    run = Run.objects.get()
    assert result.stdout.strip() == f"run {run.pk}: deployments.deploy on staging is queued"


def test_deploy_wait_gives_up_at_the_timeout_with_its_own_exit_code(live_server, ci_token, queued_only):
    argv = ["deploy", "--environment", "staging", "--digest", DIGEST, "--wait", "--timeout", "0.5"]
    result = ci(live_server, ci_token, *argv)
    assert result.returncode == 4, result.stdout + result.stderr
    run = Run.objects.get()
    assert result.stdout.splitlines()[-1] == f"run {run.pk}: still queued after 0.5s; giving up (the run goes on)"
    assert run.status == Status.QUEUED


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        # The token reaches staging only: a name it cannot see answers as if no environment had it.
        (["deploy", "--environment", "nowhere", "--release-id", "1"], 403, "or there is none. (forbidden)"),
        (["deploy", "--environment", "staging", "--release-id", "999999"], 400, "There is no such release"),
        (
            ["register-release", "--repository", "r", "--tag", "bad tag!", "--digest", DIGEST],
            400,
            "'bad tag!' is not a valid image tag. (invalid_tag)",
        ),
    ],
)
def test_a_refused_request_is_one_line_on_stderr_and_exit_code_3(live_server, ci_token, staging, argv, status, message):
    result = ci(live_server, ci_token, *argv)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsconsole-ci: ") and message in lines[0], result.stderr
    assert f" {status} " in lines[0]
    assert Release.objects.count() == 0 and Run.objects.count() == 0


def test_a_bad_token_is_refused_with_one_line(live_server, staging):
    result = ci(live_server, "oc_not-a-real-token", "deploy", "--environment", "staging", "--release-id", "1")
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert " 401 " in result.stderr


def test_the_token_comes_from_the_environment_never_from_argv(live_server):
    missing = ci(live_server, None, "deploy", "--environment", "staging", "--release-id", "1")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("opsconsole-ci: OPSCONSOLE_TOKEN is not set (an API token with the deploy scope)")
    flag = ci(live_server, "x", "deploy", "--token", "secret", "--environment", "staging", "--release-id", "1")
    assert flag.returncode == 2 and "unrecognized arguments: --token" in flag.stderr


def test_an_unreachable_console_is_one_line():
    env = {**os.environ, "OPSCONSOLE_URL": "http://127.0.0.1:9", "OPSCONSOLE_TOKEN": "t"}
    result = subprocess.run(
        [CLI, "deploy", "--environment", "staging", "--release-id", "1"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 3
    assert result.stderr.startswith("opsconsole-ci: POST environments/staging/deploy: cannot reach http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_cli_is_one_file_that_needs_only_the_standard_library(tmp_path):
    # Pipelines may fetch opsconsole/ci.py alone and run it with any Python 3.11.
    copy = tmp_path / "opsconsole-ci.py"
    copy.write_text((Path(__file__).resolve().parents[2] / "opsconsole" / "ci.py").read_text())
    result = subprocess.run([sys.executable, "-I", "-S", str(copy), "deploy", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--release-id" in result.stdout and "--token" not in result.stdout


def test_deploy_follows_the_identical_deploy_already_active(live_server, ci_token, queued_only):
    argv = ["deploy", "--environment", "staging", "--release-id", str(queued_only.pk)]
    assert ci(live_server, ci_token, *argv).returncode == 0
    first = Run.objects.get()

    again = ci(live_server, ci_token, *argv, "--wait", "--timeout", "0.5")

    assert Run.objects.count() == 1
    lines = again.stdout.splitlines()
    assert lines[0] == f"run {first.pk}: the same deploy is already active on staging; following it"
    assert again.returncode == 4 and lines[-1].startswith(f"run {first.pk}: still queued")


def test_a_deploy_that_may_not_have_arrived_is_sent_again_with_the_same_key():
    import argparse

    from opsconsole import ci as cli

    class FlakyConsole:
        def __init__(self):
            self.keys = []

        def request(self, method, path, body=None, headers=None):
            self.keys.append(headers["Idempotency-Key"])
            if len(self.keys) < 3:
                raise cli.CliError("POST deploy: cannot reach the console: timed out", reached=False)
            return {"id": 7, "kind": "deployments.deploy", "status": "queued"}

    console, printed = FlakyConsole(), []
    args = argparse.Namespace(release_id=1, digest=None, override_reason="", environment="staging", wait=False)

    assert cli.deploy(console, args, printed.append, sleep=lambda seconds: None) == 0

    assert len(console.keys) == 3 and len(set(console.keys)) == 1
    assert printed[-1] == "run 7: deployments.deploy on staging is queued"


def test_a_refused_deploy_is_not_sent_again():
    import argparse

    from opsconsole import ci as cli

    sent = []

    class RefusingConsole:
        def request(self, method, path, body=None, headers=None):
            sent.append(path)
            raise cli.CliError("POST deploy: 409 staging is locked (locked)", answer={"code": "locked"})

    args = argparse.Namespace(release_id=1, digest=None, override_reason="", environment="staging", wait=False)
    with pytest.raises(cli.CliError, match="locked"):
        cli.deploy(RefusingConsole(), args, [].append, sleep=lambda seconds: None)
    assert len(sent) == 1


def test_the_key_is_the_jobs_and_the_requests(monkeypatch):
    from opsconsole import ci as cli

    monkeypatch.setenv("OPSCONSOLE_IDEMPOTENCY_KEY", "1234-1")
    staging = cli.idempotency_key("environments/staging/deploy", {"release_id": 1})
    assert staging == cli.idempotency_key("environments/staging/deploy", {"release_id": 1})
    assert staging != cli.idempotency_key("environments/production/deploy", {"release_id": 1})
    monkeypatch.setenv("OPSCONSOLE_IDEMPOTENCY_KEY", "1234-2")  # the job run again
    assert staging != cli.idempotency_key("environments/staging/deploy", {"release_id": 1})


def test_a_retry_that_finds_the_first_try_still_running_tries_again():
    import argparse

    from opsconsole import ci as cli

    answers = [
        cli.CliError("timed out", reached=False),
        cli.CliError("409 in progress", answer={"code": "idempotency_in_progress"}),
        {"id": 9, "kind": "deployments.deploy", "status": "queued"},
    ]

    class SlowConsole:
        def request(self, method, path, body=None, headers=None):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    args = argparse.Namespace(release_id=1, digest=None, override_reason="", environment="staging", wait=False)
    printed = []
    assert cli.deploy(SlowConsole(), args, printed.append, sleep=lambda seconds: None) == 0
    assert printed[-1] == "run 9: deployments.deploy on staging is queued"
