"""A bad or missing setting fails at start with one clear line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "SECRET_KEY": "k" * 40,
    "ALLOWED_HOSTS": "console.example.com",
    "DATABASE_URL": "sqlite:////tmp/opsconsole-config-test.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "OPSCONSOLE_QUEUE": "celery",
}


def start(**overrides: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith(("OPSCONSOLE_", "DEBUG"))}
    env.update(GOOD)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_good_settings_start():
    result = start()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is required but not set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY: must be at least 32 characters long"),
        ({"DATABASE_URL": "mysql://db/ops"}, "DATABASE_URL: expected a URL starting with postgres://"),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL: expected a URL starting with redis://"),
        ({"REDIS_URL": None}, "REDIS_URL is required when OPSCONSOLE_QUEUE=celery"),
        ({"OPSCONSOLE_QUEUE": "kafka"}, "OPSCONSOLE_QUEUE: expected one of celery, rq, inline, got 'kafka'"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is required but not set"),
        ({"DEBUG": "maybe"}, "DEBUG: expected true or false, got 'maybe'"),
        ({"RUN_HEARTBEAT_SECONDS": "soon"}, "RUN_HEARTBEAT_SECONDS: expected a whole number, got 'soon'"),
        ({"AWS_ROLE_EXTERNAL_ID": "has space"}, "AWS_ROLE_EXTERNAL_ID: expected 2 to 1224 letters"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_variable(overrides, message):
    result = start(**overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"configuration error: {lines[0].removeprefix('configuration error: ')}"]
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_the_sandbox_needs_no_secret_key_and_no_redis(tmp_path):
    result = start(
        SECRET_KEY=None, REDIS_URL=None, ALLOWED_HOSTS=None, OPSCONSOLE_SANDBOX="1", OPSCONSOLE_VAR_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
