"""Run the reaper once (it normally runs on the schedule)."""

from django.core.management.base import BaseCommand

from opsconsole.runs.reaper import reap


class Command(BaseCommand):
    help = "End runs whose worker was lost, free their locks and re-send lost queued runs."

    def handle(self, *args, **options):
        self.stdout.write(str(reap()))
