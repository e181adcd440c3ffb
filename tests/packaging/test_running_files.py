"""The files that run the console in production: gunicorn serves it with JSON logs carrying the
request id; the Procfile, Dockerfile and docker-compose.yml start the processes the docs name."""

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.packaging.test_check_deploy import production_env

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, **headers: str):
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https", **headers})
    try:
        return urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        return exc


def test_gunicorn_serves_the_console_with_json_logs_carrying_the_request_id(tmp_path):
    port = free_port()
    env = production_env(tmp_path, ALLOWED_HOSTS="127.0.0.1", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2")
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [GUNICORN, "-c", "gunicorn.conf.py", "opsconsole.wsgi"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer within 60s"
                time.sleep(0.3)
        assert response.status == 200 and response.read() == b"ok\n"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")

        missing = get(f"http://127.0.0.1:{port}/no-such-page", **{"X-Request-ID": "ci-probe-1"})
        assert missing.status == 404 and missing.headers["X-Request-ID"] == "ci-probe-1"
        static = get(f"http://127.0.0.1:{port}/static/no-such-file.js")
        assert static.status == 404
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    not_found = [r for r in records if r["logger"] == "django.request" and "/no-such-page" in r["message"]]
    assert not_found and not_found[0]["request_id"] == "ci-probe-1" and not_found[0]["status_code"] == 404
    assert not [line for line in lines if "Traceback" in line]


def test_the_procfile_starts_web_worker_and_beat_with_the_console_commands():
    entries = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert entries["web"] == "gunicorn -c gunicorn.conf.py opsconsole.wsgi"
    assert entries["worker"].startswith("python manage.py run_worker")
    assert entries["beat"] == "python manage.py run_scheduler"
    assert entries["release"] == "python manage.py migrate --noinput"


def test_the_dockerfile_is_multi_stage_runs_as_a_user_and_bakes_in_no_secret():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER opsconsole:opsconsole$", runtime, re.M)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    env_block = re.findall(r"^(?:ENV|ARG)\b.*?(?<!\\)$", text, re.M | re.S)
    assert not any(name in block for block in env_block for name in ("SECRET_KEY", "PASSWORD", "TOKEN"))
    assert runtime.rstrip().endswith('CMD ["gunicorn", "-c", "gunicorn.conf.py", "opsconsole.wsgi"]')
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", "var", ".env"} <= set(ignored)


def test_docker_compose_runs_the_five_services_from_environment_secrets():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "opsconsole.wsgi"]
    assert services["worker"]["command"][:3] == ["python", "manage.py", "run_worker"]
    assert services["beat"]["command"] == ["python", "manage.py", "run_scheduler"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert services["web"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
