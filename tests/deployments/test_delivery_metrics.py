"""The Delivery page: known deploy and backup history in, exact DORA measures and backup ages out;
a fixed number of queries whatever the history's size; viewers see only their environments."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from backups.delivery import backup_history
from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from deployments.delivery import Period, delivery_report
from deployments.models import Deployment, DeploymentKind, Release
from opsconsole.access.models import Role
from opsconsole.environments.models import Environment
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 18, 12, 0, tzinfo=UTC)  # a Wednesday
H = dt.timedelta(hours=1)
_digests = itertools.count(1)


def at(month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


def release(registered: dt.datetime) -> Release:
    n = next(_digests)
    return Release.objects.create(
        repository="example/api", tag=f"v{n}", digest=f"sha256:{n:064x}", registered_by_name="ci", created_at=registered
    )


def deployment(
    environment: Environment,
    registered: dt.datetime,
    finished: dt.datetime | None,
    status: str = Status.SUCCEEDED,
    kind: str = DeploymentKind.DEPLOY,
) -> Deployment:
    run = Run.objects.create(
        kind=f"deployments.{kind}",
        environment=environment,
        status=status,
        created_at=registered,
        started_at=registered,
        finished_at=finished,
    )
    return Deployment.objects.create(run=run, environment=environment, release=release(registered), kind=kind)


@pytest.fixture
def history(staging, production):
    """Staging: 4 good deploys, 3 failed ones (the last never restored), a rollback, a canceled
    deploy, one outside the period and one still running. Production: 3 good deploys. QA: none."""
    qa = Environment.objects.create(name="qa")
    deployment(staging, at(1, 10), at(1, 10, 5))  # before the period
    deployment(staging, at(3, 2, 9), at(3, 2, 10))  # lead 1h
    deployment(staging, at(3, 3), at(3, 3, 6), Status.ROLLED_BACK)  # failed...
    deployment(staging, at(3, 3), at(3, 3, 8), kind=DeploymentKind.ROLLBACK)  # ...restored 2h later
    deployment(staging, at(3, 4), at(3, 4, 3))  # lead 3h
    deployment(staging, at(3, 10), at(3, 10, 5))  # lead 5h
    deployment(staging, at(3, 10), at(3, 11), Status.FAILED)  # failed...
    deployment(staging, at(3, 11, 10), at(3, 11, 12))  # ...restored 12h later by this one (lead 2h)
    deployment(staging, at(3, 12), at(3, 12, 1), Status.CANCELED)  # not a change
    deployment(staging, at(3, 16), at(3, 17), Status.ERRORED)  # never restored
    deployment(staging, at(3, 18), None, Status.RUNNING)  # not finished
    deployment(production, at(3, 2), at(3, 2, 1))  # lead 1h
    deployment(production, at(3, 5), at(3, 5, 10))  # lead 10h
    deployment(production, at(3, 17, 2), at(3, 17, 6))  # lead 4h; restores nothing in staging
    return {"staging": staging, "production": production, "qa": qa}


def by_name(report):
    return {row.environment.name: row for row in report.environments}


def test_each_measure_over_the_period(history):
    envs = by_name(delivery_report(None, Period(30, NOW)))
    staging = envs["staging"].total
    assert (staging.deploys, staging.failures, staging.unrestored) == (4, 3, 1)
    assert staging.change_failure_rate == pytest.approx(3 / 7)
    assert staging.lead_time == 2.5 * H  # median of 1h, 2h, 3h, 5h
    assert staging.restore_time == 7 * H  # median of 2h and 12h; the unrestored one is not a time
    assert envs["staging"].deploys_per_week == pytest.approx(4 / (30 / 7))

    production = envs["production"].total
    assert (production.deploys, production.failures, production.unrestored) == (3, 0, 0)
    assert production.change_failure_rate == 0
    assert production.lead_time == 4 * H  # median of 1h, 10h, 4h
    assert production.restore_time is None


def test_an_environment_without_deploys_has_no_rates_rather_than_zeros(history):
    qa = by_name(delivery_report(None, Period(30, NOW)))["qa"]
    assert (qa.total.deploys, qa.total.failures, qa.deploys_per_week) == (0, 0, 0)
    assert qa.total.change_failure_rate is None
    assert qa.total.lead_time is None and qa.total.restore_time is None
    assert all(week.changes == 0 for week in qa.weeks.values())


def test_weekly_buckets_start_on_monday_in_utc(history):
    report = delivery_report(None, Period(30, NOW))
    assert report.period.weeks == [dt.date(2026, 2, 16) + dt.timedelta(weeks=i) for i in range(5)]
    weeks = by_name(report)["staging"].weeks
    first, second, third = weeks[dt.date(2026, 3, 2)], weeks[dt.date(2026, 3, 9)], weeks[dt.date(2026, 3, 16)]
    assert (first.deploys, first.failures, first.lead_time, first.restore_time) == (2, 1, 2 * H, 2 * H)
    assert (second.deploys, second.failures, second.lead_time, second.restore_time) == (2, 1, 3.5 * H, 12 * H)
    assert (third.deploys, third.failures, third.unrestored, third.change_failure_rate) == (0, 1, 1, 1.0)
    assert third.restore_time is None
    assert weeks[dt.date(2026, 2, 16)].change_failure_rate is None


def test_a_shorter_period_leaves_older_deploys_out(history):
    staging = by_name(delivery_report(None, Period(8, NOW)))["staging"]  # from Mar 10 12:00
    assert (staging.total.deploys, staging.total.failures) == (1, 2)  # Mar 11 12:00; Mar 11 00:00 and Mar 17
    assert staging.total.restore_time == 12 * H


def test_the_query_count_does_not_grow_with_the_history(history, django_assert_num_queries):
    with django_assert_num_queries(7):
        delivery_report(None, Period(30, NOW))
    for day in range(1, 15):
        deployment(history["staging"], at(3, day), at(3, day, 2))
        deployment(history["production"], at(3, day), at(3, day, 3), Status.ROLLED_BACK)
    with django_assert_num_queries(7):
        report = delivery_report(None, Period(30, NOW))
    assert by_name(report)["production"].total.failures == 14


def test_one_success_restores_every_failure_before_it_also_after_the_period(staging, production):
    """Two failures in a row are both restored by the next good deploy; a failure near the period's
    end is restored by one after it; a failed rollback and another environment's success restore
    nothing (and a failed rollback is not a failed deploy)."""
    deployment(staging, at(3, 2), at(3, 2, 1), Status.FAILED)  # restored 9h later...
    deployment(staging, at(3, 2), at(3, 2, 4), Status.ERRORED)  # ...and this one 6h later
    deployment(staging, at(3, 2), at(3, 2, 6), Status.FAILED, kind=DeploymentKind.ROLLBACK)  # no restore
    deployment(production, at(3, 2), at(3, 2, 8))  # another environment
    deployment(staging, at(3, 2), at(3, 2, 10))  # restores both
    deployment(staging, at(3, 16), at(3, 18, 9), Status.ROLLED_BACK)  # restored 6h later, after NOW
    deployment(staging, at(3, 18, 12), at(3, 18, 15))  # after the period
    staging_report = by_name(delivery_report({staging.pk}, Period(30, NOW)))["staging"]
    total = staging_report.total
    assert (total.deploys, total.failures, total.unrestored) == (1, 3, 0)
    assert total.restore_time == 6 * H  # median of 9h, 6h, 6h
    assert staging_report.weeks[dt.date(2026, 3, 2)].restore_time == 7.5 * H  # 9h and 6h
    assert staging_report.weeks[dt.date(2026, 3, 16)].restore_time == 6 * H
    # Seen from a period that ends before the restoring deploy, the failure is still restored by it.
    earlier = by_name(delivery_report({staging.pk}, Period(30, at(3, 18, 10))))["staging"].total
    assert (earlier.unrestored, earlier.restore_time) == (0, 6 * H)


def test_only_the_given_environments_are_reported(history):
    report = delivery_report({history["production"].pk}, Period(30, NOW))
    assert [row.environment.name for row in report.environments] == ["production"]


# --- Backups ------------------------------------------------------------------------------------


def backup(policy, finished, size, status=BackupStatus.AVAILABLE):
    return Backup.objects.create(
        policy=policy,
        environment=policy.environment,
        kind=policy.kind,
        region="us-east-1",
        status=status,
        size_bytes=size,
        started_at=finished - dt.timedelta(minutes=5),
        finished_at=finished,
    )


def test_backup_age_at_each_week_end_and_the_largest_backup_of_the_week(staging, django_assert_num_queries):
    policy = BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="nightly", source_identifier="db", rpo_minutes=24 * 60
    )
    backup(policy, at(2, 10), 100)  # before the period: the newest good one when it starts
    backup(policy, at(2, 24, 3), 500, BackupStatus.DELETED)  # retention deleted it later: still counts
    backup(policy, at(2, 25, 3), 700)
    backup(policy, at(2, 26, 3), 9999, BackupStatus.FAILED)  # never good
    backup(policy, at(3, 18, 6), 800)
    with django_assert_num_queries(3):
        (history,) = backup_history(None, Period(30, NOW))
    # Week ends: Feb 23, Mar 2, Mar 9, Mar 16 (midnight UTC), then now (Mar 18 12:00).
    assert history.ages == [
        at(2, 23) - at(2, 10),
        at(3, 2) - at(2, 25, 3),
        at(3, 9) - at(2, 25, 3),
        at(3, 16) - at(2, 25, 3),
        NOW - at(3, 18, 6),
    ]
    assert history.sizes == [None, 700, None, None, 800]
    assert history.backups == 3
    assert history.weeks_over_rpo == 4
    assert history.worst_age == at(3, 16) - at(2, 25, 3)


def test_a_policy_that_never_backed_up_has_no_age(staging):
    BackupPolicy.objects.create(environment=staging, kind=Kind.RDS_SNAPSHOT, name="new", source_identifier="db")
    (history,) = backup_history(None, Period(30, NOW))
    assert history.ages == [None] * 5 and history.sizes == [None] * 5 and history.worst_age is None


# --- The page -----------------------------------------------------------------------------------


@pytest.fixture
def recent(staging, production):
    """Recent history (the page reports up to now), backups in both environments."""
    now = dt.datetime.now(UTC)
    deployment(staging, now - 30 * H, now - 28 * H)
    deployment(staging, now - 20 * H, now - 19 * H, Status.ROLLED_BACK)
    deployment(production, now - 50 * H, now - 40 * H)
    for environment in (staging, production):
        policy = BackupPolicy.objects.create(
            environment=environment, kind=Kind.RDS_SNAPSHOT, name=f"{environment.name}-nightly", source_identifier="db"
        )
        backup(policy, now - 3 * H, 2048)
    return now


def test_the_page_shows_the_measures_and_charts(users, recent):
    response = client_for(users["viewer"]).get("/delivery/?days=30")
    assert response.status_code == 200
    html = response.content.decode()
    staging_row = re.search(r'<tr data-environment="staging">(.*?)</tr>', html, re.S)[1]
    assert re.search(r'data-measure="deploys">1<', staging_row)
    assert "50% <span" in staging_row and "(1 of 2)" in staging_row
    assert "1 not restored" in staging_row
    assert '<a class="button active" href="?days=30">30 days</a>' in html
    # Four DORA charts (time to restore has nothing to draw: no failure was restored), two per policy.
    assert html.count('<svg class="chart"') == 3 + 2 * 2
    assert html.count("No data in this period.") == 1
    assert 'data-series="production"' in html
    assert "<script" not in html.split("</head>")[1] and " style=" not in html
    assert 'href="/delivery/" class="active"' in html


def test_a_viewer_sees_only_the_environments_they_may_view(users, recent, staging):
    viewer = make_user("vic", Role.VIEWER, staging)
    html = client_for(viewer).get("/delivery/").content.decode()
    assert 'data-environment="staging"' in html and 'data-series="staging"' in html
    assert "production" not in html
    assert "staging-nightly" in html and "production-nightly" not in html


def test_a_bad_period_says_so_and_shows_the_default(users, recent):
    response = client_for(users["viewer"]).get("/delivery/?days=7000", follow=True)
    html = response.content.decode()
    assert "Choose a period of 30, 90, 180 days; showing 90." in html
    assert '<a class="button active" href="?days=90">90 days</a>' in html


def test_someone_without_a_role_is_refused(users):
    assert client_for(users["nobody"]).get("/delivery/").status_code == 403


def test_the_sandbox_demo_history_fills_the_page_once(staging, production):
    from sandbox.history import NOTE, seed_backup_history, seed_deploy_history

    BackupPolicy.objects.create(environment=staging, kind=Kind.RDS_SNAPSHOT, name="nightly", source_identifier="db")
    counts = []
    for _ in range(2):  # a second start adds nothing
        seed_deploy_history("example/api", now=NOW)
        seed_backup_history(now=NOW)
        counts.append((Release.objects.count(), Run.objects.count(), Backup.objects.count()))
    assert counts[0] == counts[1] and counts[0][1] > 50 and counts[0][2] > 150
    assert set(Run.objects.values_list("events__message", flat=True)) == {NOTE}
    assert not Backup.objects.exclude(status=BackupStatus.DELETED).exists()  # nothing real behind them
    envs = by_name(delivery_report(None, Period(180, NOW)))
    assert envs["staging"].total.deploys > envs["production"].total.deploys > 0
    assert 0 < envs["production"].total.change_failure_rate < 0.5
    assert envs["production"].total.restore_time is not None
    (history,) = backup_history(None, Period(180, NOW))
    assert history.weeks_over_rpo >= 1  # the made-up outage


def test_the_sandbox_start_makes_history_agree_with_the_live_release(staging, production):
    """The sandbox AWS starts afresh, running its first release: the history says so once, so its
    newest successful deploy is the release shown as live."""
    from sandbox.history import record_sandbox_start, seed_deploy_history

    seed_deploy_history("example/api", now=NOW)
    live = release(NOW)
    for _ in range(2):  # a second start with the same release adds nothing
        record_sandbox_start(production, live, now=NOW + H)
    newest = Deployment.objects.filter(environment=production, run__status=Status.SUCCEEDED)
    assert newest.order_by("-run__finished_at").first().release == live
    assert newest.filter(release=live).count() == 1
    assert "sandbox started" in newest.get(release=live).run.events.get().message


# --- Chart geometry (opsconsole/ui/charts.py) -----------------------------------------------------


def test_a_line_breaks_where_a_week_has_no_value_and_bars_sit_on_the_axis():
    from opsconsole.ui import charts

    drawn = charts.chart(
        ["a", "b", "c", "d"],
        [charts.Series("lead", [1, None, 3, 4]), charts.Series("deploys", [0, 2, None, 4], "bar", index=1)],
        width=252,
        height=134,
        nice=charts.nice_count,
    )
    line, bars = drawn.series
    assert len(line.segments) == 2 and len(line.points) == 3  # "a" alone, then "c"-"d"
    assert [bar.label for bar in bars.bars] == ["0", "2", "4"]
    bottom = drawn.plot_bottom
    assert all(bar.y + bar.h == pytest.approx(bottom) for bar in bars.bars)
    assert bars.bars[-1].y == drawn.plot_top  # 4 is the top of the axis
    assert [label for _, label in drawn.gridlines] == ["0", "1", "2", "3", "4"]
    assert charts.chart(["a"], [charts.Series("x", [None])]).empty


def test_axis_tops_read_as_round_durations_and_sizes():
    from opsconsole.ui import charts

    assert [charts.nice_count(v) for v in (0, 3, 4, 6, 9, 38)] == [4, 4, 4, 8, 20, 40]
    assert charts.nice_hours(19) == 24 and charts.nice_hours(50) == 96
    assert charts.nice_hours(0.3) == pytest.approx(1 / 3)  # 5-minute steps
    assert [charts.fmt_hours(v) for v in (0, 0.5, 6, 24, 36, 96)] == ["0", "30m", "6h", "1d", "1.5d", "4d"]
    assert charts.nice_bytes(477 * 2**20) == 500 * 2**20
    assert charts.fmt_bytes(500 * 2**20) == "500 MB" and charts.fmt_bytes(512) == "512 B"
