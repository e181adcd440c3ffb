"""The Delivery page's backup section: each policy's newest-good-backup age at the end of every
week (against its RPO) and the largest backup of the week. Two aggregate queries, whatever the
number of backups; Python walks only the weeks of each policy.

A backup counts as good by the one definition (backups.models.good_backup(), as on the Backups
page, in the overdue notice and in /metrics) from the moment it finished until retention deleted
it, if it did: at each week's end the age is that of the newest backup good and still there then,
so the last point (now) agrees with the Backups page. A backup whose restore test failed never
counts, nor in the week's count and largest size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Max, Q

from backups.models import Backup, BackupPolicy
from deployments.delivery import SECTIONS, Period, as_date, week_of
from opsconsole.ui import charts


@dataclass
class PolicyHistory:
    policy: BackupPolicy
    ages: list[dt.timedelta | None] = field(default_factory=list)  # at each week's end
    sizes: list[int | None] = field(default_factory=list)  # largest backup finished that week
    backups: int = 0
    age_chart: charts.Chart | None = None
    size_chart: charts.Chart | None = None

    @property
    def worst_age(self) -> dt.timedelta | None:
        known = [age for age in self.ages if age is not None]
        return max(known) if known else None

    @property
    def weeks_over_rpo(self) -> int:
        return sum(1 for age in self.ages if age is not None and age > self.policy.rpo)


def backup_history(env_ids: set[int] | None, period: Period) -> list[PolicyHistory]:
    policies = BackupPolicy.objects.select_related("environment").order_by("environment__name", "name")
    if env_ids is not None:
        policies = policies.filter(environment_id__in=env_ids)
    policies = list(policies)
    good = Backup.objects.were_good().filter(policy__in=[p.pk for p in policies]).order_by()
    weekly = (
        good.filter(finished_at__gte=period.start, finished_at__lte=period.end)
        .annotate(week=week_of("finished_at"))
        .values("policy_id", "week")
        .annotate(largest=Max("size_bytes"), n=Count("pk"))
    )
    # The newest good backup still there at each week's end: one column per week end.
    ends = [period.week_end(week) for week in period.weeks]
    standing = good.values("policy_id").annotate(
        **{
            f"at_{i}": Max(
                "finished_at", filter=Q(finished_at__lte=end) & (Q(deleted_at__isnull=True) | Q(deleted_at__gt=end))
            )
            for i, end in enumerate(ends)
        }
    )
    buckets: dict[tuple[int, dt.date], dict] = {(row["policy_id"], as_date(row["week"])): row for row in weekly}
    newest_at = {row["policy_id"]: row for row in standing}

    histories = []
    for policy in policies:
        history = PolicyHistory(policy)
        newest = newest_at.get(policy.pk, {})
        for i, week in enumerate(period.weeks):
            bucket = buckets.get((policy.pk, week))
            if bucket is not None:
                history.backups += bucket["n"]
            history.sizes.append(bucket["largest"] if bucket else None)
            last = newest.get(f"at_{i}")
            history.ages.append(ends[i] - last if last is not None else None)
        histories.append(history)
    return histories


def backup_section(env_ids: set[int] | None, period: Period) -> dict:
    labels = [f"{week:%b} {week.day}" for week in period.weeks]
    histories = backup_history(env_ids, period)
    for history in histories:
        rpo_hours = history.policy.rpo_minutes / 60
        ages = [None if age is None else age.total_seconds() / 3600 for age in history.ages]
        history.age_chart = charts.chart(
            labels,
            [charts.Series("age", ages, "line", index=0)],
            fmt=charts.fmt_hours,
            nice=charts.nice_hours,
            width=420,
            height=120,
            reference=(rpo_hours, "RPO"),
            label_every=max(1, len(labels) // 4),
        )
        history.size_chart = charts.chart(
            labels,
            [charts.Series("largest backup", history.sizes, "bar", index=1)],
            fmt=charts.fmt_bytes,
            nice=charts.nice_bytes,
            width=420,
            height=120,
            ticks=2,
            label_every=max(1, len(labels) // 4),
        )
    return {"template": "backups/_delivery.html", "histories": histories}


def register() -> None:
    if backup_section not in SECTIONS:
        SECTIONS.append(backup_section)
