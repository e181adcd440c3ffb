"""python manage.py verify_audit: exits 0 on an intact chain, 1 naming the first bad event."""

import os

from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit.log import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit log's hash chain and report the first event that does not hold."

    def add_arguments(self, parser):
        parser.add_argument(
            "--processes",
            type=int,
            default=os.cpu_count() or 1,
            help="worker processes for a long chain on PostgreSQL (default: one per core; 1 verifies in-process)",
        )

    def handle(self, *args, **options):
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        report = verify_chain(processes=options["processes"])
        if not report.ok:
            raise CommandError(f"audit chain broken at event #{report.first_bad_seq}: {report.problem}")
        self.stdout.write(f"audit chain intact: {report.checked} events verified")
