"""`manage.py check --deploy` is clean under production settings, and LOG_FORMAT defaults to json
there and to plain in the sandbox."""

import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict:
    """Only what a production deployment sets: nothing inherited from the test run."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "console.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://console.example.com",
        "DATABASE_URL": "postgres://opsconsole@db.internal:5432/opsconsole",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "BEHIND_TLS_PROXY": "true",
        "SECURE_SSL_REDIRECT": "true",
        "OPSCONSOLE_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def manage(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_no_issue_under_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_a_production_safeguard_is_off(tmp_path):
    # The test above is not vacuous: turning HTTPS redirects off is reported.
    result = manage(
        production_env(tmp_path, SECURE_SSL_REDIRECT="false"), "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr


def log_format(env: dict) -> str:
    result = manage(env, "shell", "--no-imports", "-c", "from django.conf import settings; print(settings.LOG_FORMAT)")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_logs_are_json_in_production_and_plain_in_the_sandbox(tmp_path):
    assert log_format(production_env(tmp_path)) == "json"
    assert log_format(production_env(tmp_path, LOG_FORMAT="plain")) == "plain"
    sandbox = production_env(tmp_path, OPSCONSOLE_SANDBOX="1")
    del sandbox["SECRET_KEY"]
    assert log_format(sandbox) == "plain"
    bad = manage(production_env(tmp_path, LOG_FORMAT="xml"), "check")
    assert bad.returncode == 2
    assert "LOG_FORMAT: expected one of json, plain, got 'xml'" in bad.stderr
