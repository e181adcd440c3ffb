"""The Delivery page: the four DORA measures from the console's own deploy history, per
environment and per week, over a chosen period; and sections other apps add (backups adds
backup age and size) through SECTIONS, so this app imports none of them.

Every number comes from aggregate SQL: a fixed number of queries whatever the history's size, and
Python only ever loops over the buckets (environments x weeks), never over the runs. Medians are
taken in SQL with window functions (the middle one or two rows of each group), which PostgreSQL
and SQLite both run.

What counts (docs/deployments.md, "Delivery metrics"):
- a *deploy* is a deploy run (not a rollback) that finished succeeded, rolled_back, failed or
  errored; canceled runs (rejected, expired, canceled before they changed anything) are not changes;
- deploy frequency counts the successful ones; lead time is from the release's registration to
  the end of its successful deploy; the change failure rate is failed / counted deploys;
- time to restore runs from a failed deploy's end to the end of the next successful deploy or
  rollback in that environment; a failure with none yet is counted as not restored.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Value, When
from django.db.models.expressions import RowRange, Window
from django.db.models.functions import RowNumber, TruncWeek
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployments.models import Deployment, DeploymentKind
from opsconsole.access.models import Action
from opsconsole.access.permissions import require, visible_environment_ids
from opsconsole.environments.models import Environment
from opsconsole.runs.models import Run, Status
from opsconsole.ui import charts
from opsconsole.ui.pagination import parse_int

PERIODS = (30, 90, 180)
DEFAULT_PERIOD = 90
FAILED = (Status.ROLLED_BACK, Status.FAILED, Status.ERRORED)
COUNTED = (Status.SUCCEEDED, *FAILED)
UTC = dt.UTC
DEPLOY_RUN = f"deployments.{DeploymentKind.DEPLOY}"  # the run kinds of deployments.jobs
DEPLOY_RUNS = (DEPLOY_RUN, f"deployments.{DeploymentKind.ROLLBACK}")


@dataclass(frozen=True)
class Period:
    """The last `days` days up to `end`, in weeks that start on Monday (UTC)."""

    days: int
    end: dt.datetime

    @property
    def start(self) -> dt.datetime:
        return self.end - dt.timedelta(days=self.days)

    @property
    def weeks(self) -> list[dt.date]:
        first = self.start.astimezone(UTC).date()
        first -= dt.timedelta(days=first.weekday())
        last = self.end.astimezone(UTC).date()
        return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]

    def week_end(self, week: dt.date) -> dt.datetime:
        """When a week's bucket closes: its next Monday, or now for the current week."""
        closes = dt.datetime.combine(week + dt.timedelta(weeks=1), dt.time(), UTC)
        return min(closes, self.end)


def week_of(field_name: str) -> TruncWeek:
    # In UTC whatever the viewer's timezone: the buckets must not move with the browser.
    return TruncWeek(field_name, tzinfo=UTC)


def as_date(value) -> dt.date:
    if isinstance(value, str):  # a week from raw SQL on SQLite
        return dt.date.fromisoformat(value[:10])
    return value.date() if isinstance(value, dt.datetime) else value


def medians(queryset: QuerySet, value, groups: list[str]) -> dict[tuple, dt.timedelta]:
    """The median of `value` per group, in one query: rank the rows of each group in SQL and keep
    the middle one (odd count) or two (even count), which Python averages."""
    partition = [F(name) for name in groups]
    middle = (
        queryset.annotate(_value=value)
        .annotate(
            # Empty values (a failure not restored yet) rank last and are not counted, so the
            # middle is taken among the known values without a WHERE that would compute them twice.
            _rank=Window(RowNumber(), partition_by=partition, order_by=F("_value").asc(nulls_last=True)),
            _count=Window(Count("_value"), partition_by=partition),
        )
        .filter(_rank__gte=(F("_count") + 1) / 2, _rank__lte=(F("_count") + 2) / 2)
        .values_list(*groups, "_value")
    )
    found: dict[tuple, list[dt.timedelta]] = defaultdict(list)
    for *key, amount in middle:
        if amount is not None:  # a group with no known value at all
            found[tuple(as_date(k) for k in key)].append(amount)
    return {key: sum(amounts, dt.timedelta()) / len(amounts) for key, amounts in found.items()}


@dataclass
class Measures:
    """The four measures over one bucket (a week, or the whole period) of one environment."""

    deploys: int = 0  # successful
    failures: int = 0
    unrestored: int = 0
    lead_time: dt.timedelta | None = None
    restore_time: dt.timedelta | None = None

    @property
    def changes(self) -> int:
        return self.deploys + self.failures

    @property
    def change_failure_rate(self) -> float | None:
        """Failed deploys / counted deploys, 0..1; None without any deploy."""
        return self.failures / self.changes if self.changes else None


