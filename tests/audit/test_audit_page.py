"""The audit page: newest first, filters, keyset pages, CSV and JSON export, escaping,
environment-scoped readers, and the chain check page."""

import csv
import datetime as dt
import html
import io
import json
import re
from html.parser import HTMLParser
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from opsconsole.access.models import Role
from opsconsole.audit.log import record, verify_chain
from opsconsole.audit.models import AuditEvent, Outcome
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC


class AuditTable(HTMLParser):
    """The rows of the page's #audit table, as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "audit") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table" and self._in_table:
            self._in_table = self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def listed(response) -> list[int]:
    """Sequence numbers of the events the page lists, top to bottom."""
    assert response.status_code == 200
    parser = AuditTable()
    parser.feed(response.content.decode())
    return [int(row[0]) for row in parser.rows if row and row[0].isdigit()]


def older_link(response) -> str | None:
    match = re.search(r'<a href="([^"]*)">Older events', response.content.decode())
    return html.unescape(match.group(1)) if match else None


def record_at(when: dt.datetime, action: str, **fields) -> AuditEvent:
    with mock.patch("django.utils.timezone.now", return_value=when):
        return record(action, **fields)


def append_in_bulk(count: int) -> None:
    """Chained events in one INSERT: record() takes a lock per event, too slow for thousands."""
    last = AuditEvent.objects.order_by("-seq").first()
    seq, prev_hash, now = last.seq, last.hash, timezone.now()
    events = []
    for n in range(count):
        seq += 1
        event = AuditEvent(seq=seq, at=now, actor_name="system", action="tests.bulk", details={"n": n})
        event.prev_hash = prev_hash
        event.hash = prev_hash = event.compute_hash()
        events.append(event)
    AuditEvent.objects.bulk_create(events)
    assert verify_chain().ok


def exported(client, fmt: str, query: str = "") -> list[dict]:
    response = client.get(f"/audit/export.{fmt}?{query}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="audit.{fmt}"'
    body = b"".join(response.streaming_content).decode()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body)))
    return json.loads(body)


def signed_in(user):
    """A client signed in without an auth.login event, so the log holds only the test's events."""
    with mock.patch("opsconsole.audit.signals.record"):
        return client_for(user)


@pytest.fixture
def admin_client_(users):
    return signed_in(users["admin"])


@pytest.fixture
def mixed_events(users, staging, production):
    """Events by two actors, in two environments and none, with every outcome."""
    specs = [
        ("deployments.deploy.requested", "ada", "staging", Outcome.SUCCESS),
        ("deployments.deploy.requested", "dana", "production", Outcome.DENIED),
        ("auth.login", "dana", "", Outcome.SUCCESS),
        ("backups.backup.failed", "ada", "staging", Outcome.FAILURE),
        ("deployments.rollback.requested", "dana", "staging", Outcome.FAILURE),
        ("auth.login.failed", "system", "", Outcome.FAILURE),
        ("dr.failover.requested", "ada", "production", Outcome.SUCCESS),
    ]
    return [
        record(action, actor_name=actor, environment=env, outcome=outcome, target=f"t:{i}", details={"i": i})
        for i, (action, actor, env, outcome) in enumerate(specs, start=1)
    ]


def test_the_page_lists_events_newest_first(admin_client_, mixed_events):
    assert listed(admin_client_.get("/audit/")) == [7, 6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=dana", [5, 3, 2]),
        ("actor=dan", []),  # actor is an exact name, not a prefix
        ("action=deployments.", [5, 2, 1]),
        ("action=auth.login", [6, 3]),
        ("action=auth.login.failed", [6]),
        ("environment=staging", [5, 4, 1]),
        ("environment=production", [7, 2]),
        ("outcome=failure", [6, 5, 4]),
        ("outcome=denied", [2]),
        ("actor=ada&environment=staging&outcome=failure", [4]),
    ],
)
def test_filters_narrow_the_list(admin_client_, mixed_events, query, expected):
    assert listed(admin_client_.get(f"/audit/?{query}")) == expected


