"""A kind that says what makes two requests the same (registry.IDENTITIES) gets at most one active
run per environment and identity: launch() refuses the second as a duplicate naming the first,
and the runs table's partial unique index holds the rule when two requests race past the check."""

from __future__ import annotations

from unittest import mock

import pytest

from opsconsole.runs import services
from opsconsole.runs.models import Run, Status
from opsconsole.runs.registry import IDENTITIES, REGISTRY, RunKind
from opsconsole.runs.services import Refused, launch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def same_kind(monkeypatch, settings):
    """A kind whose requests are the same when they name the same `what`; runs stay queued."""
    monkeypatch.setitem(REGISTRY, "test.same", RunKind(name="test.same", label="Same test", func=lambda ctx: None))
    monkeypatch.setitem(IDENTITIES, "test.same", lambda params: params["what"])
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


def start(environment, user, what="a"):
    return launch("test.same", principal=user, environment=environment, params={"what": what})


def test_an_identical_active_request_is_refused_naming_the_run(users, staging):
    first = start(staging, users["admin"])
    with pytest.raises(Refused) as refused:
        start(staging, users["deployer"])
    assert refused.value.code == "duplicate" and refused.value.run == first
    assert str(refused.value) == (
        f"An identical request is already queued on staging: Same test run #{first.pk} (/runs/{first.pk}/). "
        "Follow that run instead of asking again."
    )
    assert Run.objects.count() == 1


def test_another_identity_another_environment_or_an_ended_run_is_no_duplicate(users, staging, production):
    first = start(staging, users["admin"])
    start(staging, users["admin"], what="b")
    start(production, users["admin"])
    Run.objects.filter(pk=first.pk).update(status=Status.FAILED)
    start(staging, users["admin"])
    assert Run.objects.count() == 4


def test_the_unique_index_refuses_what_got_past_the_check(users, staging):
    first = start(staging, users["admin"])
    real, calls = services.active_duplicate, []

    def racing(*args):
        calls.append(args)
        # The check before the insert misses it, as when two requests race; the one after finds it.
        return None if len(calls) == 1 else real(*args)

    with mock.patch.object(services, "active_duplicate", racing), pytest.raises(Refused) as refused:
        start(staging, users["admin"])
    assert len(calls) == 2  # the second look came after the index refused the insert
    assert refused.value.code == "duplicate" and refused.value.run == first
    assert Run.objects.count() == 1


def test_a_kind_without_an_identity_is_never_a_duplicate(users, staging, monkeypatch):
    monkeypatch.delitem(IDENTITIES, "test.same")
    start(staging, users["admin"])
    start(staging, users["admin"])
    assert list(Run.objects.values_list("identity", flat=True)) == ["", ""]
