"""The Delivery page's backup section: each policy's newest-good-backup age at the end of every
week (against its RPO) and the largest backup of the week. Two aggregate queries, whatever the
number of backups; Python walks only the weeks of each policy.

A backup counts from the moment it finished successfully, also after retention deleted it (it was
the newest good backup until the next one came).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Max

from backups.models import Backup, BackupPolicy, BackupStatus
from deployments.delivery import SECTIONS, Period, as_date, week_of
from opsconsole.ui import charts

WAS_GOOD = (BackupStatus.AVAILABLE, BackupStatus.DELETED)


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
    good = Backup.objects.filter(
        policy__in=[p.pk for p in policies], status__in=WAS_GOOD, finished_at__isnull=False
    ).order_by()
    weekly = (
        good.filter(finished_at__gte=period.start, finished_at__lte=period.end)
        .annotate(week=week_of("finished_at"))
        .values("policy_id", "week")
        .annotate(last=Max("finished_at"), largest=Max("size_bytes"), n=Count("pk"))
    )
    before = good.filter(finished_at__lt=period.start).values("policy_id").annotate(last=Max("finished_at"))
    buckets: dict[tuple[int, dt.date], dict] = {(row["policy_id"], as_date(row["week"])): row for row in weekly}
    last_before = {row["policy_id"]: row["last"] for row in before}

    histories = []
    for policy in policies:
        history = PolicyHistory(policy)
        last = last_before.get(policy.pk)
        for week in period.weeks:
            bucket = buckets.get((policy.pk, week))
            if bucket is not None:
                last = bucket["last"]
                history.backups += bucket["n"]
            history.sizes.append(bucket["largest"] if bucket else None)
            history.ages.append(period.week_end(week) - last if last is not None else None)
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
