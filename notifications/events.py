"""The events the console notifies about: what each is called, how severe it is, how it reads,
and how PagerDuty groups it (one dedup key per environment and subject, so a later success
resolves the incident an earlier failure opened). Pure: no Django imports."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class Event:
    code: str
    label: str
    severity: str
    template: str
    subject: str  # the PagerDuty dedup key's last part, formatted with the facts
    resolves: bool = False

    def summary(self, environment: str, facts: dict) -> str:
        return self.template.format_map(_Facts(facts, environment=environment))

    def dedup_key(self, environment: str, facts: dict) -> str:
        return f"opsconsole/{environment}/{self.subject.format_map(_Facts(facts))}"

    def action(self, facts: dict) -> str:
        """PagerDuty's event_action: success events resolve, everything else triggers."""
        if self.code == "dr.completed":
            return "resolve" if facts.get("outcome") == "succeeded" else "trigger"
        return "resolve" if self.resolves else "trigger"

    def severity_for(self, facts: dict) -> str:
        if self.code == "dr.completed" and facts.get("outcome") != "succeeded":
            return "critical"
        return self.severity


class _Facts(dict):
    """format_map() that prints a missing fact as "?" instead of raising."""

    def __init__(self, facts: dict, **extra):
        super().__init__({**facts, **extra})

    def __missing__(self, key: str) -> str:
        return "?"


EVENTS: dict[str, Event] = {
    e.code: e
    for e in (
        Event(
            "approval.requested",
            "Approval requested",
            "info",
            "{environment}: {kind_label} run #{run} ({release}) requested by {requested_by} needs approval",
            "approval/{run}",
        ),
        Event(
            "deploy.started",
            "Deploy started",
            "info",
            "{environment}: {kind_label} of {release} started (run #{run})",
            "deploy",
        ),
        Event(
            "deploy.succeeded",
            "Deploy succeeded",
            "info",
            "{environment}: {kind_label} of {release} succeeded (run #{run})",
            "deploy",
            resolves=True,
        ),
        Event(
            "deploy.failed",
            "Deploy failed",
            "error",
            "{environment}: {kind_label} of {release} {status} (run #{run}): {error}",
            "deploy",
        ),
        Event(
            "deploy.rolled_back",
            "Deploy rolled back",
            "warning",
            "{environment}: {kind_label} of {release} rolled back (run #{run}): {error}",
            "deploy",
        ),
        Event(
            "backup.failed",
            "Backup failed",
            "error",
            "{environment}: backup {policy_name} {status} (run #{run}): {error}",
            "backup/{policy}",
        ),
        Event(
            "backup.overdue",
            "Backup overdue",
            "warning",
            "{environment}: backup {policy_name} is overdue: {age}; the target is {rpo_minutes} min",
            "backup/{policy}",
        ),
        Event(
            "restore.verify_failed",
            "Restore verification failed",
            "error",
            "{environment}: restore verification {status} (run #{run}): {error}",
            "backup-verify",
        ),
        Event(
            "drift.detected",
            "Drift detected",
            "warning",
            "{environment}: Terraform drift: {changes} resource change(s) differ from the code (run #{run})",
            "drift",
        ),
        Event(
            "dr.requested",
            "DR requested",
            "critical",
            "{environment}: DR {operation} requested by {requested_by}, awaiting a second approval: {reason}",
            "dr/{run}",
        ),
        Event(
            "dr.approved",
            "DR approved",
            "critical",
            "{environment}: DR {operation} approved; run #{run} is starting",
            "dr/{run}",
        ),
        Event(
            "dr.completed",
            "DR completed",
            "info",
            "{environment}: DR {operation} {status} (run #{run})",
            "dr/{run}",
        ),
    )
}

CHOICES = [(code, event.label) for code, event in EVENTS.items()]
