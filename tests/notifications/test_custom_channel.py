"""A new kind of channel is one module and one register_channel() line. Here the module is this
test's: a stand-in for Microsoft Teams whose sender records what it is given. Registered, it is
offered and checked like the built-in kinds and a run's event reaches it end to end; a kind
nobody registered is refused by name and never sent through another kind's code."""

import logging

import pytest
from django.core.exceptions import ValidationError

from notifications import sending
from notifications.channels import CHANNEL_KINDS, ChannelKind, UnknownChannelKind, channel_kind, register_channel
from notifications.delivery import deliver, notify, wait_for_inline_deliveries
from notifications.models import Channel, Delivery, DeliveryStatus
from notifications.secrets import validate_reference
from opsconsole.runs.models import Run, Status
from tests.notifications.conftest import SLACK_PATH, slack_channel

pytestmark = pytest.mark.django_db(transaction=True)


class FakeTeams:
    """The three things a channel kind provides; send() records its calls instead of posting."""

    def __init__(self):
        self.sent = []

    def clean(self, channel) -> None:
        try:
            channel.secret = validate_reference(channel.secret)
        except ValueError as exc:
            raise ValidationError({"secret": str(exc)}) from None

    def payload(self, event, environment, facts, summary, at) -> dict:
        return {"title": f"{event.label} in {environment}", "text": summary, "link": facts.get("link", "")}

    def send(self, delivery, timeout) -> sending.Result:
        self.sent.append(
            {"channel": delivery.channel.name, "payload": delivery.payload, "secret": delivery.channel.secret}
        )
        return sending.Result(ok=True, http_status=202)


@pytest.fixture
def teams():
    fake = FakeTeams()
    register_channel(ChannelKind("teams", "Microsoft Teams", fake.clean, fake.payload, fake.send))
    yield fake
    del CHANNEL_KINDS["teams"]


def teams_channel(environment, events) -> Channel:
    return Channel.objects.create(
        environment=environment, name="ops team", kind="teams", events=events, secret="env:TEAMS_WORKFLOW_URL"
    )


def test_a_registered_kind_is_offered_and_checked_like_the_built_in_ones(staging, teams):
    field = Channel._meta.get_field("kind")
    assert list(field.choices)[-1] == ("teams", "Microsoft Teams")
    Channel(environment=staging, name="ops team", kind="teams", events=["deploy.failed"], secret=" env:X ").full_clean()
    with pytest.raises(ValidationError) as refused:
        Channel(
            environment=staging, name="ops team", kind="teams", events=["deploy.failed"], secret="https://x"
        ).full_clean()
    assert "not the value itself" in str(refused.value.message_dict["secret"])


def test_a_run_event_reaches_a_channel_of_the_registered_kind_through_its_sender(staging, teams, notify_settings):
    channel = teams_channel(staging, ["drift.detected"])
    run = Run.objects.create(kind="terraform.drift", environment=staging, requested_by_name="beat")
    run.transition(Status.RUNNING)
    run.transition(Status.SUCCEEDED, result={"has_changes": True, "summary": {"add": 1, "change": 2, "destroy": 0}})

    assert wait_for_inline_deliveries()
    delivery = Delivery.objects.get(environment=staging)
    assert (delivery.channel_id, delivery.channel_kind, delivery.event, delivery.status) == (
        channel.pk,
        "teams",
        "drift.detected",
        DeliveryStatus.SENT,
    )
    summary = f"staging: Terraform drift: 3 resource change(s) differ from the code (run #{run.pk})"
    link = f"https://console.example.com/runs/{run.pk}/"
    assert teams.sent == [
        {
            "channel": "ops team",
            "payload": {"title": "Drift detected in staging", "text": summary, "link": link},
            "secret": "env:TEAMS_WORKFLOW_URL",
        }
    ]
    assert delivery.payload == teams.sent[0]["payload"]
    assert [(a.number, a.http_status, a.error) for a in delivery.attempts.all()] == [(1, 202, "")]


def test_a_kind_nobody_registered_is_refused_by_name(staging, notify_settings, receiver, caplog):
    with pytest.raises(UnknownChannelKind, match="There is no channel kind called 'pigeon'. Known kinds: email, "):
        channel_kind("pigeon")
    with pytest.raises(ValidationError) as refused:
        Channel(environment=staging, name="loft", kind="pigeon", events=["deploy.failed"]).full_clean()
    assert refused.value.message_dict["kind"] == ["Value 'pigeon' is not a valid choice."]

    # A row of a kind whose module is gone: the other channels still hear of the event, it is skipped.
    slack_channel(staging, ["deploy.failed"])
    Channel.objects.create(environment=staging, name="loft", kind="pigeon", events=["deploy.failed"], secret="env:X")
    with caplog.at_level(logging.ERROR, logger="notifications.delivery"):
        [delivery_id] = notify("deploy.failed", staging, run=1, kind_label="Deploy", release="v1", status="failed")
    assert "There is no channel kind called 'pigeon'" in caplog.text
    assert wait_for_inline_deliveries()
    assert Delivery.objects.get(pk=delivery_id).channel_kind == "slack"
    assert len(receiver.wait_for(SLACK_PATH, 1)) == 1

    # A delivery recorded for it fails at once with the reason, and nothing else sends it.
    loft = Channel.objects.get(name="loft")
    pending = Delivery.objects.create(
        channel=loft, channel_name="loft", channel_kind="pigeon", environment=staging, event="deploy.failed"
    )
    assert deliver(pending.pk) == DeliveryStatus.FAILED
    pending.refresh_from_db()
    assert pending.last_error.startswith("There is no channel kind called 'pigeon'.")
    assert pending.attempt_count == 1
    assert len(receiver.to(SLACK_PATH)) == 1


def test_the_queue_names_of_a_delivery_are_the_worker_s_own_entry_points():
    """Deliveries are sent to the queue by name: the names must be the task and function workers run."""
    from django.utils.module_loading import import_string

    from notifications import delivery, tasks
    from opsconsole.celery import app

    assert app.tasks[delivery.DELIVER_TASK].name == tasks.deliver_task.name == delivery.DELIVER_TASK
    assert import_string(delivery.DELIVER_RQ) is tasks.deliver_rq
