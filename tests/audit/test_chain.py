"""The audit chain: each event links to the one before by hash, the database refuses edits and
deletes, verify_audit names the first event that does not hold, secrets are masked, and
concurrent writers still build one chain."""

import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test import RequestFactory

from opsconsole.audit import chain, log
from opsconsole.audit.chain import CHAINED_FIELDS, canonical_json, canonical_parts, canonical_row
from opsconsole.audit.log import MASK, record, verify_chain
from opsconsole.audit.models import GENESIS_HASH, AuditEvent

pytestmark = pytest.mark.django_db

TRIGGER = "audit_auditevent_no_update"


def record_steps(count: int) -> list[AuditEvent]:
    return [record("tests.step", target=f"step:{n}", details={"n": n}) for n in range(1, count + 1)]


def change_behind_the_triggers(sql: str, params=()) -> None:
    """What a database superuser could do: switch the trigger off, change a row, switch it on.
    Runs inside the test's transaction, so it is rolled back afterwards like everything else."""
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while the transaction holds unchecked deferred foreign keys.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE audit_auditevent DISABLE TRIGGER {TRIGGER}")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute(f"ALTER TABLE audit_auditevent ENABLE TRIGGER {TRIGGER}")


def test_events_are_numbered_from_one_and_each_links_to_the_one_before():
    returned = record_steps(5)
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [event.seq for event in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in zip(stored, stored[1:], strict=False):
        assert after.prev_hash == before.hash
    for event in stored:
        assert len(event.hash) == 64
        assert event.hash == event.compute_hash()
    assert [event.hash for event in returned] == [event.hash for event in stored]
    assert len({event.hash for event in stored}) == 5


def test_verify_audit_succeeds_on_an_intact_chain(capsys):
    record_steps(4)
    call_command("verify_audit")
    assert "audit chain intact: 4 events verified" in capsys.readouterr().out


def test_verify_audit_succeeds_on_an_empty_log(capsys):
    call_command("verify_audit")
    assert "0 events verified" in capsys.readouterr().out


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_auditevent SET target = 'forged'", "DELETE FROM audit_auditevent"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_or_delete_an_event(statement):
    record_steps(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)
    assert list(AuditEvent.objects.order_by("seq").values_list("target", flat=True)) == ["step:1", "step:2"]


def test_the_orm_cannot_change_an_event_either():
    event = record_steps(1)[0]
    event.target = "forged"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().target == "step:1"


def test_an_event_edited_behind_the_triggers_is_named_by_verify_audit():
    record_steps(5)
    change_behind_the_triggers("UPDATE audit_auditevent SET details = %s WHERE seq = 3", [json.dumps({"n": 30})])
    assert AuditEvent.objects.get(seq=3).details == {"n": 30}  # the edit happened, the trigger is back
    with pytest.raises(CommandError, match="#3") as excinfo:
        call_command("verify_audit")
    assert "contents do not match the stored hash" in str(excinfo.value)
    assert verify_chain().first_bad_seq == 3
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(target="forged")


def test_an_edit_that_also_rewrites_the_hash_is_named_at_the_next_event():
    record_steps(5)
    forged = AuditEvent.objects.get(seq=2)
    forged.actor_name = "someone-else"
    change_behind_the_triggers(
        "UPDATE audit_auditevent SET actor_name = %s, hash = %s WHERE seq = 2",
        [forged.actor_name, forged.compute_hash()],
    )
    with pytest.raises(CommandError, match="#3") as excinfo:
        call_command("verify_audit")
    assert "previous-hash link" in str(excinfo.value)


def test_an_event_deleted_from_the_middle_is_named_as_missing():
    record_steps(5)
    change_behind_the_triggers("DELETE FROM audit_auditevent WHERE seq = 3")
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 4, 5]
    with pytest.raises(CommandError, match="#3") as excinfo:
        call_command("verify_audit")
    assert "missing" in str(excinfo.value)


