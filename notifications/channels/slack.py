"""Slack through an incoming webhook: the webhook URL is the channel's secret (a reference, read
when sending); the message is a text with Block Kit sections of the event's facts."""

from __future__ import annotations

from notifications import sending
from notifications.events import Event
from notifications.messages import details
from notifications.secrets import clean_secret_reference, resolve

ICONS = {"critical": ":rotating_light:", "error": ":x:", "warning": ":warning:", "info": ":information_source:"}


clean = clean_secret_reference


def payload(event: Event, environment: str, facts: dict, summary: str, at: str) -> dict:
    icon = ICONS[event.severity_for(facts)]
    link = facts.get("link")
    text = f"{icon} {summary}" + (f"\n<{link}|Open in the ops console>" if link else "")
    fields = [{"type": "mrkdwn", "text": f"*{key}*\n{value}"} for key, value in details(facts).items() if key != "link"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})  # Slack allows 10 fields a section
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{event.label} · {environment} · {at}"}]}
    )
    return {"text": text, "blocks": blocks}


def send(delivery, timeout: float) -> sending.Result:
    environment = delivery.environment
    url = resolve(delivery.channel.secret, environment.aws_region, environment.role_arn)
    return sending.post_json(url, delivery.payload, timeout, secrets=(url,))
