"""The backups app's notices (opsconsole/notices.py): a policy whose newest good backup is older
than its recovery-point target, or that has none and is older than the target itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from backups.models import BackupPolicy, newest_good
from opsconsole.notices import Notice


def overdue_backups(now: datetime) -> Iterator[Notice]:
    """One notice per enabled policy past its RPO; its episode is the newest good backup, so the
    same lapse is reported once and a newer backup that is still too old starts a new one."""
    for policy in BackupPolicy.objects.filter(enabled=True).select_related("environment"):
        newest = newest_good(policy.backups)
        since = newest.finished_at if newest else policy.created_at
        age = now - since
        if age <= policy.rpo:
            continue
        minutes = int(age.total_seconds() // 60)
        ago = f"{minutes // 60}h {minutes % 60:02d}m ago"
        yield Notice(
            "backup.overdue",
            policy.environment,
            episode=f"backup-overdue:{policy.pk}:{newest.pk if newest else 0}",
            facts={
                "policy": policy.pk,
                "policy_name": policy.name,
                "kind": f"backups.{policy.kind}",
                "newest_backup_at": newest.finished_at if newest else None,
                "age": f"the newest finished {ago}" if newest else f"no backup since the policy was created {ago}",
                "rpo_minutes": policy.rpo_minutes,
            },
        )
