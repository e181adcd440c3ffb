"""Start a worker for the configured queue (Celery or RQ)."""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run a worker that executes runs from the configured queue."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--name", default="", help="worker name (default: worker@hostname)")

    def handle(self, *args, **options):
        backend = settings.OPSCONSOLE_QUEUE
        if backend == "celery":
            argv = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "opsconsole",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                str(options["concurrency"]),
                "-n",
                options["name"] or "worker@%h",
                "--without-mingle",
                "--without-gossip",
            ]
            os.execv(sys.executable, argv)
        if backend == "rq":
            call_command("rqworker", "default", with_scheduler=True)
            return
        raise CommandError("OPSCONSOLE_QUEUE=inline runs jobs in the requesting process; there is no worker.")
