"""A private stack the fault tests may break: their own PostgreSQL cluster and Redis server on free
loopback ports (never the shared ones on :5432/:6379), a sandbox AWS (moto server), and the
console's processes (Celery workers, gunicorn) started against them as subprocesses.

While a fault test runs, this test process's Django connection points at the private cluster too
(`private` fixture), so the test uses the ordinary services (`launch`, `request_deploy`, `reap`)
and models to set up and to check, against the same database the workers use.
"""

from __future__ import annotations

import glob
import http.cookiejar
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from opsconsole.access.models import Role, RoleBinding
from tests.conftest import stop_server
from tests.deployments.conftest import releases, sandbox_endpoint, stack, staging_aws  # noqa: F401 (fixtures)
from tests.integration.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
PASSWORD = "correct horse battery staple"

# Short timings so that lost workers are noticed within seconds.
HEARTBEAT_SECONDS = 1
LOST_AFTER_SECONDS = 4
RESEND_AFTER_SECONDS = 10
# How long the sandbox ECS takes to roll a deployment out. A test that needs a rollout still going
# when something else has happened starts a sandbox of its own with a longer one.
SANDBOX_ROLLOUT_SECONDS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


class PrivatePostgres:
    """A throwaway cluster (initdb in a temp dir), as scripts/with-services.sh starts one.
    initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user."""

    def __init__(self, root: Path):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
        assert bins, "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin): apt-get install postgresql"
        self.bin = Path(bins[-1]).parent
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(
                    [
                        "useradd",
                        "--system",
                        "--user-group",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        "postgres",
                    ],
                    check=True,
                )  # as scripts/with-services.sh does
            shutil.chown(root, "postgres", "postgres")
        self._as_owner(
            [self.bin / "initdb", "-D", self.data, "-U", "root", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]
        )

    def _as_owner(self, argv: list, **kwargs) -> subprocess.CompletedProcess:
        argv = [str(a) for a in argv]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, timeout=60, **kwargs)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout.decode()} {done.stderr.decode()}"
        return done

    def url(self, dbname: str = "opsconsole") -> str:
        return f"postgres://root@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off"
        self._as_owner(
            [self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.root / "log", "-o", options]
        )
        wait_for(lambda: port_open(self.port), 30, "the private PostgreSQL to listen")

    def stop(self, mode: str = "fast") -> None:
        """fast: PostgreSQL terminates every session, as a restart or a failover does."""
        self._as_owner([self.bin / "pg_ctl", "stop", "-w", "-t", "60", "-D", self.data, "-m", mode])

    def createdb(self, name: str) -> None:
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "root", name],
            check=True,
            capture_output=True,
        )


class PrivateRedis:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restart loses every queued message, the worst case for the queue.
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 30, "the private Redis to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_sandbox_aws(rollout_seconds: float = SANDBOX_ROLLOUT_SECONDS) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox.server", "--port", str(port)],
        cwd=ROOT,
        env={
            "SANDBOX_ROLLOUT_SECONDS": str(rollout_seconds),
            "SANDBOX_FAIL_SECONDS": "1",
            "PATH": "/usr/bin:/bin",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def up():
        assert server.poll() is None, "the sandbox AWS server exited at start"
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return True
        except OSError:
            return False

    wait_for(up, 60, "the sandbox AWS server")
    return server, endpoint


@dataclass
class Services:
    postgres: PrivatePostgres
    redis: PrivateRedis
    aws_endpoint: str
    log_dir: Path

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
        }

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis.url,
            "OPSCONSOLE_QUEUE": "celery",
            "RUN_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "RUN_LOST_AFTER_SECONDS": str(LOST_AFTER_SECONDS),
            "RUN_RESEND_AFTER_SECONDS": str(RESEND_AFTER_SECONDS),
            "DEPLOY_POLL_MS": "100",
            **self.aws_env(),
            "PYTHONUNBUFFERED": "1",
        }