def test_secret_looking_keys_are_masked_at_any_depth():
    details = {
        "username": "dana",
        "password": "pw-hunter2",
        "token": "tok-123",
        "api_key": "key-456",
        "secret": "sec-789",
        "config": {
            "region": "eu-west-1",
            "ApiKey": "key-abc",
            "database": {"host": "db.internal", "db_password": "pw-def"},
        },
        "steps": [
            {"name": "deploy", "auth_token": "tok-ghi"},
            ["plain", {"client_secret": "sec-jkl", "replicas": 3}],
        ],
        "credentials": {"aws_access_key_id": "AKIA-mno", "note": "the whole value goes"},
    }
    event = record("tests.masking", details=details)
    stored = AuditEvent.objects.get(pk=event.pk).details
    assert stored == {
        "username": "dana",
        "password": MASK,
        "token": MASK,
        "api_key": MASK,
        "secret": MASK,
        "config": {"region": "eu-west-1", "ApiKey": MASK, "database": {"host": "db.internal", "db_password": MASK}},
        "steps": [{"name": "deploy", "auth_token": MASK}, ["plain", {"client_secret": MASK, "replicas": 3}]],
        "credentials": MASK,
    }
    text = json.dumps(stored)
    for secret in ("hunter2", "tok-", "key-", "sec-", "pw-", "AKIA"):
        assert secret not in text
    assert details["password"] == "pw-hunter2"  # the caller's dict is left alone
    assert verify_chain().ok


@pytest.mark.parametrize(
    ("remote_addr", "stored_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:0DB8:0000:0000::0001", "2001:db8::1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("unix:/run/gunicorn.sock", None),
        ("", None),
    ],
)
def test_the_client_address_is_hashed_in_the_form_the_database_stores(users, remote_addr, stored_as):
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    request.user = users["admin"]
    record("tests.address", request=request)
    assert AuditEvent.objects.get().ip == stored_as
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain():
    writers, per_writer = 4, 50
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                record("tests.concurrent", target=f"writer:{number}", details={"i": i})
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, writers * per_writer + 1))
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checked == writers * per_writer
    for number in range(writers):
        assert AuditEvent.objects.filter(target=f"writer:{number}").count() == per_writer


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"n": 1, "ratio": 0.1, "big": 10**20, "none": None, "flag": True, "list": [1, "two", {"b": 2, "a": 1}]},
        {"naïve": "café ☕ 日本", "quote": 'he said "hi"\\ \n\t', "emoji": "🚀"},
        {"Z": 1, "a": 2, "_": 3, "10": 4, "9": 5},
    ],
    ids=["empty", "types", "unicode", "key-order"],
)
def test_the_server_hashes_the_same_bytes_python_does(users, details):
    """record() on PostgreSQL has the database fill in seq, prev_hash and hash; the stored
    hash must be the one AuditEvent.compute_hash() (the format every earlier chain uses) gives."""
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8::7", HTTP_USER_AGENT="agent/1.0 «x»")
    request.user = users["admin"]
    request.request_id = "req-1"
    record("tests.parity", target="target:ü", environment="prod", details={"first": 1}, request=request)
    returned = record("tests.parity", actor_name="bot", target="t", details=details, outcome="failure")
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [event.seq for event in stored] == [1, 2]
    assert stored[0].actor_id == users["admin"].pk and stored[0].ip == "2001:db8::7"
    for event in stored:
        assert event.hash == event.compute_hash()
    assert stored[1].prev_hash == stored[0].hash
    assert stored[1].details == details
    assert (returned.pk, returned.seq, returned.at, returned.hash) == (
        stored[1].pk,
        stored[1].seq,
        stored[1].at,
        stored[1].hash,
    )
    assert returned.compute_hash() == returned.hash
    assert verify_chain().ok


