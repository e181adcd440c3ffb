"""A run's page opens on the tail of its log: the last TAIL_LINES lines, with a link that fetches
the lines before them, TAIL_LINES at a time, down to the first."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from opsconsole.runs.models import Run, RunEvent, Status
from opsconsole.ui.views import TAIL_LINES
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

SEQ = re.compile(r'data-seq="(\d+)"')
EARLIER = re.compile(r'hx-get="/runs/\d+/events/\?before=(\d+)"')


def finished_run(lines: int) -> Run:
    now = timezone.now()
    run = Run.objects.create(
        kind="maintenance.selftest", status=Status.SUCCEEDED, started_at=now, finished_at=now, requested_by_name="ada"
    )
    RunEvent.objects.bulk_create(
        [RunEvent(run=run, seq=seq, message=f"line {seq}") for seq in range(1, lines + 1)], batch_size=5_000
    )
    return run


def seqs(html: str) -> list[int]:
    return [int(seq) for seq in SEQ.findall(html)]


def test_a_long_log_opens_on_its_last_lines_with_a_link_to_the_earlier_ones(users):
    lines = 2 * TAIL_LINES + 500
    run = finished_run(lines)
    client = client_for(users["admin"])

    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert seqs(page) == list(range(lines - TAIL_LINES + 1, lines + 1))
    assert EARLIER.findall(page) == [str(lines - TAIL_LINES + 1)]
    assert f"Show {TAIL_LINES} earlier lines" in page
    assert f"({lines - TAIL_LINES} not shown)" in page
    # The poller goes on from the last line shown, not from the start.
    assert re.search(rf'id="poller" data-after="{lines}"', page)

    earlier = client.get(f"/runs/{run.pk}/events/?before={lines - TAIL_LINES + 1}").content.decode()
    assert seqs(earlier) == list(range(501, TAIL_LINES + 501))
    assert EARLIER.findall(earlier) == ["501"]
    assert "Show 500 earlier lines" in earlier
    assert "poller" not in earlier  # the live log's poller is not started twice

    first = client.get(f"/runs/{run.pk}/events/?before=501").content.decode()
    assert seqs(first) == list(range(1, 501))
    assert EARLIER.findall(first) == []  # the first line is there: no more link


def test_a_short_log_opens_whole_without_a_link(users):
    run = finished_run(TAIL_LINES)
    page = client_for(users["admin"]).get(f"/runs/{run.pk}/").content.decode()
    assert seqs(page) == list(range(1, TAIL_LINES + 1))
    assert "earlier line" not in page


def test_earlier_lines_are_only_for_those_who_may_see_the_run(users, staging):
    run = finished_run(TAIL_LINES + 10)
    Run.objects.filter(pk=run.pk).update(environment=staging)
    response = client_for(users["nobody"]).get(f"/runs/{run.pk}/events/?before=11")
    assert response.status_code in (403, 404)
    assert "line 1<" not in response.content.decode()
