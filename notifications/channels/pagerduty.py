"""PagerDuty through the Events API v2: the routing key is the channel's secret (a reference, read
when sending and added to the stored event only then). Failures trigger an incident, a later
success with the same dedup key resolves it."""

from __future__ import annotations

from notifications import conf, sending
from notifications.events import Event
from notifications.messages import details
from notifications.secrets import clean_secret_reference, resolve

clean = clean_secret_reference


def payload(event: Event, environment: str, facts: dict, summary: str, at: str) -> dict:
    """An Events API v2 event without its routing_key (added when sending)."""
    body = {
        "event_action": event.action(facts),
        "dedup_key": event.dedup_key(environment, facts),
        "payload": {
            "summary": summary[:1024],
            "source": f"opsconsole/{environment}",
            "severity": event.severity_for(facts),
            "timestamp": at,
            "component": environment,
            "group": str(facts.get("kind", "")),
            "class": event.code,
            "custom_details": details(facts),
        },
        "client": "Ops Console",
    }
    base_url = conf.base_url()
    if base_url:
        body["client_url"] = base_url
    if facts.get("link"):
        body["links"] = [{"href": facts["link"], "text": "Open in the ops console"}]
    return body


def send(delivery, timeout: float) -> sending.Result:
    environment = delivery.environment
    routing_key = resolve(delivery.channel.secret, environment.aws_region, environment.role_arn)
    body = {"routing_key": routing_key, **delivery.payload}
    return sending.post_json(conf.pagerduty_url(), body, timeout, secrets=(routing_key,))