def test_canonical_parts_joined_with_the_locked_values_are_the_canonical_json():
    body = {
        "seq": 42,
        "at": "2026-11-26T08:00:00.000001+00:00",
        "actor_id": None,
        "actor_name": "dana",
        "action": "x.y",
        "target": "é",
        "environment": "",
        "ip": None,
        "user_agent": "",
        "request_id": "",
        "details": {"b": [1, 2.5], "a": "\u2028"},
        "outcome": "success",
        "prev_hash": "f" * 64,
    }
    parts = canonical_parts({key: value for key, value in body.items() if key not in ("seq", "prev_hash")})
    joined = parts[0] + body["prev_hash"] + parts[1] + str(body["seq"]) + parts[2]
    assert joined.encode() == canonical_json(body)


def test_an_append_inside_a_callers_transaction_that_rolls_back_leaves_no_gap():
    record("tests.kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        record("tests.rolled-back")
        raise RuntimeError("the caller's change failed")
    record("tests.kept")
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "action")) == [
        (1, "tests.kept"),
        (2, "tests.kept"),
    ]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_writers_in_and_out_of_their_own_transactions_keep_one_chain():
    """Half the writers append inside a transaction of their own that also does other work (the
    lock is then held until their commit), half in autocommit: still one contiguous chain."""
    writers, per_writer = 6, 40
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                if number % 2:
                    with transaction.atomic():
                        record("tests.concurrent", target=f"writer:{number}", details={"i": i})
                        AuditEvent.objects.filter(seq__gt=0).exists()
                else:
                    record("tests.concurrent", target=f"writer:{number}", details={"i": i})
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, writers * per_writer + 1)
    )
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checked == writers * per_writer


@pytest.fixture
def split_verification(monkeypatch):
    """Verification in 2 worker processes even for a short chain."""
    monkeypatch.setattr(log, "PARALLEL_THRESHOLD", 0)


@pytest.mark.django_db(transaction=True)
def test_verifying_in_worker_processes_checks_every_event(split_verification):
    record_steps(9)
    report = verify_chain(processes=2)
    assert (report.ok, report.checked) == (True, 9)
    assert verify_chain(processes=3).checked == 9


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "bad_seq", "problem"),
    [
        ("UPDATE audit_auditevent SET target = 'forged' WHERE seq = 7", 7, "contents do not match"),
        ("UPDATE audit_auditevent SET target = 'forged' WHERE seq = 3", 3, "contents do not match"),
        # The last event of the first range: the first worker sees nothing wrong in what it reads.
        ("DELETE FROM audit_auditevent WHERE seq = 5", 5, "is missing"),
        ("DELETE FROM audit_auditevent WHERE seq = 6", 6, "is missing"),
    ],
    ids=["second-range", "first-range", "end-of-first-range", "start-of-second-range"],
)
def test_worker_processes_name_the_first_bad_event_as_the_in_process_walk_does(
    split_verification, sql, bad_seq, problem
):
    record_steps(10)
    change_behind_the_triggers(sql)
    in_process, split = verify_chain(), verify_chain(processes=2)
    assert (split.first_bad_seq, split.checked, split.problem) == (
        in_process.first_bad_seq,
        in_process.checked,
        in_process.problem,
    )
    assert split.first_bad_seq == bad_seq and problem in split.problem


@pytest.mark.django_db(transaction=True)
def test_an_edit_with_a_rewritten_hash_at_a_range_boundary_is_named_at_the_next_event(split_verification):
    record_steps(10)
    forged = AuditEvent.objects.get(seq=5)
    forged.actor_name = "someone-else"
    change_behind_the_triggers(
        "UPDATE audit_auditevent SET actor_name = %s, hash = %s WHERE seq = 5",
        [forged.actor_name, forged.compute_hash()],
    )
    report = verify_chain(processes=2)
    assert (report.first_bad_seq, report.checked) == (6, 5)
    assert "previous-hash link" in report.problem


@pytest.mark.django_db(transaction=True)
def test_verify_audit_splits_a_long_chain_between_processes_and_names_the_first_bad_event(split_verification, capsys):
    record_steps(8)
    call_command("verify_audit", "--processes", "2")
    assert "audit chain intact: 8 events verified" in capsys.readouterr().out
    change_behind_the_triggers("UPDATE audit_auditevent SET target = 'forged' WHERE seq = 6")
    with pytest.raises(CommandError, match="#6: contents do not match"):
        call_command("verify_audit", "--processes", "2")