def test_a_date_range_includes_both_whole_days_and_nothing_outside(admin_client_):
    moments = [
        dt.datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 3, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2026, 3, 4, 0, 0, tzinfo=UTC),
    ]
    for moment in moments:
        record_at(moment, "tests.dated")
    assert listed(admin_client_.get("/audit/?since=2026-03-02&until=2026-03-03")) == [4, 3, 2]
    assert listed(admin_client_.get("/audit/?since=2026-03-03")) == [5, 4]
    assert listed(admin_client_.get("/audit/?until=2026-03-01")) == [1]
    assert listed(admin_client_.get("/audit/?since=2026-03-05")) == []


def test_a_date_range_is_read_in_the_users_timezone(admin_client_):
    record_at(dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "tests.dated")  # 2 March 01:00 in Tokyo
    record_at(dt.datetime(2026, 3, 2, 16, 0, tzinfo=UTC), "tests.dated")  # 3 March 01:00 in Tokyo
    assert listed(admin_client_.get("/audit/?since=2026-03-02&until=2026-03-02")) == [2]
    admin_client_.cookies["tz"] = "Asia/Tokyo"
    assert listed(admin_client_.get("/audit/?since=2026-03-02&until=2026-03-02")) == [1]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since: expected a date like 2026-11-26, got &#x27;yesterday&#x27;."),
        ("until=2026-02-30", "until: expected a date like 2026-11-26, got &#x27;2026-02-30&#x27;."),
        ("outcome=maybe", "outcome: expected one of success, failure, denied."),
    ],
)
def test_a_bad_filter_is_explained_on_the_page(admin_client_, mixed_events, query, message):
    response = admin_client_.get(f"/audit/?{query}")
    assert response.status_code == 200
    assert f'<p class="error">{message}</p>' in response.content.decode()
    assert listed(response) == [7, 6, 5, 4, 3, 2, 1]  # the bad filter is not guessed at


def test_the_last_representable_day_is_a_valid_end_of_range(admin_client_, mixed_events):
    response = admin_client_.get("/audit/?since=0001-01-01&until=9999-12-31")
    assert listed(response) == [7, 6, 5, 4, 3, 2, 1]
    assert 'class="error"' not in response.content.decode()
    assert len(exported(admin_client_, "csv", "until=9999-12-31")) == 7


def test_an_export_with_a_bad_filter_says_what_to_fix_and_exports_nothing(admin_client_, mixed_events):
    response = admin_client_.get("/audit/export.csv?since=yesterday")
    assert response.status_code == 400
    assert response.content.decode() == (
        "Fix the filters before exporting: since: expected a date like 2026-11-26, got 'yesterday'."
    )


def test_keyset_pages_walk_every_event_once_keeping_the_filter(admin_client_):
    for n in range(1, 121):
        record("tests.page", target=f"page:{n}")
        if n % 10 == 0:
            record("other.noise")
    pages, url = [], "/audit/?action=tests."
    while url:
        response = admin_client_.get(url if url.startswith("/") else "/audit/" + url)
        pages.append(listed(response))
        url = older_link(response)
        if url:
            assert "action=tests." in url
    assert [len(page) for page in pages] == [50, 50, 20]
    shown = [seq for page in pages for seq in page]
    expected = list(AuditEvent.objects.filter(action="tests.page").order_by("-seq").values_list("seq", flat=True))
    assert shown == expected  # newest first, no overlap, no gap
    assert len(set(shown)) == 120


def test_the_older_link_points_below_the_last_listed_event(admin_client_):
    for _ in range(120):
        record("tests.page")
    first = admin_client_.get("/audit/")
    assert listed(first) == list(range(120, 70, -1))
    assert older_link(first) == "?before=71"
    second = admin_client_.get("/audit/?before=71")
    assert listed(second) == list(range(70, 20, -1))
    assert older_link(second) == "?before=21"
    third = admin_client_.get("/audit/?before=21")
    assert listed(third) == list(range(20, 0, -1))
    assert older_link(third) is None


