"""What every kind of channel's message shares: the facts worth showing people. Each kind builds
its own payload from them (notifications/channels/). Pure: no Django imports."""

from __future__ import annotations

# Facts that are for the machine, not for people reading the message.
HIDDEN = {"episode"}


def details(facts: dict) -> dict:
    return {key: value for key, value in facts.items() if key not in HIDDEN and value not in (None, "")}
