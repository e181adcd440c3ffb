"""`make run`: migrate, make sure someone can sign in, then run web, worker and scheduler together.

Ctrl-C (or SIGTERM) stops all three and waits for them; if one dies, the others are stopped too,
so no orphan process is left behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Run the console with its worker and scheduler (the embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        login = self._ensure_admin()
        url = f"http://127.0.0.1:{options['port']}/"
        children: dict[str, subprocess.Popen] = {}
        if settings.SANDBOX:
            from sandbox import demo
            from sandbox.process import free_port, start_aws

            self.stdout.write("Starting the sandbox AWS (moto server on loopback) and its demo stack...")
            children["aws"], endpoint = start_aws(free_port())
            os.environ.update(demo.aws_environment(endpoint))  # the children inherit it
            os.environ["TERRAFORM_ROOT"] = str(demo.terraform_root(settings.VAR_DIR))
            try:
                from sandbox.bootstrap import create_stack

                seeded = demo.seed(create_stack(endpoint), settings.VAR_DIR, url)
            except Exception:
                self._stop(children)
                raise
            login += (
                f"\nDemo users (one per role): {', '.join(f'{u} ({r.label})' for u, r in demo.DEMO_USERS.items())}"
                f"; password {seeded.password}\nDemo CI token: {seeded.token}"
            )
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = {
            "web": manage + ["runserver", f"127.0.0.1:{options['port']}", "--noreload"],
            "worker": manage + ["run_worker", "--concurrency", "2"],
            "scheduler": manage + ["run_scheduler"],
        }
        children.update({name: subprocess.Popen(argv, start_new_session=True) for name, argv in commands.items()})
        self.stdout.write(self.style.SUCCESS(f"\nOps Console running at {url}"))
        self.stdout.write(login)
        self.stdout.write("Press Ctrl-C to stop the console, its worker, its scheduler and the sandbox AWS.\n")

        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping the console.")
                    exit_code, stopping = 1, True
                    break
            time.sleep(0.3)
        self._stop(children)
        if exit_code:
            sys.exit(exit_code)

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        # SIGTERM to each leader only (Celery's pool children must not get it directly, or the
        # worker's warm shutdown waits for them forever); then the whole group is killed.
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            try:
                os.killpg(child.pid, signal.SIGKILL)  # anything the leader left behind
            except ProcessLookupError:
                pass
        self.stdout.write("Stopped.")

    def _ensure_admin(self) -> str:
        """Create the first admin on an empty database; its password is written to var/ once."""
        users = get_user_model().objects
        password_file = settings.VAR_DIR / "admin-password.txt"
        if not users.exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            return f"Sign in as admin with the password in {password_file} ({password_file.read_text().strip()})."
        return "Sign in with your account (create one with `.venv/bin/python manage.py createsuperuser`)."