@dataclass
class EnvironmentDelivery:
    environment: Environment
    total: Measures
    weeks: dict[dt.date, Measures]
    days: int
    index: int = 0  # its colour in the charts

    @property
    def css(self) -> str:
        return f"series-{self.index % charts.PALETTE_SIZE}"

    @property
    def deploys_per_week(self) -> float:
        return self.total.deploys / (self.days / 7)


@dataclass
class Report:
    period: Period
    environments: list[EnvironmentDelivery] = field(default_factory=list)


def counted_deploys(env_ids: set[int] | None, period: Period) -> QuerySet:
    deploys = Deployment.objects.filter(
        kind=DeploymentKind.DEPLOY,
        run__status__in=COUNTED,
        run__finished_at__gte=period.start,
        run__finished_at__lte=period.end,
    ).order_by()
    return deploys if env_ids is None else deploys.filter(environment_id__in=env_ids)


def restore_rows(env_ids: set[int] | None, period: Period) -> tuple[str, list]:
    """The period's failed deploys with their time to restore, as SQL for a derived table (columns
    environment_id, week, failed_deploy (1 or 0) and time_to_restore, empty while not restored).

    A failure is restored by the next successful deploy or rollback in its environment, so the
    rows are the period's failures and every success from the period's start on (also after its
    end). One window over each environment's rows, newest first, carries the earliest success seen
    so far: the frame only ever grows at its end, so the database keeps a running minimum (one sort
    and one pass, linear in the rows) instead of searching the later deploys for each failure.
    Deploys and rollbacks in one environment never overlap, so "next" in time is the next one.
    """
    # Straight from the runs (a deploy or rollback run and its deployment row are created together,
    # with the same environment): no join, and the rows the window sorts stay narrow.
    failure = Q(kind=DEPLOY_RUN, status__in=FAILED, finished_at__lte=period.end)
    rows = Run.objects.filter(Q(status=Status.SUCCEEDED) | failure, kind__in=DEPLOY_RUNS, finished_at__gte=period.start)
    if env_ids is not None:
        rows = rows.filter(environment_id__in=env_ids)
    restored = Window(
        Min(Case(When(status=Status.SUCCEEDED, then=F("finished_at")))),
        partition_by=[F("environment_id")],
        order_by=[F("finished_at").desc(), F("pk").desc()],
        frame=RowRange(start=None, end=-1),  # every later row, the current one excluded
    )
    rows = (
        rows.order_by()
        .annotate(
            week=week_of("finished_at"),
            failed_deploy=Case(When(failure, then=Value(1)), default=Value(0)),
            time_to_restore=ExpressionWrapper(restored - F("finished_at"), output_field=DurationField()),
        )
        .values("environment_id", "week", "failed_deploy", "time_to_restore")
    )
    return rows.query.sql_with_params()


def as_duration(value) -> dt.timedelta:
    # PostgreSQL returns an interval; SQLite the microseconds Django's django_timestamp_diff() gives.
    return value if isinstance(value, dt.timedelta) else dt.timedelta(microseconds=value)


