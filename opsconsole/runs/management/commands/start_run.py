"""Start a run from the command line; it creates the same Run the UI would, under the kind's launch
contract (deploys, applies, restores and DR runs start only through their own pages and APIs).

python manage.py start_run maintenance.selftest --param lines=5 --wait
python manage.py start_run terraform.plan --environment staging --as alice --wait
"""

from __future__ import annotations

import getpass
import json
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.environments.models import Environment
from opsconsole.runs.models import Run
from opsconsole.runs.registry import REGISTRY
from opsconsole.runs.services import NotPermitted, Refused, launch


class CliPrincipal:
    """The operator at the shell: trusted like the admin, named in the audit log."""

    is_authenticated = False

    def __init__(self):
        self.name = f"cli:{getpass.getuser()}"

    def get_username(self) -> str:
        return self.name


def parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CommandError(f"--param expects key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


class Command(BaseCommand):
    help = "Start a run of any kind, as the UI would. Kinds: " + ", ".join(sorted(REGISTRY))

    def add_arguments(self, parser):
        parser.add_argument("kind")
        parser.add_argument("--environment")
        parser.add_argument(
            "--param", action="append", default=[], help="key=value (value parsed as JSON if it can be)"
        )
        parser.add_argument("--as", dest="as_user", help="start it as this user, with their permissions")
        parser.add_argument("--wait", action="store_true", help="follow the log and exit non-zero unless it succeeds")

    def handle(self, *args, **options):
        environment = None
        if options["environment"]:
            environment = Environment.objects.filter(name=options["environment"]).first()
            if environment is None:
                raise CommandError(f"There is no environment called {options['environment']!r}.")
        params = dict(parse_param(item) for item in options["param"])
        if options["as_user"]:
            principal = get_user_model().objects.filter(username=options["as_user"], is_active=True).first()
            if principal is None:
                raise CommandError(f"There is no active user called {options['as_user']!r}.")
        else:
            principal = CliPrincipal()
        try:
            run = launch(
                options["kind"],
                principal=principal,
                environment=environment,
                params=params,
                check_permission=bool(options["as_user"]),
            )
        except (Refused, NotPermitted) as exc:
            record(
                "runs.start_run.refused",
                actor=principal if getattr(principal, "pk", None) else None,
                actor_name=principal.get_username(),
                target=f"kind:{options['kind']}"[:200],
                environment=environment.name if environment else "",
                details={"code": getattr(exc, "code", "forbidden"), "error": str(exc), "params": params},
                outcome=Outcome.DENIED,
            )
            raise CommandError(str(exc)) from None
        self.stdout.write(f"run #{run.pk} {run.kind} {run.status}")
        if options["wait"]:
            self._follow(run)

    def _follow(self, run: Run) -> None:
        after = 0
        while True:
            run.refresh_from_db()
            events = list(run.events_after(after, 1000))
            for event in events:
                self.stdout.write(f"{event.at:%H:%M:%S} {event.level:7} {event.message}")
                after = event.seq
            if run.is_terminal and not events:
                break
            if not events:
                time.sleep(0.5)
        self.stdout.write(f"run #{run.pk} ended {run.status}")
        if run.status != "succeeded":
            raise CommandError(f"run #{run.pk} {run.status}: {run.error}")