def test_verify_audit_refuses_fewer_than_one_process():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("verify_audit", "--processes", "0")


@pytest.mark.parametrize(
    ("actor_id", "ip", "text", "details"),
    [
        (None, None, "", {}),
        (7, "2001:db8::1", 'quote " backslash \\ slash / tab \t newline \n bell \x07', {"z": [1, 2.5, None, True]}),
        (2**40, "203.0.113.9", "café ☕ 日本 🚀 \u2028 \u2029 \x7f", {"B": {"b": 1, "a": "é"}, "a": -0.0}),
    ],
)
def test_canonical_row_is_byte_for_byte_the_canonical_json(actor_id, ip, text, details):
    """The verifier writes the canonical form of a row directly rather than through the encoder:
    it must give exactly the bytes canonical_json() (what every stored hash covers) gives."""
    body = {
        "seq": 12345,
        "at": "2026-11-26T08:00:00.000001+00:00",
        "actor_id": actor_id,
        "actor_name": text,
        "action": f"a.{text}",
        "target": text,
        "environment": text,
        "ip": ip,
        "user_agent": text,
        "request_id": text,
        "details": details,
        "outcome": "success",
        "prev_hash": "0" * 64,
    }
    row = tuple(json.dumps(body[name]) if name == "details" else body[name] for name in CHAINED_FIELDS)
    assert canonical_row(row) == canonical_json(body)


def test_a_refused_append_inside_a_callers_transaction_leaves_that_transaction_usable():
    record("tests.before")
    with transaction.atomic():
        with pytest.raises(DatabaseError):
            record("x" * 101)  # longer than the action column
        record("tests.after")  # the caller's transaction goes on
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "action")) == [
        (1, "tests.before"),
        (2, "tests.after"),
    ]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sql", "first_range", "second_range"),
    [
        (None, (5, None, ""), (5, None, "")),
        # The second range links its first event to the stored hash of the event before it.
        (
            "DELETE FROM audit_auditevent WHERE seq = 5",
            (4, 5, "event #5 is missing"),
            (0, 6, "previous-hash link does not match the event before it"),
        ),
        ("DELETE FROM audit_auditevent WHERE seq = 8", (5, None, ""), (2, 8, "event #8 is missing")),
        (
            "UPDATE audit_auditevent SET target = 'forged' WHERE seq = 7",
            (5, None, ""),
            (1, 7, "contents do not match the stored hash"),
        ),
    ],
    ids=["intact", "end-of-first-range-deleted", "middle-of-second-range-deleted", "second-range-edited"],
)
def test_each_workers_range_is_checked_against_the_event_before_it(sql, first_range, second_range):
    # What a spawned worker runs, run here: events 1-5 and 6-10 of a chain of 10, each on its own connection.
    record_steps(10)
    if sql:
        change_behind_the_triggers(sql)
    conninfo = log._postgres_conninfo()
    assert chain.verify_range(conninfo, 1, 5) == first_range
    assert chain.verify_range(conninfo, 6, 10) == second_range


@pytest.mark.django_db(transaction=True)
def test_a_range_from_the_second_event_links_to_the_first_events_hash():
    record_steps(3)
    assert chain.verify_range(log._postgres_conninfo(), 2, 3) == (2, None, "")


def test_rows_are_read_a_batch_at_a_time_from_where_the_last_batch_ended():
    stored = [(seq, f"event {seq}") for seq in range(1, 6)]
    asked = []

    def fetch(after: int, upto: int, batch: int) -> list[tuple]:
        asked.append((after, upto, batch))
        return [row for row in stored if after < row[0] <= upto][:batch]

    assert list(chain.iter_rows(fetch, 0, 4, batch=2)) == stored[:4]
    assert asked == [(0, 4, 2), (2, 4, 2), (4, 4, 2)]
    asked.clear()
    assert list(chain.iter_rows(fetch, 1, 5)) == stored[1:]
    assert asked == [(1, 5, 10_000), (5, 5, 10_000)]