@pytest.fixture(scope="session")
def private_services(django_db_blocker):
    """PostgreSQL, Redis and the sandbox AWS of our own, migrated once for the whole session."""
    tmp = Path(tempfile.mkdtemp(prefix="opsconsole-faults-", dir="/tmp"))
    tmp.chmod(0o755)  # the postgres user must reach its data dir inside
    (tmp / "pg").mkdir()
    (tmp / "redis").mkdir()
    (tmp / "logs").mkdir()
    postgres = PrivatePostgres(tmp / "pg")
    redis = PrivateRedis(tmp / "redis")
    aws_server = None
    try:
        postgres.start()
        postgres.createdb("opsconsole")
        redis.start()
        aws_server, endpoint = start_sandbox_aws()
        services = Services(postgres, redis, endpoint, tmp / "logs")
        migrate = subprocess.run(
            MANAGE + ["migrate", "--noinput"], env=services.env(), cwd=ROOT, capture_output=True, timeout=300
        )
        assert migrate.returncode == 0, migrate.stderr.decode()[-3000:]
        yield services
    finally:
        if aws_server is not None:
            stop_server(aws_server)
        redis.stop()
        try:
            postgres.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Private:
    """What a fault test works with: the services, the processes it started, signed-in users."""

    services: Services
    processes: list[subprocess.Popen] = field(default_factory=list)
    console_url: str = ""

    # --- processes -----------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], **extra_env: str) -> subprocess.Popen:
        log = open(self.services.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv,
            env={**self.services.env(), **extra_env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log_path = self.services.log_dir / f"{name}.log"
        self.processes.append(process)
        return process

    def worker(self, name: str = "w1", **extra_env: str) -> subprocess.Popen:
        from opsconsole.celery import app

        process = self.start(name, MANAGE + ["run_worker", "--concurrency", "1", "--name", f"{name}@%h"], **extra_env)

        def answers():
            assert process.poll() is None, process.log_path.read_text()[-3000:]
            return any(f"{name}@" in host for reply in app.control.ping(timeout=0.5) for host in reply)

        wait_for(answers, 60, f"the Celery worker {name}")
        return process

    def console(self) -> str:
        port = free_port()
        process = self.start(
            "console",
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "opsconsole.wsgi"],
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS="1",
        )
        self.console_url = f"http://127.0.0.1:{port}"

        def answers():
            assert process.poll() is None, process.log_path.read_text()[-3000:]
            try:
                return urllib.request.urlopen(f"{self.console_url}/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_for(answers, 60, "gunicorn")
        return self.console_url

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            self.kill(process)

    # --- the database --------------------------------------------------------------------------
    def reconnect(self) -> None:
        """Drop this process's connection (broken by a restart); the next query opens a new one."""
        connection.close()

    @contextmanager
    def postgres_down(self) -> Iterator[None]:
        """PostgreSQL stopped for the body of the `with` (every session terminated, as in a restart
        or a failover), then started again however the body ends: the cluster serves the session."""
        self.services.postgres.stop("fast")
        try:
            yield
        finally:
            self.services.postgres.start()
            self.reconnect()

    # --- the console ---------------------------------------------------------------------------
    def browser(self, user) -> urllib.request.OpenerDirector:
        """An HTTP client signed in as `user` to the gunicorn console (a session in the private database)."""
        client = Client()
        client.force_login(user)
        jar = http.cookiejar.CookieJar()
        jar.set_cookie(
            http.cookiejar.Cookie(
                0,
                "sessionid",
                client.cookies["sessionid"].value,
                None,
                False,
                "127.0.0.1",
                False,
                False,
                "/",
                True,
                False,
                None,
                False,
                None,
                None,
                {},
            )
        )
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(self, opener, path: str) -> tuple[int, str]:
        try:
            with opener.open(f"{self.console_url}{path}", timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def logged_since(process: subprocess.Popen, offset: int) -> str:
    """What `process` logged after the first `offset` bytes of its log: a log file is appended
    to by every process of that name in the session."""
    return process.log_path.read_bytes()[offset:].decode(errors="replace")


def point_django_at(url_settings: dict) -> dict:
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(url_settings)
    return saved


def reset_broker_pools(app) -> None:
    """Forget pooled broker connections: they belong to another broker, or to a Redis that restarted."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private(private_services, django_db_blocker, settings):
    """This process's database connection and Celery broker point at the private services for the
    duration of one test; every process the test started is stopped at its end."""
    import dj_database_url

    from opsconsole.celery import app

    parsed = dj_database_url.parse(private_services.postgres.url())
    saved_db = point_django_at({key: parsed[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})
    saved_broker = app.conf.broker_url
    app.conf.broker_url = private_services.redis.url
    reset_broker_pools(app)  # the pools were made for the shared broker
    settings.OPSCONSOLE_QUEUE = "celery"
    settings.RUN_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS
    settings.RUN_LOST_AFTER_SECONDS = LOST_AFTER_SECONDS
    settings.RUN_RESEND_AFTER_SECONDS = RESEND_AFTER_SECONDS
    private_stack = Private(private_services)
    with django_db_blocker.unblock():
        try:
            app.control.purge()
            yield private_stack
        finally:
            private_stack.stop_all()
            connection.close()
            connection.settings_dict.update(saved_db)
            app.conf.broker_url = saved_broker
            reset_broker_pools(app)


@pytest.fixture
def operator(private):
    """An admin in the private database (created once; the database lives for the session)."""
    user = get_user_model().objects.filter(username="faults-admin").first()
    if user is None:
        user = get_user_model().objects.create_user("faults-admin", "faults@example.com", PASSWORD)
        RoleBinding.objects.create(user=user, role=Role.ADMIN)
    return user
