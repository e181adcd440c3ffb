"""python manage.py verify_audit: exits 0 on an intact chain, 1 naming the first bad event."""

from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit.log import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit log's hash chain and report the first event that does not hold."

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.ok:
            raise CommandError(f"audit chain broken at event #{report.first_bad_seq}: {report.problem}")
        self.stdout.write(f"audit chain intact: {report.checked} events verified")
