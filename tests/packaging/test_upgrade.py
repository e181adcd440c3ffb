"""Upgrade safety: a database that the previous release (git commit cd88b95) filled migrates
forward to today's models with every row intact; and the models have no change without a
migration.

fixtures/release_cd88b95.json holds that release's latest migration of every app and one or more
rows of every model it had (made by fixtures/make_release_fixture.py running the release's code).
The test builds a fresh database at exactly that migration state, loads the rows through the
historical models of that state (today's models may have columns the release did not), migrates
to the head of every app, and compares each row field by field.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg
import pytest
from django.core import serializers
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

FIXTURE = Path(__file__).parent / "fixtures" / "release_cd88b95.json"
ALIAS = "upgrade"
PROJECT_APPS = {"access", "audit", "runs", "deployments", "infrastructure", "backups", "dr"}
# Models that moved to another app since the release, with their tables and rows (a state-only move).
MOVED = {
    "deployments.environment": "environments.environment",
    "deployments.freezewindow": "environments.freezewindow",
    "deployments.approval": "runs.approval",
}
# Columns a forward migration is allowed to change, as "app.model.field": say why beside each.
CHANGED_BY_MIGRATIONS: set[str] = set()


@pytest.fixture(scope="module")
def release() -> dict:
    return json.loads(FIXTURE.read_text())


def _admin_dsn(settings_dict: dict) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname="postgres",
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
    )


@pytest.fixture
def fresh_database(django_db_blocker):
    """An empty PostgreSQL database beside the test database, reachable as connections["upgrade"]."""
    default = connections["default"].settings_dict
    name = f"{default['NAME']}_upgrade"
    dsn = _admin_dsn(default)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    connections.settings[ALIAS] = {**default, "NAME": name}
    try:
        with django_db_blocker.unblock():
            yield connections[ALIAS]
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def load_historical(connection, state_apps, objects: list[dict]) -> None:
    """loaddata through the models of a past migration state (loaddata itself uses today's)."""
    models = set()
    with transaction.atomic(using=connection.alias):
        many = []
        for item in objects:
            model = state_apps.get_model(item["model"])
            models.add(model)
            values = {model._meta.pk.attname: item["pk"]}
            for field in model._meta.concrete_fields:
                if field.name in item["fields"]:
                    raw = item["fields"][field.name]
                    values[field.attname] = raw if field.is_relation else field.to_python(raw)
            model(**values).save_base(raw=True, using=connection.alias, force_insert=True)
            for field in model._meta.many_to_many:
                if item["fields"].get(field.name):
                    many.append((model, item["pk"], field.name, item["fields"][field.name]))
        for model, pk, name, related in many:
            getattr(model.objects.using(connection.alias).get(pk=pk), name).set(related)
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), list(models)):
            cursor.execute(statement)