def restore_medians(rows: tuple[str, list], groups: list[str]) -> dict[tuple, dt.timedelta]:
    """The median time to restore per group of the restored failures, in one query (as medians())."""
    sql, params = rows
    by = ", ".join(groups)
    query = f"""
        SELECT {by}, time_to_restore FROM (
            SELECT {by}, time_to_restore,
                ROW_NUMBER() OVER (PARTITION BY {by} ORDER BY time_to_restore) AS position,
                COUNT(*) OVER (PARTITION BY {by}) AS known
            FROM ({sql}) AS failures
            WHERE failed_deploy = 1 AND time_to_restore IS NOT NULL
        ) AS ranked
        WHERE position >= (known + 1) / 2 AND position <= (known + 2) / 2
    """
    found: dict[tuple, list[dt.timedelta]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        for *key, amount in cursor.fetchall():
            found[tuple(as_date(k) for k in key)].append(as_duration(amount))
    return {key: sum(amounts, dt.timedelta()) / len(amounts) for key, amounts in found.items()}


def unrestored_counts(rows: tuple[str, list]) -> list[tuple[int, dt.date, int]]:
    sql, params = rows
    query = f"""
        SELECT environment_id, week, COUNT(*) FROM ({sql}) AS failures
        WHERE failed_deploy = 1 AND time_to_restore IS NULL GROUP BY environment_id, week
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [(env_id, as_date(week), n) for env_id, week, n in cursor.fetchall()]


def delivery_report(env_ids: set[int] | None, period: Period) -> Report:
    """The four measures per environment, per week and over the period: seven queries in all."""
    environments = list(Environment.objects.all() if env_ids is None else Environment.objects.filter(pk__in=env_ids))
    deploys = counted_deploys(env_ids, period).annotate(week=week_of("run__finished_at"))
    restores = restore_rows(env_ids, period)

    # Counted from the runs alone (the same rows as `deploys`, without joining their deployments).
    runs = Run.objects.filter(
        kind=DEPLOY_RUN, status__in=COUNTED, finished_at__gte=period.start, finished_at__lte=period.end
    ).order_by()
    if env_ids is not None:
        runs = runs.filter(environment_id__in=env_ids)
    weekly_counts = (
        runs.annotate(week=week_of("finished_at"))
        .values("environment_id", "week")
        .annotate(
            succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
            failed=Count("pk", filter=Q(status__in=FAILED)),
        )
    )
    unrestored = unrestored_counts(restores)
    lead = ExpressionWrapper(F("run__finished_at") - F("release__created_at"), output_field=DurationField())
    succeeded = deploys.filter(run__status=Status.SUCCEEDED)
    lead_weekly = medians(succeeded, lead, ["environment_id", "week"])
    lead_total = medians(succeeded, lead, ["environment_id"])
    restore_weekly = restore_medians(restores, ["environment_id", "week"])
    restore_total = restore_medians(restores, ["environment_id"])

    report = Report(period)
    by_env: dict[int, EnvironmentDelivery] = {}
    for index, environment in enumerate(environments):
        weeks = {week: Measures() for week in period.weeks}
        by_env[environment.pk] = EnvironmentDelivery(environment, Measures(), weeks, period.days, index)
        report.environments.append(by_env[environment.pk])
    for row in weekly_counts:
        env = by_env[row["environment_id"]]
        week = env.weeks.setdefault(as_date(row["week"]), Measures())
        week.deploys, week.failures = row["succeeded"], row["failed"]
        env.total.deploys += row["succeeded"]
        env.total.failures += row["failed"]
    for env_id, week, n in unrestored:
        env = by_env[env_id]
        env.weeks.setdefault(week, Measures()).unrestored = n
        env.total.unrestored += n
    for (env_id, week), value in lead_weekly.items():
        by_env[env_id].weeks.setdefault(week, Measures()).lead_time = value
    for (env_id, week), value in restore_weekly.items():
        by_env[env_id].weeks.setdefault(week, Measures()).restore_time = value
    for (env_id,), value in lead_total.items():
        by_env[env_id].total.lead_time = value
    for (env_id,), value in restore_total.items():
        by_env[env_id].total.restore_time = value
    return report


# --- Charts ----------------------------------------------------------------------------------------


def hours(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 3600


def delivery_charts(report: Report) -> list[dict]:
    weeks = report.period.weeks
    labels = [f"{week:%b} {week.day}" for week in weeks]
    envs = report.environments

    def series(kind: str, pick: Callable[[Measures], float | None]) -> list[charts.Series]:
        return [charts.Series(e.environment.name, [pick(e.weeks[w]) for w in weeks], kind, index=e.index) for e in envs]

    def rate(m: Measures) -> float | None:
        return None if m.change_failure_rate is None else m.change_failure_rate * 100

    return [
        {
            "title": "Deploy frequency",
            "note": "successful deploys per week",
            "chart": charts.chart(
                labels, series("bar", lambda m: m.deploys), fmt=charts.fmt_count, nice=charts.nice_count
            ),
        },
        {
            "title": "Lead time for changes",
            "note": "median, release registered to deployed, by week deployed",
            "chart": charts.chart(
                labels, series("line", lambda m: hours(m.lead_time)), fmt=charts.fmt_hours, nice=charts.nice_hours
            ),
        },
        {
            "title": "Change failure rate",
            "note": "failed / all deploys that week",
            "chart": charts.chart(labels, series("line", rate), fmt=charts.fmt_percent, y_max=100),
        },
        {
            "title": "Time to restore",
            "note": "median, failed deploy to the next good one, by week failed",
            "chart": charts.chart(
                labels, series("line", lambda m: hours(m.restore_time)), fmt=charts.fmt_hours, nice=charts.nice_hours
            ),
        },
    ]


# --- The page --------------------------------------------------------------------------------------

# Apps above this one add a section: a function (visible environment ids or None, period) ->
# a dict with "template" (rendered with the dict as `section`) and whatever that template needs.
SECTIONS: list[Callable[[set[int] | None, Period], dict]] = []


@login_required
@require_GET
def delivery_page(request):
    require(request, Action.VIEW)
    days = parse_int(request.GET.get("days")) if request.GET.get("days") else DEFAULT_PERIOD
    if days not in PERIODS:
        messages.error(request, f"Choose a period of {', '.join(map(str, PERIODS))} days; showing {DEFAULT_PERIOD}.")
        days = DEFAULT_PERIOD
    period = Period(days, timezone.now())
    env_ids = visible_environment_ids(request.user)
    report = delivery_report(env_ids, period)
    context = {
        "report": report,
        "periods": PERIODS,
        "days": days,
        "charts": delivery_charts(report) if report.environments else [],
        "sections": [section(env_ids, period) for section in SECTIONS],
    }
    return render(request, "deployments/delivery.html", context)
