"""What each kind of channel receives for an event. Built once, when the event happens, and
stored on the Delivery; the secret (PagerDuty's routing key, Slack's URL) is added only when
sending. Pure: no Django imports."""

from __future__ import annotations

from notifications.events import Event

SLACK_ICONS = {"critical": ":rotating_light:", "error": ":x:", "warning": ":warning:", "info": ":information_source:"}
# Facts that are for the machine, not for people reading the message.
HIDDEN = {"episode"}


def _details(facts: dict) -> dict:
    return {key: value for key, value in facts.items() if key not in HIDDEN and value not in (None, "")}


def slack(event: Event, environment: str, facts: dict, summary: str, at: str) -> dict:
    icon = SLACK_ICONS[event.severity_for(facts)]
    link = facts.get("link")
    text = f"{icon} {summary}" + (f"\n<{link}|Open in the ops console>" if link else "")
    fields = [
        {"type": "mrkdwn", "text": f"*{key}*\n{value}"} for key, value in _details(facts).items() if key != "link"
    ]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})  # Slack allows 10 fields a section
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{event.label} · {environment} · {at}"}]}
    )
    return {"text": text, "blocks": blocks}


def pagerduty(event: Event, environment: str, facts: dict, summary: str, at: str, base_url: str) -> dict:
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
            "custom_details": _details(facts),
        },
        "client": "Ops Console",
    }
    if base_url:
        body["client_url"] = base_url
    if facts.get("link"):
        body["links"] = [{"href": facts["link"], "text": "Open in the ops console"}]
    return body


def email(event: Event, environment: str, facts: dict, summary: str, at: str) -> dict:
    lines = [summary, ""]
    if facts.get("link"):
        lines += [f"Open in the ops console: {facts['link']}", ""]
    lines += [f"{key}: {value}" for key, value in _details(facts).items() if key != "link"]
    lines += ["", f"{event.label} in {environment} at {at}.", "-- the ops console"]
    # A header must be one line: a DR reason or a run's error may hold newlines (BadHeaderError).
    subject = " ".join(f"[opsconsole] {summary}".split())[:200]
    return {"subject": subject, "body": "\n".join(lines)}
