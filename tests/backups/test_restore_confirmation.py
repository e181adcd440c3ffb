"""A restore starts only when the target's name is typed again exactly: every near miss (nothing,
a prefix, a suffix, another case, padding, a look-alike letter, an invisible character) is refused
through the service and through the Restore page, and creates nothing: no run, no Restore, no audit
event, no database. The exact name then restores, through either door."""

from __future__ import annotations

import pytest
from django.test import Client

from backups.models import Restore
from backups.services import request_restore
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import Refused
from tests.backups.conftest import database_exists

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TARGET = "h6_bk_confirmed"
REFUSED = "Type the target name (h6_bk_confirmed) exactly to confirm the restore."

NEAR_MISSES = {
    "nothing": "",
    "only spaces": "   ",
    "a prefix": TARGET[:-1],
    "a short prefix": TARGET[:2],
    "a suffix": TARGET[1:],
    "the name twice": TARGET * 2,
    "upper case": TARGET.upper(),
    "one capital letter": TARGET.capitalize(),
    "padded with spaces": f" {TARGET} ",
    "a trailing space": f"{TARGET} ",
    "a trailing newline": f"{TARGET}\n",
    "a no-break space after it": f"{TARGET}\u00a0",
    "a Cyrillic o": TARGET.replace("o", "\u043e"),
    "a full-width h (NFKC folds it to h)": "\uff48" + TARGET[1:],
    "a zero-width space inside": TARGET[:5] + "\u200b" + TARGET[5:],
    "one typo": TARGET.replace("confirmed", "confirmde"),
}


@pytest.fixture
def dump(users, pg_policy):
    from backups.services import request_backup

    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    return run.backup


def assert_nothing_created(label: str) -> None:
    assert not Run.objects.filter(kind="backups.restore").exists(), f"{label}: a restore run was created"
    assert not Restore.objects.exists(), f"{label}: a Restore was recorded"
    assert not AuditEvent.objects.filter(action__startswith="backups.restore.").exists(), f"{label}: audited"
    assert not database_exists(TARGET), f"{label}: the target database exists"


def restore_page(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session["sudo_until"] = 10**12  # re-authenticated: the page's own guard is tested elsewhere
    session.save()
    return client


def test_every_near_miss_is_refused_by_the_service_and_the_exact_name_restores(users, dump, scratch_names):
    scratch_names.append(TARGET)
    for label, typed in NEAR_MISSES.items():
        with pytest.raises(Refused) as refused:
            request_restore(dump, users["backup_operator"], TARGET, typed)
        assert str(refused.value) == REFUSED, label
        assert_nothing_created(label)

    run = request_restore(dump, users["backup_operator"], TARGET, TARGET)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert Restore.objects.get().target == TARGET and database_exists(TARGET)


def test_every_near_miss_is_refused_by_the_restore_page_and_the_exact_name_restores(users, dump, scratch_names):
    scratch_names.append(TARGET)
    client = restore_page(users["backup_operator"])
    url = f"/backups/{dump.pk}/restore/"
    for label, typed in NEAR_MISSES.items():
        token = client.get(url).context["request_token"]
        response = client.post(url, {"target": TARGET, "confirm": typed, "request_token": token})
        assert response.status_code == 200, label  # the form again, with the refusal
        assert REFUSED in [str(m) for m in response.context["messages"]], label
        assert_nothing_created(label)

    token = client.get(url).context["request_token"]
    response = client.post(url, {"target": TARGET, "confirm": TARGET, "request_token": token})
    restore = Restore.objects.get()
    assert response.status_code == 302 and response.url == f"/runs/{restore.run_id}/"
    assert Run.objects.get(pk=restore.run_id).status == Status.SUCCEEDED
    assert database_exists(TARGET)
