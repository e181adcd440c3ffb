"""Email through Django's mail backend to the channel's recipients (no secret: the SMTP settings
are the console's own)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from notifications import sending
from notifications.events import Event
from notifications.messages import details


def parse_recipients(text: str) -> list[str]:
    return [item.strip() for item in text.replace(";", ",").replace("\n", ",").split(",") if item.strip()]


def clean(channel) -> None:
    addresses = parse_recipients(channel.recipients)
    if not addresses:
        raise ValidationError({"recipients": "Give at least one email address."})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError({"recipients": f"{address[:80]} is not an email address."}) from None


def payload(event: Event, environment: str, facts: dict, summary: str, at: str) -> dict:
    lines = [summary, ""]
    if facts.get("link"):
        lines += [f"Open in the ops console: {facts['link']}", ""]
    lines += [f"{key}: {value}" for key, value in details(facts).items() if key != "link"]
    lines += ["", f"{event.label} in {environment} at {at}.", "-- the ops console"]
    # A header must be one line: a DR reason or a run's error may hold newlines (BadHeaderError).
    subject = " ".join(f"[opsconsole] {summary}".split())[:200]
    return {"subject": subject, "body": "\n".join(lines)}


def send(delivery, timeout: float) -> sending.Result:
    recipients = parse_recipients(delivery.channel.recipients)
    return sending.send_email(delivery.payload["subject"], delivery.payload["body"], recipients)