@pytest.mark.parametrize("before", ["abc", "-5", "0", "99999999999999999999999"])
def test_a_nonsense_page_marker_does_not_break_the_page(admin_client_, mixed_events, before):
    response = admin_client_.get(f"/audit/?before={before}")
    assert response.status_code == 200


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_export_contains_exactly_the_filtered_events(admin_client_, mixed_events, fmt):
    rows = exported(admin_client_, fmt, "environment=staging&outcome=failure")
    assert [int(row["seq"]) for row in rows] == [4, 5]
    by_seq = {int(row["seq"]): row for row in rows}
    event = AuditEvent.objects.get(seq=5)
    row = by_seq[5]
    assert row["action"] == "deployments.rollback.requested"
    assert row["actor_name"] == "dana"
    assert row["environment"] == "staging"
    assert row["outcome"] == "failure"
    assert row["hash"] == event.hash
    assert row["prev_hash"] == event.prev_hash
    assert dt.datetime.fromisoformat(row["at"]) == event.at
    details = json.loads(row["details"]) if fmt == "csv" else row["details"]
    assert details == {"i": 5}


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_unfiltered_export_contains_every_event_oldest_first(admin_client_, mixed_events, fmt):
    append_in_bulk(2100)  # more than one export batch
    seqs = [int(row["seq"]) for row in exported(admin_client_, fmt)]
    assert seqs == list(range(1, 7 + 2100 + 1))


def test_markup_in_events_is_escaped_on_the_page(admin_client_):
    record(
        "tests.xss",
        actor_name="<b>mallory</b>",
        target="<script>alert(1)</script>",
        environment="<i>env</i>",
        details={"note": "<img src=x onerror=alert(2)>", "<svg onload=alert(3)>": 1},
    )
    agent = RequestFactory().get("/", HTTP_USER_AGENT='"><script>alert(4)</script>')
    agent.user = AnonymousUser()
    record("tests.xss.agent", request=agent)
    page = admin_client_.get("/audit/").content.decode()
    for raw in ("<script>alert(1)</script>", "<img src=x", "<svg onload", "<b>mallory</b>", "<i>env</i>", '"><script>'):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;" in page


def test_a_reader_bound_to_staging_sees_only_staging_events(staging, mixed_events):
    sam = make_user("sam", Role.VIEWER, staging)
    client = signed_in(sam)
    staging_seqs = [5, 4, 1]
    assert listed(client.get("/audit/")) == staging_seqs
    assert listed(client.get("/audit/?environment=production")) == []
    assert listed(client.get("/audit/?action=dr.")) == []
    for fmt in ("csv", "json"):
        assert sorted(int(row["seq"]) for row in exported(client, fmt)) == sorted(staging_seqs)
        assert exported(client, fmt, "environment=production") == []


def test_a_user_with_no_role_sees_no_events(users, mixed_events):
    client = signed_in(users["nobody"])
    assert listed(client.get("/audit/")) == []
    assert exported(client, "json") == []


def test_the_verify_page_is_for_admins_only(users, mixed_events):
    for name in ("viewer", "deployer", "nobody"):
        assert signed_in(users[name]).get("/audit/verify/").status_code == 403
    assert "Verify chain" not in signed_in(users["viewer"]).get("/audit/").content.decode()
    assert "Verify chain" in signed_in(users["admin"]).get("/audit/").content.decode()


def test_an_admin_of_one_environment_does_not_verify_the_whole_chain(staging, mixed_events):
    staging_admin = make_user("stan", Role.ADMIN, staging)
    assert signed_in(staging_admin).get("/audit/verify/").status_code == 403


def test_the_verify_page_says_intact_or_names_the_broken_event(admin_client_, mixed_events):
    response = admin_client_.get("/audit/verify/")
    assert response.status_code == 200
    assert "<strong>Intact.</strong> 7 events verified" in response.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_update")
        cursor.execute("UPDATE audit_auditevent SET outcome = 'success' WHERE seq = 4")
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_no_update")
    page = admin_client_.get("/audit/verify/").content.decode()
    assert "Broken at event #4:</strong> contents do not match the stored hash" in page
    assert "Intact" not in page


def test_the_csv_export_defuses_spreadsheet_formulas(users):
    from opsconsole.audit.log import record

    record("test.formula", target='=HYPERLINK("http://evil.example")', actor=users["admin"])
    body = client_for(users["admin"]).get("/audit/export.csv?action=test.").getvalue().decode()
    assert "'=HYPERLINK" in body
    assert ",=HYPERLINK" not in body