def dump(connection, state_apps, label: str, pk) -> dict:
    model = state_apps.get_model(label)
    rows = model.objects.using(connection.alias).filter(pk=pk)
    found = serializers.serialize("python", rows)
    assert found, f"{label} #{pk} is gone after migrating"
    # Encoded as make_release_fixture.py encodes: full-precision ISO datetimes.
    return json.loads(
        json.dumps(found[0]["fields"], default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


def test_the_fixture_holds_every_model_of_the_release(release):
    state = MigrationLoader(None, ignore_no_migrations=True).project_state(
        [tuple(node) for node in release["migrations"]]
    )
    release_models = {f"{app}.{model}" for app, model in state.models if app in PROJECT_APPS}
    in_fixture = {item["model"] for item in release["objects"]}
    assert release_models, "the release's migration state has no models: wrong migration names?"
    assert release_models <= in_fixture, f"no rows of {sorted(release_models - in_fixture)} in {FIXTURE.name}"


@pytest.mark.django_db
def test_models_and_migrations_agree():
    """`makemigrations --check` is clean: no model change waits for a migration (CI runs this)."""
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:
        pytest.fail(f"models changed without a migration (run makemigrations):\n{out.getvalue()}\nexit {exc.code}")


def test_the_previous_release_s_data_survives_migrating_to_head(release, fresh_database):
    connection = fresh_database
    targets = [tuple(node) for node in release["migrations"]]
    executor = MigrationExecutor(connection)
    # Every migration the release had must still exist: deleting or renaming a shipped one
    # strands every database that applied it.
    missing = [node for node in targets if node not in executor.loader.graph.nodes]
    assert not missing, f"migrations shipped in {release['release']} are gone: {missing}"

    executor.migrate(targets)
    at_release = executor.loader.project_state(targets).apps
    load_historical(connection, at_release, release["objects"])

    executor = MigrationExecutor(connection)
    heads = executor.loader.graph.leaf_nodes()
    executor.migrate(heads)
    executor = MigrationExecutor(connection)
    assert not executor.migration_plan(heads), "not every migration applied"
    at_head = executor.loader.project_state(heads).apps

    for item in release["objects"]:
        now = dump(connection, at_head, MOVED.get(item["model"], item["model"]), item["pk"])
        for name, before in item["fields"].items():
            if f"{item['model']}.{name}" in CHANGED_BY_MIGRATIONS:
                continue
            assert name in now, f"{item['model']}.{name} was dropped by a migration"
            assert now[name] == before, f"{item['model']} #{item['pk']}: {name} was {before!r}, now {now[name]!r}"


def test_the_audit_chain_still_verifies_after_the_upgrade(release, fresh_database):
    """The release's audit events keep their hashes: each one's contents and link still hold
    under today's hashing, so the upgrade does not look like tampering."""
    from opsconsole.audit.log import GENESIS_HASH
    from opsconsole.audit.models import AuditEvent

    targets = [tuple(node) for node in release["migrations"]]
    executor = MigrationExecutor(fresh_database)
    executor.migrate(targets)
    load_historical(fresh_database, executor.loader.project_state(targets).apps, release["objects"])
    executor = MigrationExecutor(fresh_database)
    executor.migrate(executor.loader.graph.leaf_nodes())

    events = list(AuditEvent.objects.using(ALIAS).order_by("seq"))
    assert len(events) == sum(item["model"] == "audit.auditevent" for item in release["objects"]) >= 3
    previous = GENESIS_HASH
    for event in events:
        assert event.prev_hash == previous, f"audit event #{event.seq} no longer links to the one before"
        assert event.compute_hash() == event.hash, f"audit event #{event.seq} no longer matches its hash"
        previous = event.hash


def test_content_types_follow_the_models_that_moved(fresh_database):
    """Admin history and permissions name models by content type: the release's rows for the
    moved models now name their new apps, and no second row appears for them."""
    executor = MigrationExecutor(fresh_database)
    executor.migrate(
        [("deployments", "0003_environment_prometheus_verification"), ("contenttypes", "0002_remove_content_type_name")]
    )
    from django.contrib.contenttypes.models import ContentType

    before = {
        model: ContentType.objects.using(ALIAS).create(app_label="deployments", model=model).pk
        for model in ("environment", "freezewindow", "approval", "release")
    }
    executor = MigrationExecutor(fresh_database)
    executor.migrate(executor.loader.graph.leaf_nodes())

    after = {
        (row.app_label, row.model): row.pk for row in ContentType.objects.using(ALIAS).filter(pk__in=before.values())
    }
    assert after == {
        ("environments", "environment"): before["environment"],
        ("environments", "freezewindow"): before["freezewindow"],
        ("runs", "approval"): before["approval"],
        ("deployments", "release"): before["release"],
    }


def test_when_the_new_content_type_exists_already_the_old_one_s_grants_and_history_move_to_it(fresh_database):
    """A post_migrate between the core's migration and deployments.0004 creates the new app's row
    first: the old row's permission grants and admin history move to it, and the old row goes."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission, User
    from django.contrib.contenttypes.models import ContentType

    executor = MigrationExecutor(fresh_database)
    executor.migrate(
        [
            ("deployments", "0003_environment_prometheus_verification"),
            ("admin", "0003_logentry_add_action_flag_choices"),
            ("auth", "0012_alter_user_first_name_max_length"),
            ("contenttypes", "0002_remove_content_type_name"),
        ]
    )
    rows = ContentType.objects.using(ALIAS)
    stale, current = (
        rows.create(app_label="deployments", model="environment"),
        rows.create(app_label="environments", model="environment"),
    )
    grants = Permission.objects.using(ALIAS)
    granted = grants.create(content_type=stale, codename="change_environment", name="Can change environment")
    only_old = grants.create(content_type=stale, codename="freeze_environment", name="Can freeze environment")
    twin = grants.create(content_type=current, codename="change_environment", name="Can change environment")
    user = User.objects.db_manager(ALIAS).create_user("ada")
    user.user_permissions.add(granted, only_old)
    entry = LogEntry.objects.using(ALIAS).create(
        user=user, content_type=stale, object_id="1", object_repr="staging", action_flag=2
    )

    executor = MigrationExecutor(fresh_database)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert not rows.filter(pk=stale.pk).exists()
    assert set(user.user_permissions.values_list("pk", flat=True)) == {twin.pk, only_old.pk}
    assert grants.get(pk=only_old.pk).content_type_id == current.pk
    assert LogEntry.objects.using(ALIAS).get(pk=entry.pk).content_type_id == current.pk
